"""Run the HTTP scorer under uvicorn: load the scorer, build the app, serve until SIGTERM or Ctrl-C.

On SIGTERM the server drains (:mod:`genrel.serve.drain`): ``/readyz`` turns 503 while requests are
still served for ``drain_s``, then it stops listening, lets in-flight requests finish (up to
``shutdown_grace_s``), and the app's lifespan drains the batcher; the process then exits 0. With
``workers > 1`` uvicorn's supervisor starts that many processes, each loading its own model through
:func:`app_from_env`, and runs uvicorn's own shutdown (no drain phase). Before the model loads, the
process pins glibc's mmap threshold (:mod:`genrel.serve.memory`) so RSS stays flat under load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal

from genrel.score.base import Scorer
from genrel.serve.app import create_app
from genrel.serve.config import ServeConfig
from genrel.serve.loading import load_serving_scorer
from genrel.serve.memory import pin_mmap_threshold

log = logging.getLogger(__name__)

CONFIG_ENV = "GENREL_SERVE_CONFIG_JSON"


def run_server(cfg: ServeConfig, scorer: Scorer | None = None) -> None:
    """Serve until stopped. Blocks; returns normally after a graceful shutdown."""
    import uvicorn

    common = dict(
        host=cfg.host,
        port=cfg.port,
        timeout_graceful_shutdown=max(1, round(cfg.grace_s())),
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
        access_log=False,
        lifespan="on",
    )
    pin_mmap_threshold(cfg.mmap_threshold_bytes)
    if cfg.workers > 1:
        _export_config(cfg)
        with _graceful_signals():
            uvicorn.run("genrel.serve.server:app_from_env", factory=True, workers=cfg.workers, **common)
        return
    app = create_app(scorer if scorer is not None else load_serving_scorer(cfg), cfg)
    from genrel.serve.drain import DrainingServer

    server = DrainingServer(uvicorn.Config(app, workers=1, **common), app.state.drain, drain_s=cfg.drain_s)
    with _graceful_signals():
        server.run()
    if not server.started:
        from genrel.errors import GenrelError

        raise GenrelError(f"the server could not start on {cfg.host}:{cfg.port} (see the log above)")


def app_from_env():
    """uvicorn factory for worker processes: the config comes from the parent through the environment."""
    cfg = ServeConfig.model_validate(json.loads(os.environ[CONFIG_ENV]))
    pin_mmap_threshold(cfg.mmap_threshold_bytes)
    return create_app(load_serving_scorer(cfg), cfg)


def _export_config(cfg: ServeConfig) -> None:
    token = cfg.token()
    if token:  # the JSON dump masks secrets, so the token travels in its own variable
        os.environ[cfg.token_env] = token
    os.environ[CONFIG_ENV] = json.dumps(cfg.model_dump(mode="json", exclude={"auth_token"}))


@contextlib.contextmanager
def _graceful_signals():
    """After a graceful stop uvicorn re-raises the signal it caught; with these handlers in place that
    re-raise is a no-op, so a SIGTERM'd server exits 0 instead of dying by the signal."""
    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda s, f: log.info("stopped by %s", signal.Signals(s).name))
                for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
