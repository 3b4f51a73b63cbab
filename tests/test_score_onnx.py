"""ONNX export of a cross-encoder: within 1e-4 of torch, scored through onnxruntime, int8 reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrel.criteria import load_criteria
from genrel.errors import ModelError
from genrel.score import load_scorer
from genrel.score.cross_encoder import CrossEncoderScorer
from genrel.score.onnx_backend import OnnxCrossEncoderScorer
from genrel.score.onnx_export import export_onnx, sample_pairs
from score_helpers import save_tiny_cross_encoder_dir, separable_pairs

pytest.importorskip("onnxruntime")
TREC = load_criteria("trec-dl")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    model_dir = save_tiny_cross_encoder_dir(root / "ce", TREC)
    report = export_onnx(model_dir, root / "onnx", int8=True)
    return model_dir, root / "onnx", report


def test_export_is_within_tolerance_of_torch(exported):
    _, onnx_dir, report = exported
    assert report.max_abs_diff <= 1e-4 and report.samples == len(sample_pairs())
    assert (onnx_dir / "model.onnx").is_file() and (onnx_dir / "genrel_model.json").is_file()
    assert report.int8_path and (onnx_dir / "model.int8.onnx").is_file() and report.int8_max_abs_diff is not None
    assert json.loads((onnx_dir / "onnx_export.json").read_text())["max_abs_diff"] == report.max_abs_diff
    # the served graph is onnxruntime's fused one (the speed-up), and the unfused trace is not left behind
    assert report.fused and report.fused.get("Attention") == 2 and report.fused.get("SkipLayerNormalization")
    assert sorted(p.name for p in onnx_dir.glob("*.onnx")) == ["model.int8.onnx", "model.onnx"]


def test_onnx_scorer_matches_torch(exported):
    model_dir, onnx_dir, _ = exported
    pairs = separable_pairs(6) + sample_pairs()
    torch_scorer = CrossEncoderScorer.from_dir(model_dir, batch_size=4, progress=False)
    onnx_scorer = load_scorer(str(onnx_dir), progress=False, batch_size=4)
    assert isinstance(onnx_scorer, OnnxCrossEncoderScorer)
    np.testing.assert_allclose(onnx_scorer.logits(pairs), torch_scorer.logits(pairs), atol=1e-4)
    for a, b in zip(onnx_scorer.score_pairs(pairs), torch_scorer.score_pairs(pairs)):
        assert a.label == b.label and a.score == pytest.approx(b.score, abs=1e-4)


def test_backend_onnx_on_the_torch_directory_needs_an_export(exported):
    model_dir, onnx_dir, _ = exported
    with pytest.raises(ModelError, match="no model.onnx"):
        load_scorer(str(model_dir), backend="onnx")
    int8 = OnnxCrossEncoderScorer.from_dir(onnx_dir, onnx_file="model.int8.onnx", progress=False)
    assert sum(int8.score_pairs(separable_pairs(2))[0].probabilities.values()) == pytest.approx(1.0)


def test_export_raises_beyond_the_tolerance(exported, tmp_path):
    model_dir, _, _ = exported
    with pytest.raises(ModelError, match="differs from torch"):
        export_onnx(model_dir, tmp_path / "strict", tolerance=-1.0)
    assert not (tmp_path / "strict" / "model.onnx").exists()


def test_reranker_on_the_onnx_backend_ranks_like_torch(exported):
    from genrel import Reranker

    model_dir, onnx_dir, _ = exported
    docs = ["red running shoes size", "garden hose drill battery", "trail shoe", "blue cotton shirt"]
    on_onnx = Reranker(str(onnx_dir), backend="onnx").rank("red running shoes", docs)
    on_torch = Reranker(str(model_dir), device="cpu").rank("red running shoes", docs)
    assert [h["corpus_id"] for h in on_onnx] == [h["corpus_id"] for h in on_torch]
    assert [h["score"] for h in on_onnx] == pytest.approx([h["score"] for h in on_torch], abs=1e-4)
