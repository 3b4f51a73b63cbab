"""``load_scorer``: one name for every model and baseline that eval, compare and serve can use.

Accepted ``model`` values (``docs/models.md``):

- a genrel model directory (``genrel_model.json``): a causal LM in its recorded form, or a
  cross-encoder (torch, or ONNX when the directory holds ``model.onnx`` and no torch weights, or when
  ``backend="onnx"``);
- ``zero-shot:<model>``: any causal LM prompted with the criteria steps, ``reasoning`` form;
- ``zero-shot-nosteps:<model>``: the same model asked only for ``<label>…</label>`` (label-first);
- a plain HF causal LM (``org/name`` id or local folder) or ``smollm2-135m``: as ``zero-shot:``;
- a sentence-transformers student directory (kind ``st-cross-encoder`` or ``bi-encoder``);
- ``bi-encoder:<base>``: an untrained embedder (``minilm`` or a sentence-transformers folder) ranking
  by cosine, with a flat label head (the baseline its student must beat);
- ``bm25``: the BM25 baseline.

Zero-shot models and BM25 need ``criteria``; a genrel directory brings its own (a ``criteria``
argument must then have the same labels, and replaces it, e.g. to change gains or rules). Extra
keyword arguments go to the scorer (``batch_size``, ``max_new_tokens``…); ``dtype`` goes to the model
loader; ``device`` (``cpu``, ``cuda:1``…) places torch models (ONNX, vLLM and BM25 ignore it);
generation settings are ignored by scorers that do not generate (BM25, cross-encoders), so one
call can load any model. The scorer's ``name`` is ``model`` as given unless ``name=`` says otherwise: it
is what reports show and what an eval resume checks. Anything else is a :class:`ModelError` that lists
these forms.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria, load_criteria
from genrel.errors import ModelError
from genrel.models.embedded import EMBEDDED_MODEL
from genrel.score.base import Scorer
from genrel.models.model_dir import ONNX_FILE, ModelInfo, read_model_info

log = logging.getLogger(__name__)

BACKENDS = ("hf", "onnx", "vllm")
FORMS_HINT = (
    f"pass a genrel model directory, an HF causal LM ('org/name' or a folder), {EMBEDDED_MODEL}, "
    "zero-shot:<model>, zero-shot-nosteps:<model>, or bm25"
)
_ZERO_SHOT = {"zero-shot-nosteps:": ("label-first", "no-steps"), "zero-shot:": ("reasoning", "steps")}
_TORCH_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_GENERATION_ONLY = ("max_new_tokens", "dtype", "device")


def load_scorer(model: str, *, backend: str = "hf", criteria: Criteria | str | None = None, **kwargs: Any) -> Scorer:
    """The scorer for ``model`` on ``backend`` (see the module docstring)."""
    name = kwargs.pop("name", None) or str(model)
    scorer = _load(str(model), backend, criteria, kwargs)
    scorer.name = name
    return scorer


def _load(model: str, backend: str, criteria: Criteria | str | None, kwargs: dict) -> Scorer:
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}'", hint=f"one of {', '.join(BACKENDS)}")
    crit = load_criteria(criteria) if criteria is not None else None
    if model.startswith("bi-encoder:"):
        from genrel.score.st_students import untrained_bi_encoder

        options = {k: v for k, v in kwargs.items() if k in ("batch_size", "progress")}
        return untrained_bi_encoder(model[len("bi-encoder:"):], _required(crit, model), **options)
    if model == "bm25":
        from genrel.score.bm25 import BM25Scorer

        return BM25Scorer(_required(crit, model), **_without_generation(kwargs))
    for prefix, (form, prompt) in _ZERO_SHOT.items():
        if model.startswith(prefix):
            return _zero_shot(model[len(prefix) :], backend, crit, form, prompt, kwargs)
    path = Path(model)
    if path.is_dir():
        info = read_model_info(path)
        if info is None:
            _check_causal_lm_folder(path)
            return _zero_shot(model, backend, crit, "reasoning", "steps", kwargs)
        crit = _model_criteria(info, crit, model)
        if info.kind == "cross-encoder":
            return _cross_encoder(path, backend, crit, info, kwargs)
        if info.kind in ("st-cross-encoder", "bi-encoder"):
            return _st_student(path, backend, crit, info, kwargs)
        return _causal_lm(model, backend, crit, info.form or "reasoning", info.prompt,
                          {"temperature": info.temperature, "max_length": info.max_length, **kwargs})
    if path.exists():
        raise ModelError("not a model directory", where=model, hint=FORMS_HINT)
    if model == EMBEDDED_MODEL or "/" in model:
        return _zero_shot(model, backend, crit, "reasoning", "steps", kwargs)
    raise ModelError(f"unknown model '{model}'", hint=FORMS_HINT)


def load_causal_lm(name: str, *, dtype: str = "auto"):
    """(model, tokenizer) through the model layer's loader (local folder, HF cache, embedded), in eval mode."""
    from genrel.models.load import load_model

    return load_model(name, dtype=dtype)


