"""LoRA settings → PEFT config: every layer by default, the top N layers on request, errors that name the field."""

from __future__ import annotations

import pytest

from genrel.errors import ConfigError
from genrel.models.lora import LoraSettings, lora_config
from genrel.models.tiny import tiny_causal_lm


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    return tiny_causal_lm(tiny_tokenizer, layers=4)


def test_default_adapts_every_layer(model):
    config = lora_config(LoraSettings(), model)
    assert config.layers_to_transform is None and config.target_modules == "all-linear"
    assert lora_config(None, model) is None


def test_top_layers_names_the_last_layers_and_every_linear_module(model):
    config = lora_config(LoraSettings(top_layers=2), model)
    assert config.layers_to_transform == [2, 3]
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    listed = lora_config(LoraSettings(top_layers=4, target_modules=["q_proj", "v_proj"]), model)
    assert listed.layers_to_transform == [0, 1, 2, 3] and set(listed.target_modules) == {"q_proj", "v_proj"}


def test_top_layers_errors(model):
    with pytest.raises(ConfigError, match="lora.top_layers: 5 layers asked for, the model has 4"):
        lora_config(LoraSettings(top_layers=5), model)
    with pytest.raises(ConfigError, match="lora.target_modules"):
        lora_config(LoraSettings(top_layers=1, target_modules=r".*\.q_proj"), model)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        LoraSettings(top_layers=0)
