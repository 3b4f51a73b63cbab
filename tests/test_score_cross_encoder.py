"""Cross-encoder: training lowers the loss on a separable set, the soft-label (KL) path, targets,
checkpoint resume, and the save → load_scorer round trip. Tiny random BERT; MiniLM only when slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genrel.criteria import load_criteria
from genrel.data import Pair
from genrel.errors import DataError, ModelError
from genrel.score import load_scorer
from genrel.score.cross_encoder import CrossEncoderModel, CrossEncoderScorer
from genrel.distill.cross_encoder_train import train_cross_encoder
from genrel.distill.targets import target_distributions
from score_helpers import save_tiny_cross_encoder_dir, save_tiny_encoder, separable_pairs

TREC = load_criteria("trec-dl")
FAST = dict(epochs=12, lr=2e-2, batch_size=8, max_length=32, warmup_ratio=0.0, progress=False, log_every=1)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return str(save_tiny_encoder(tmp_path_factory.mktemp("base") / "encoder"))


def losses(out_dir) -> list[float]:
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in rows if "train/lr" in r]


def test_training_lowers_the_loss_on_a_separable_set(base, tmp_path):
    pairs = separable_pairs(16)
    run = train_cross_encoder(pairs, TREC, tmp_path / "ce", base=base, dev_pairs=pairs, **FAST)
    curve = losses(tmp_path / "ce")
    assert len(curve) == run.steps == 24
    assert np.mean(curve[-4:]) < 0.7 * np.mean(curve[:4])
    assert run.dev["accuracy"] == 1.0 and run.dev["nll_calibrated"] <= run.dev["nll"]
    info = json.loads((tmp_path / "ce" / "genrel_model.json").read_text())
    assert info["kind"] == "cross-encoder" and info["temperature"] == pytest.approx(run.temperature)
    assert info["criteria"]["name"] == "trec-dl" and info["max_length"] == 32
    assert not (tmp_path / "ce" / "checkpoint").exists()
    scored = load_scorer(str(tmp_path / "ce"), progress=False).score_pairs(pairs[:2])
    assert [s.label for s in scored] == ["perfect", "irrelevant"]


def test_soft_labels_train_by_kl(base, tmp_path):
    pairs = [p.model_copy(update={"label": None}) for p in separable_pairs(16)]
    soft = [{"perfect": 0.8, "highly": 0.2} if i % 2 == 0 else {"irrelevant": 0.9, "related": 0.1} for i in range(16)]
    run = train_cross_encoder(pairs, TREC, tmp_path / "ce", base=base, soft_labels=soft, **FAST)
    curve = losses(tmp_path / "ce")
    assert all(np.isfinite(curve)) and np.mean(curve[-4:]) < np.mean(curve[:4])
    probs = load_scorer(str(tmp_path / "ce"), progress=False).score_pairs(pairs[:1])[0].probabilities
    assert probs["perfect"] > probs["irrelevant"]
    assert run.dev is None and run.temperature == 1.0


def test_from_base_takes_a_preset_name_like_the_other_entry_points(base):
    named = CrossEncoderModel.from_base(base, "trec-dl", max_length=32)
    given = CrossEncoderModel.from_base(base, TREC, max_length=32)
    assert named.criteria.label_names == given.criteria.label_names == TREC.label_names
    assert named.model.config.id2label == {i: name for i, name in enumerate(TREC.label_names)}


def test_targets_mix_gold_and_teacher_per_row():
    pairs = separable_pairs(4)
    soft = [None, {"irrelevant": 1, "related": 3}, {"perfect": 1.0}, {"highly": 1.0}]
    targets = target_distributions(pairs, TREC, soft, [1.0, 0.0, 0.5, 0.25])
    assert targets[0].tolist() == [0, 0, 0, 1]  # gold only
    assert targets[1].tolist() == [0.25, 0.75, 0, 0]  # teacher only, normalised
    assert targets[2].tolist() == [0, 0, 0, 1]  # both agree
    assert targets[3].tolist() == pytest.approx([0.25, 0, 0.75, 0])  # 0.25 gold irrelevant + 0.75 teacher
    default = target_distributions(pairs, TREC, soft, None)  # a soft label wins where there is one
    assert default[1].tolist() == [0.25, 0.75, 0, 0] and default[0].tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    "soft, weights, message",
    [
        ([{"great": 1.0}] + [None] * 3, None, "unknown labels"),
        ([{"perfect": -1.0}] + [None] * 3, None, "non-negative"),
        ([None] * 3, None, "3 entries for 4 pairs"),
        (None, [1.5] * 4, "outside"),
        (None, [0.5] * 4, "no soft label"),
    ],
)
def test_bad_targets_are_data_errors(soft, weights, message):
    with pytest.raises(DataError, match=message):
        target_distributions(separable_pairs(4), TREC, soft, weights)


def test_unlabelled_pair_without_soft_label_is_an_error():
    pairs = [Pair(row_id="0", query="q", text="t", source="train.jsonl:7")]
    with pytest.raises(DataError, match="train.jsonl:7"):
        target_distributions(pairs, TREC, None, None)


def test_resume_continues_from_the_checkpoint(base, tmp_path, monkeypatch):
    pairs = separable_pairs(8)
    args = dict(base=base, epochs=2, lr=1e-3, batch_size=4, max_length=32, progress=False, keep_checkpoint=True)
    train_cross_encoder(pairs, TREC, tmp_path / "ce", **args)
    state = json.loads((tmp_path / "ce" / "checkpoint" / "state.json").read_text())
    assert state["epochs_done"] == 2
    finished = CrossEncoderModel.from_dir(tmp_path / "ce")
    # A rerun with the same arguments finds every epoch done: no step is taken, the weights are the same.
    import genrel.distill.cross_encoder_train as module

    monkeypatch.setattr(module, "_loss", lambda *a, **k: pytest.fail("resumed run trained again"))
    run = train_cross_encoder(pairs, TREC, tmp_path / "ce", **args)
    assert run.steps == 4
    again = CrossEncoderModel.from_dir(tmp_path / "ce")
    for a, b in zip(finished.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ModelError, match="lr"):
        train_cross_encoder(pairs, TREC, tmp_path / "ce", **{**args, "lr": 2e-3})


def test_round_trip_through_load_scorer(tmp_path):
    model_dir = save_tiny_cross_encoder_dir(tmp_path / "ce", TREC)
    direct = CrossEncoderScorer(CrossEncoderModel.from_dir(model_dir), progress=False)
    loaded = load_scorer(str(model_dir), progress=False)
    assert isinstance(loaded, CrossEncoderScorer) and loaded.criteria == TREC
    pairs = separable_pairs(6)
    for a, b in zip(direct.score_pairs(pairs), loaded.score_pairs(pairs)):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)
        assert sum(b.probabilities.values()) == pytest.approx(1.0)
    # Batching by length (with padding) gives what one pair at a time gives.
    single = CrossEncoderScorer(CrossEncoderModel.from_dir(model_dir), batch_size=1, progress=False)
    np.testing.assert_allclose(single.logits(pairs), direct.logits(pairs), atol=1e-5)


def test_output_count_must_match_the_labels(tmp_path):
    model_dir = save_tiny_cross_encoder_dir(tmp_path / "ce", TREC)
    esci = load_criteria("esci")
    ce = CrossEncoderModel.from_dir(model_dir)
    if len(esci.labels) != len(TREC.labels):
        with pytest.raises(ModelError, match="outputs"):
            CrossEncoderModel(ce.model, ce.tokenizer, esci)


@pytest.mark.slow
def test_minilm_trains_and_exports(tmp_path):
    """The real all-MiniLM-L6-v2 base: a few steps, then ONNX export within 1e-4 of torch."""
    from genrel.score.onnx_export import export_onnx

    pairs = separable_pairs(16)
    run = train_cross_encoder(pairs, TREC, tmp_path / "ce", epochs=2, lr=5e-5, batch_size=8, max_length=64,
                              dev_pairs=pairs, progress=False)
    assert np.isfinite(run.last_loss)
    report = export_onnx(tmp_path / "ce", tmp_path / "onnx")
    assert report.max_abs_diff <= 1e-4