def _zero_shot(model: str, backend: str, crit: Criteria | None, form: str, prompt: str, kwargs: dict) -> Scorer:
    return _causal_lm(model, backend, _required(crit, model), form, prompt, kwargs)


def _without_generation(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in _GENERATION_ONLY}


def _causal_lm(model: str, backend: str, crit: Criteria, form: str, prompt: str, kwargs: dict) -> Scorer:
    dtype, device = kwargs.pop("dtype", "auto"), kwargs.pop("device", None)
    if backend == "onnx":
        raise ModelError("the ONNX backend serves cross-encoders only", where=model, hint="use --backend hf or vllm")
    if backend == "vllm":
        from genrel.models.load import model_path
        from genrel.score.vllm_backend import VLLMScorer

        return VLLMScorer.from_pretrained(model_path(model), crit, form=form, prompt=prompt, dtype=dtype, **kwargs)
    from genrel.score.lm import LMScorer

    lm, tokenizer = load_causal_lm(model, dtype=dtype)
    if device not in (None, "auto"):
        lm = lm.to(device)
    return LMScorer(lm, tokenizer, crit, form=form, prompt=prompt, **kwargs)


def _cross_encoder(path: Path, backend: str, crit: Criteria, info: ModelInfo, kwargs: dict) -> Scorer:
    device = kwargs.get("device")
    kwargs = _without_generation(kwargs)
    has_torch = any((path / f).is_file() for f in _TORCH_WEIGHTS)
    if backend == "vllm":
        raise ModelError("vLLM serves causal LMs, not cross-encoders", where=str(path), hint="use --backend hf or onnx")
    if backend == "onnx" or ((path / ONNX_FILE).is_file() and not has_torch):
        from genrel.score.onnx_backend import OnnxCrossEncoderScorer

        scorer = OnnxCrossEncoderScorer.from_dir(path, **kwargs)
    else:
        from genrel.score.cross_encoder import CrossEncoderScorer

        scorer = CrossEncoderScorer.from_dir(path, device=device, **kwargs)
    scorer.criteria = crit
    return scorer


def _st_student(path: Path, backend: str, crit: Criteria, info: ModelInfo, kwargs: dict) -> Scorer:
    from genrel.score.st_students import BiEncoderScorer, STCrossEncoderScorer

    if backend != "hf":
        raise ModelError(f"a {info.kind} student runs on torch only", where=str(path), hint="use --backend hf")
    cls = BiEncoderScorer if info.kind == "bi-encoder" else STCrossEncoderScorer
    options = {k: v for k, v in _without_generation(kwargs).items() if k in ("batch_size", "progress", "device")}
    scorer = cls.from_dir(path, **options)
    scorer.criteria = crit
    return scorer


def _model_criteria(info: ModelInfo, crit: Criteria | None, where: str) -> Criteria:
    saved = info.criteria_model()
    if crit is None:
        return saved
    if crit.label_names != saved.label_names:
        raise ModelError(
            f"criteria '{crit.name}' has labels {crit.label_names}; the model was trained on {saved.label_names}",
            where=where,
            hint="omit --criteria to use the model's own",
        )
    return crit


def _required(crit: Criteria | None, model: str) -> Criteria:
    if crit is None:
        raise ModelError("this model needs criteria to judge with", where=model, hint="pass --criteria NAME")
    return crit


def _check_causal_lm_folder(path: Path) -> None:
    """A plain HF folder can be scored zero-shot only if it holds a causal LM."""
    config = path / "config.json"
    if not config.is_file():
        raise ModelError(
            "not a model directory (no config.json or genrel_model.json)", where=str(path), hint=FORMS_HINT
        )
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except json.JSONDecodeError as exc:
        raise ModelError(f"invalid JSON: {exc.msg}", where=f"{config}:{exc.lineno}") from None
    if architectures and not any(a.endswith(("ForCausalLM", "ForConditionalGeneration")) for a in architectures):
        raise ModelError(
            f"a {architectures[0]} without genrel_model.json: its outputs mean nothing to genrel",
            where=str(path),
            hint="train it with `genrel train cross-encoder`, or pass a causal LM",
        )
