"""Stage configs: YAML plus --set overrides, unknown keys rejected with the field named."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from genrel.config import StageConfig, apply_override
from genrel.errors import ConfigError


class Inner(BaseModel):
    mode: str = "hard"
    alpha: float = 0.0


class DemoConfig(StageConfig):
    name: str = "x"
    steps: int = 3
    sam: Inner = Inner()


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run\nsam: {mode: soft}\n")
    cfg = DemoConfig.load(path, ["steps=7", "sam.alpha=0.5"])
    assert (cfg.name, cfg.steps, cfg.sam.mode, cfg.sam.alpha) == ("run", 7, "soft", 0.5)


def test_unknown_key_names_field_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("nmae: run\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: field 'nmae': unknown field"):
        DemoConfig.load(path)


def test_bad_type_names_nested_field():
    with pytest.raises(ConfigError, match=r"field 'sam\.alpha'"):
        DemoConfig.load(None, ["sam.alpha=lots"])


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_override({}, "no-equals-sign")


def test_saved_config_reloads_identically(tmp_path):
    cfg = DemoConfig.load(None, ["steps=9", "sam.mode=first_error"])
    path = cfg.save(tmp_path / "run" / "config.yaml")
    assert DemoConfig.load(path) == cfg
