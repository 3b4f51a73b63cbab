"""Our own exception types: each says where the problem is (file, line, field) and, when we know one, a fix.

The CLI maps the *type* to an exit code and prints one line; a traceback only with ``--debug``.
"""

from __future__ import annotations


class GenrelError(Exception):
    """Base class: a problem the user can act on."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(GenrelError):
    """A config file or a ``--set`` override is invalid."""

    exit_code = 2


class CriteriaError(GenrelError):
    """A criteria file is invalid or contradicts itself."""

    exit_code = 3


class DataError(GenrelError):
    """A data file or row is invalid."""

    exit_code = 4


class MissingExtraError(GenrelError):
    """An optional dependency is not installed."""

    exit_code = 5

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"this feature needs '{package}'", hint=f"install it with: pip install 'genrel[{extra}]'"
        )


class ModelError(GenrelError):
    """A model cannot be loaded or used as asked."""

    exit_code = 6


class EndpointError(GenrelError):
    """A remote (teacher) endpoint failed in a way retries did not fix."""

    exit_code = 7
