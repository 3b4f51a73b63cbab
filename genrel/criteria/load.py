"""Find and load criteria: a shipped preset by name, or any YAML file by path."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from genrel.config import format_validation_error
from genrel.criteria.model import Criteria
from genrel.errors import CriteriaError


def preset_names() -> list[str]:
    folder = resources.files("genrel.criteria") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str) -> Path:
    return Path(str(resources.files("genrel.criteria") / "presets" / f"{name}.yaml"))


def load_criteria(name_or_path: str | Path | Criteria) -> Criteria:
    """Load a preset (``trec-dl``, ``esci``, ``notes``, ``notes-zh``, ``homedepot``) or a YAML path."""
    if isinstance(name_or_path, Criteria):
        return name_or_path
    text = str(name_or_path)
    if text in preset_names():
        return _load_file(str(preset_path(text)))
    path = Path(text)
    if not path.exists():
        raise CriteriaError(
            f"no criteria preset or file named '{text}'",
            hint=f"presets: {', '.join(preset_names())}",
        )
    return _load_file(str(path.resolve()))


@lru_cache(maxsize=32)
def _load_file(path: str) -> Criteria:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise CriteriaError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where) from None
    if not isinstance(data, dict):
        raise CriteriaError("a criteria file must be a mapping with 'name', 'labels' and 'steps'", where=path)
    try:
        return Criteria.model_validate(data)
    except ValidationError as exc:
        raise CriteriaError(format_validation_error(exc), where=path) from None

