"""Typed configuration: one pydantic model per stage, loaded from one YAML file plus ``--set a.b=c`` overrides.

Every stage saves its resolved config next to its outputs, so a run folder describes itself.
This module knows nothing about any stage; stages subclass :class:`StageConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from genrel.errors import ConfigError

C = TypeVar("C", bound="StageConfig")


class StageConfig(BaseModel):
    """Base for stage configs: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def load(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
        """Build the config from an optional YAML file, then apply ``key.sub=value`` overrides."""
        data: dict[str, Any] = {}
        where = str(path) if path else "config"
        if path is not None:
            data = read_yaml_mapping(path)
        for item in overrides or []:
            apply_override(data, item)
        return validate_model(cls, data, where)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return path


M = TypeVar("M", bound=BaseModel)


def validate_model(cls: type[M], data: Any, where: str) -> M:
    """Validate ``data`` into ``cls``; turn pydantic's report into one line naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), where=where) from None


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        # Cross-field checks already name their fields.
        parts.append(msg if not loc and msg.startswith("field '") else f"field '{loc or '<root>'}': {msg}")
    return "; ".join(parts)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", where=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping", where=str(path))
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override in place; the value is parsed as YAML (so 3, true, [1,2] work)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value", where="--set")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
