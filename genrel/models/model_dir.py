"""The genrel model directory: a Hugging Face model/tokenizer directory plus ``genrel_model.json``,
which says what the weights are (causal LM or cross-encoder), how to read a label from them, which
criteria they were trained on and the calibration temperature. See ``docs/models.md``.

This module only reads and writes that file; loading weights is the scorers' job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genrel.config import format_validation_error
from genrel.criteria import Criteria
from genrel.errors import ModelError

INFO_FILE = "genrel_model.json"
ONNX_FILE = "model.onnx"


class ModelInfo(BaseModel):
    """Contents of ``genrel_model.json``. Unknown keys are kept (other stages may record more)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["causal-lm", "cross-encoder", "st-cross-encoder", "bi-encoder"]
    form: Literal["reasoning", "label-first"] | None = Field(
        default=None, description="causal-lm only: reasoning (steps, then <label>) or label-first."
    )
    prompt: Literal["steps", "no-steps"] = Field(
        default="steps", description="causal-lm only: prompt with the criteria steps, or asking only for the label."
    )
    criteria: dict[str, Any] = Field(description="The full criteria the model was trained on.")
    temperature: float = Field(default=1.0, gt=0, description="Divides label log-scores before the softmax.")
    max_length: int = Field(
        default=512, gt=0, description="Token budget: the prompt (causal-lm) or query + document (cross-encoder)."
    )
    created_by: str = Field(default="genrel", description="The command or stage that wrote the directory.")

    def criteria_model(self) -> Criteria:
        return Criteria.model_validate(self.criteria)


def read_model_info(model_dir: str | Path) -> ModelInfo | None:
    """The directory's ``genrel_model.json``, or None when it has none (a plain HF directory)."""
    path = Path(model_dir) / INFO_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = ModelInfo.model_validate(data)
        info.criteria_model()
    except json.JSONDecodeError as exc:
        raise ModelError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from None
    except ValidationError as exc:
        raise ModelError(format_validation_error(exc), where=str(path)) from None
    if info.kind == "causal-lm" and info.form is None:
        raise ModelError("a causal-lm model needs 'form' (reasoning or label-first)", where=str(path))
    return info


def require_model_info(model_dir: str | Path, kind: str) -> ModelInfo:
    """The directory's ``genrel_model.json``, which must exist and describe a ``kind`` model."""
    info = read_model_info(model_dir)
    if info is None or info.kind != kind:
        found = f"a {info.kind}" if info else "no genrel_model.json"
        raise ModelError(f"not a genrel {kind} directory ({found})", where=str(model_dir))
    return info


def write_model_info(
    model_dir: str | Path,
    *,
    kind: str,
    criteria: Criteria,
    created_by: str,
    max_length: int,
    temperature: float = 1.0,
    form: str | None = None,
    **extra: Any,
) -> Path:
    """Write ``genrel_model.json`` into ``model_dir`` (validated first); returns its path."""
    info = ModelInfo(
        kind=kind,
        form=form,
        criteria=criteria.model_dump(mode="json"),
        temperature=temperature,
        max_length=max_length,
        created_by=created_by,
        **extra,
    )
    path = Path(model_dir) / INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info.model_dump(mode="json", exclude_none=True), indent=2, ensure_ascii=False) + "\n")
    return path
