"""Online serving: the HTTP scorer (FastAPI + uvicorn) with micro-batching, limits, auth and metrics.

Needs the ``[serve]`` extra (fastapi, uvicorn, prometheus-client).
"""

from genrel.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app", "run_server"]


def __getattr__(name: str):
    # fastapi/uvicorn are imported only when the app is asked for, so `genrel serve --help` stays fast.
    if name == "create_app":
        from genrel.serve.app import create_app

        return create_app
    if name == "run_server":
        from genrel.serve.server import run_server

        return run_server
    raise AttributeError(name)
