"""``genrel serve``: put a model behind HTTP (score, rank, health, metrics) with uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    model: str | None = typer.Option(
        None, "--model", "-m",
        help="Model directory, HF causal LM, bm25, zero-shot:<model> (see docs/models.md), or py:module:factory "
        "(developer hook: a zero-argument callable returning a Scorer).",
    ),
    backend: str | None = typer.Option(None, "--backend", "-b", help="hf, onnx or vllm (default hf)."),
    criteria: str | None = typer.Option(
        None, "--criteria", "-c", help="Criteria preset or YAML (needed by bm25 and zero-shot models)."
    ),
    host: str | None = typer.Option(None, "--host", help="Interface to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", "-p", help="TCP port (default 8000)."),
    config: Path | None = typer.Option(None, "--config", help="ServeConfig YAML."),
    overrides: list[str] = typer.Option(None, "--set", help="Config override key=value, e.g. max_batch_size=64."),
    token_env: str | None = typer.Option(
        None, "--token-env", help="Environment variable holding the bearer token (default GENREL_SERVE_TOKEN)."
    ),
) -> None:
    """Serve a scorer over HTTP until SIGTERM or Ctrl-C; in-flight requests finish first."""
    from genrel.config import validate_model
    from genrel.serve.config import ServeConfig
    from genrel.serve.loading import load_serving_scorer
    from genrel.serve.server import run_server

    cfg = ServeConfig.load(config, overrides)
    flags = {
        "model": model, "backend": backend, "criteria": criteria, "host": host, "port": port, "token_env": token_env
    }
    flags = {key: value for key, value in flags.items() if value is not None}
    if flags:  # flags win over the file and --set; taken as given, not parsed as YAML
        cfg = validate_model(ServeConfig, {**cfg.model_dump(), **flags}, "command line")
    scorer = None
    if cfg.workers == 1:  # with several workers each loads its own copy
        log.info("loading %s (backend %s)", cfg.model, cfg.backend)
        scorer = load_serving_scorer(cfg)
    _announce(cfg)
    run_server(cfg, scorer)


_EXAMPLE_BODY = '{"query": "flea lifespan", "documents": [{"id": "d1", "text": "Fleas live 20 days to a year."}]}'


def _announce(cfg) -> None:
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
    url = f"http://{host}:{cfg.port}"
    auth = ' -H "Authorization: Bearer $' + cfg.token_env + '"' if cfg.token() else ""
    log.info("starting on %s (auth %s); API at %s/docs", url, "on" if cfg.token() else "off", url)
    log.info(
        "try: curl -s %s/v1/judge%s -H 'Content-Type: application/json' "
        "-d '%s'", url, auth, _EXAMPLE_BODY,
    )
