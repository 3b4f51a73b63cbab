"""``ApiError``: an error answer raised by a route (native or dialect) and rendered by the app's handler.

It lives apart from the app so the dialect modules can raise it without importing the app.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: HTTP status plus the fields of the error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra
