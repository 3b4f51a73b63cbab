"""Find the scorer to serve: anything ``genrel.score.load_scorer`` accepts (a genrel model directory,
an HF causal LM, ``zero-shot:<model>``, ``bm25``…), or a Python factory.

``py:module:factory`` is a developer hook: ``module`` is imported and ``factory()`` (no arguments) must
return a :class:`~genrel.score.base.Scorer`. Tests and custom scorers use it; models should be model
directories.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from genrel.errors import ConfigError, ModelError
from genrel.score.base import Scorer
from genrel.serve.config import ServeConfig


def load_serving_scorer(cfg: ServeConfig) -> Scorer:
    if not cfg.model:
        raise ConfigError("no model to serve", where="model", hint="pass --model PATH or set model: in the config")
    if cfg.model.startswith("py:"):
        return scorer_from_factory(cfg.model)
    if cfg.model.startswith(("/", ".", "~")) and not Path(cfg.model).expanduser().exists():
        raise ModelError("model directory not found", where=cfg.model)
    try:
        from genrel.score.load import load_scorer
    except ImportError as exc:
        raise ModelError(f"this install cannot load models ({exc})", where=cfg.model) from None
    model = str(Path(cfg.model).expanduser()) if cfg.model.startswith("~") else cfg.model
    options = {"onnx_file": cfg.onnx_file} if cfg.backend == "onnx" else {}
    scorer = load_scorer(model, backend=cfg.backend, criteria=cfg.criteria, **options)
    if hasattr(scorer, "progress"):  # a progress bar per micro-batch would flood the server log
        scorer.progress = False
    return scorer


def scorer_from_factory(spec: str) -> Scorer:
    """Call the factory named by ``py:module:factory`` and check that it returns a Scorer."""
    _, module_name, attr = spec.split(":", 2)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import module '{module_name}': {exc}", where=spec) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"module '{module_name}' has no callable '{attr}'", where=spec)
    scorer = factory()
    if not isinstance(scorer, Scorer):
        raise ModelError(f"the factory returned {type(scorer).__name__}, not a Scorer", where=spec)
    return scorer
