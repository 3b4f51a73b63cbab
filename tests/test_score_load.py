"""load_scorer: every accepted model form, and a clear ModelError for everything else."""

from __future__ import annotations

import importlib.util
import json

import pytest

from genrel.criteria import load_criteria
from genrel.errors import MissingExtraError, ModelError
from genrel.score import load_scorer
from genrel.score.bm25 import BM25Scorer
from genrel.score.lm import LMScorer
from genrel.models.model_dir import read_model_info, write_model_info
from score_helpers import save_tiny_cross_encoder_dir, save_tiny_encoder

TREC = load_criteria("trec-dl")


@pytest.fixture(scope="module")
def genrel_lm_dir(tmp_path_factory):
    from genrel.models.tiny import save_tiny

    path = save_tiny(tmp_path_factory.mktemp("student"))
    write_model_info(path, kind="causal-lm", form="label-first", criteria=TREC, temperature=2.0, max_length=900,
                     created_by="tests")
    return path


def test_bm25_needs_criteria():
    assert isinstance(load_scorer("bm25", criteria="trec-dl"), BM25Scorer)
    assert load_scorer("bm25", criteria=TREC, progress=False, batch_size=8).criteria == TREC  # common options
    with pytest.raises(ModelError, match="needs criteria"):
        load_scorer("bm25")


def test_plain_causal_lm_folder_is_zero_shot_reasoning(tiny_model_dir):
    scorer = load_scorer(str(tiny_model_dir), criteria=TREC)
    assert isinstance(scorer, LMScorer)
    assert (scorer.form, scorer.prompt, scorer.temperature) == ("reasoning", "steps", 1.0)
    with pytest.raises(ModelError, match="needs criteria"):
        load_scorer(str(tiny_model_dir))


def test_zero_shot_prefixes(tiny_model_dir):
    steps = load_scorer(f"zero-shot:{tiny_model_dir}", criteria="trec-dl")
    nosteps = load_scorer(f"zero-shot-nosteps:{tiny_model_dir}", criteria="trec-dl", progress=False)
    assert (steps.form, steps.prompt) == ("reasoning", "steps")
    assert (nosteps.form, nosteps.prompt) == ("label-first", "no-steps")
    assert nosteps.name.startswith("zero-shot-nosteps:")
    from genrel.data import Pair

    scored = nosteps.score_pairs([Pair(row_id="0", query="q", text="t")])[0]
    assert sum(scored.probabilities.values()) == pytest.approx(1.0)


def test_genrel_causal_lm_directory_brings_its_form_criteria_and_temperature(genrel_lm_dir):
    scorer = load_scorer(str(genrel_lm_dir), batch_size=2)
    assert isinstance(scorer, LMScorer)
    assert (scorer.form, scorer.temperature, scorer.max_length, scorer.batch_size) == ("label-first", 2.0, 900, 2)
    assert scorer.criteria == TREC
    with pytest.raises(ModelError, match="trained on"):
        load_scorer(str(genrel_lm_dir), criteria="esci")


def test_cross_encoder_directory_and_backends(tmp_path, genrel_lm_dir):
    ce_dir = save_tiny_cross_encoder_dir(tmp_path / "ce", TREC)
    assert type(load_scorer(str(ce_dir))).__name__ == "CrossEncoderScorer"
    with pytest.raises(ModelError, match="vLLM serves causal LMs"):
        load_scorer(str(ce_dir), backend="vllm")
    with pytest.raises(ModelError, match="cross-encoders only"):
        load_scorer(str(genrel_lm_dir), backend="onnx")
    with pytest.raises(ModelError, match="unknown backend"):
        load_scorer(str(ce_dir), backend="tensorrt")


def test_one_call_loads_any_model_and_names_it_as_given(tmp_path, genrel_lm_dir):
    """eval and the demo pass generation settings whatever the model; the name is what resume checks."""
    ce_dir = save_tiny_cross_encoder_dir(tmp_path / "ce", TREC)
    ce = load_scorer(str(ce_dir), max_new_tokens=64, dtype="float32", batch_size=4)
    assert ce.name == str(ce_dir) and ce.batch_size == 4
    assert load_scorer("bm25", criteria=TREC, max_new_tokens=64).name == "bm25"
    lm = load_scorer(str(genrel_lm_dir), max_new_tokens=64)
    assert lm.name == str(genrel_lm_dir) and lm.max_new_tokens == 64
    assert load_scorer(str(genrel_lm_dir), name="student-v2").name == "student-v2"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_names_the_extra(genrel_lm_dir):
    with pytest.raises(MissingExtraError, match=r"genrel\[gpu\]"):
        load_scorer(str(genrel_lm_dir), backend="vllm")


def test_everything_else_is_a_clear_model_error(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'bm52'.*zero-shot:"):
        load_scorer("bm52", criteria="trec-dl")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelError, match="not a model directory"):
        load_scorer(str(tmp_path / "file.txt"), criteria="trec-dl")
    with pytest.raises(ModelError, match="no config.json"):
        load_scorer(str(tmp_path), criteria="trec-dl")
    encoder = save_tiny_encoder(tmp_path / "encoder")  # an encoder without genrel_model.json
    with pytest.raises(ModelError, match="BertModel without genrel_model.json"):
        load_scorer(str(encoder), criteria="trec-dl")


def test_model_info_errors_name_the_file(tmp_path):
    (tmp_path / "genrel_model.json").write_text("{not json")
    with pytest.raises(ModelError, match="genrel_model.json:1"):
        read_model_info(tmp_path)
    (tmp_path / "genrel_model.json").write_text(json.dumps({"kind": "causal-lm", "criteria": TREC.model_dump()}))
    with pytest.raises(ModelError, match="needs 'form'"):
        read_model_info(tmp_path)
    (tmp_path / "genrel_model.json").write_text(json.dumps({"kind": "ranker", "criteria": TREC.model_dump()}))
    with pytest.raises(ModelError, match="kind"):
        read_model_info(tmp_path)
    write_model_info(tmp_path, kind="cross-encoder", criteria=TREC, created_by="t", max_length=64, extra_note="kept")
    info = read_model_info(tmp_path)
    assert info.criteria_model() == TREC and info.model_extra == {"extra_note": "kept"}
