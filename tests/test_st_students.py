"""sentence-transformers students: the saved cross-encoder is a plain ``CrossEncoder`` that ranks as
genrel's scorer does, the bi-encoder's scores are the cosine of its own embeddings, the guard keeps
the untrained weights unless held-out training queries say otherwise, and the label head is a
calibrated map from score to label distribution. Tiny random BERT encoders; no network."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrel.criteria import load_criteria
from genrel.data import Pair
from genrel.distill.config import DistillConfig
from genrel.distill.st_config import StudentSettings
from genrel.distill.st_train import extend_vocabulary, train_student
from genrel.score import load_scorer
from genrel.score.label_head import LabelHead
from score_helpers import save_tiny_encoder

TREC = load_criteria("trec-dl")
GOOD, BAD, SOSO = "red running shoes size", "garden hose drill battery", "blue cotton shirt"


def _pairs(n_queries: int = 10) -> list[Pair]:
    rows = []
    for q in range(n_queries):
        for d, (text, label) in enumerate(((GOOD, "perfect"), (BAD, "irrelevant"), (SOSO, "related"),
                                           (BAD + " the", "irrelevant"))):
            rows.append(Pair(row_id=f"{q}-{d}", qid=f"q{q}", docid=f"d{d}", query="red running shoes",
                             text=text, label=label))
    return rows


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return str(save_tiny_encoder(tmp_path_factory.mktemp("st-base") / "encoder"))


def _settings(kind: str, base: str, **extra) -> StudentSettings:
    options = dict(epochs=2, lr=5e-3, batch_size=4, max_length=32, holdout=0.3, docs_per_query=4, progress=False,
                   device="cpu", warmup_ratio=0.0)
    return StudentSettings(kind=kind, base=base, **{**options, **extra})


@pytest.fixture(scope="module")
def cross_dir(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("st-ce") / "student"
    train_student(_pairs(), TREC, out, _settings("st-cross-encoder", base))
    return out


def test_saved_cross_encoder_loads_in_sentence_transformers_and_ranks_like_genrel(cross_dir):
    from sentence_transformers import CrossEncoder

    docs = [GOOD, BAD, SOSO, "shoes for trail running", "cheap garden hose"]
    ranked = CrossEncoder(str(cross_dir), device="cpu").rank("red running shoes", docs)
    st_order = [r["corpus_id"] for r in ranked]
    scorer = load_scorer(str(cross_dir))
    scored = scorer.score_pairs([Pair(row_id=str(i), query="red running shoes", text=t) for i, t in enumerate(docs)])
    genrel_order = sorted(range(len(docs)), key=lambda i: -scored[i].score)
    assert st_order == genrel_order
    assert [r["score"] for r in ranked] == pytest.approx([scored[i].score for i in st_order], abs=1e-6)
    assert all(sum(s.probabilities.values()) == pytest.approx(1.0) for s in scored)
    info = json.loads((cross_dir / "genrel_model.json").read_text())
    assert info["kind"] == "st-cross-encoder" and len(info["head"]["weights"]) == 4


def test_cross_encoder_learns_the_separable_set(cross_dir):
    scorer = load_scorer(str(cross_dir))
    good, bad = scorer.score_pairs([Pair(row_id="a", query="red running shoes", text=GOOD),
                                    Pair(row_id="b", query="red running shoes", text=BAD)])
    assert good.score > bad.score


@pytest.fixture(scope="module")
def bi_run(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("st-bi") / "student"
    return out, train_student(_pairs(), TREC, out, _settings("bi-encoder", base))


def test_bi_encoder_scores_are_the_cosine_of_its_own_embeddings(bi_run):
    from sentence_transformers import SentenceTransformer

    out, run = bi_run
    model = SentenceTransformer(str(out), device="cpu")
    docs = [GOOD, BAD, SOSO]
    q, d = model.encode(["red running shoes"]), model.encode(docs)
    cosine = (d @ q[0]) / (np.linalg.norm(d, axis=1) * np.linalg.norm(q[0]))
    scored = load_scorer(str(out)).score_pairs([Pair(row_id=str(i), query="red running shoes", text=t)
                                                for i, t in enumerate(docs)])
    assert [s.score for s in scored] == pytest.approx(cosine.tolist(), abs=1e-5)
    assert set(run.holdout_ndcg10) == {"untrained", "fine-tuned"}


def _assert_guard_followed(out, run, base):
    from safetensors.torch import load_file

    untrained, finetuned = run.holdout_ndcg10["untrained"], run.holdout_ndcg10["fine-tuned"]
    saved, original = load_file(str(out / "model.safetensors")), load_file(f"{base}/model.safetensors")
    same = all(np.allclose(saved[k].numpy(), original[k].numpy()) for k in original if k in saved)
    if finetuned > untrained:
        assert run.kept == "fine-tuned" and not same
    else:
        assert run.kept.startswith("untrained") and same


def test_guard_decision_matches_the_saved_weights(bi_run, base):
    _assert_guard_followed(*bi_run, base)


@pytest.mark.slow
def test_guard_keeps_the_untrained_embedder_when_fine_tuning_wrecks_it(base, tmp_path):
    # a learning rate this large wrecks a tiny encoder; whatever happens, the saved weights follow the guard
    out = tmp_path / "bi"
    run = train_student(_pairs(), TREC, out, _settings("bi-encoder", base, lr=0.5, extend_vocab=False))
    _assert_guard_followed(out, run, base)


def test_label_head_is_calibrated_on_its_fitting_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=3000)
    scores = labels + rng.normal(0, 0.8, size=3000)
    head = LabelHead.fit(scores, np.eye(3)[labels])
    probs = np.exp(head.log_scores(scores))
    probs /= probs.sum(1, keepdims=True)
    assert probs.mean(0) == pytest.approx(np.bincount(labels) / 3000, abs=0.01)  # ML fit: marginals match
    assert (probs.argmax(1) == labels).mean() > 0.6
    again = LabelHead.from_dict(json.loads(json.dumps(head.to_dict())))
    assert again.log_scores([0.5]) == pytest.approx(head.log_scores([0.5]))


def test_label_head_takes_soft_targets_and_gives_unseen_labels_zero():
    head = LabelHead.fit([0.0, 1.0, 0.0, 1.0], np.array([[0.5, 0.5, 0, 0], [0, 0.2, 0.8, 0]] * 2))
    probs = np.exp(head.log_scores([0.0, 1.0]))
    assert probs[:, 3].tolist() == [0.0, 0.0] and probs[:, 0][1] < probs[:, 0][0]


def test_vocabulary_extension_gives_unknown_characters_their_own_tokens(base):
    from transformers import AutoTokenizer, BertModel

    tok, model = AutoTokenizer.from_pretrained(base), BertModel.from_pretrained(base)
    before = tok("红色 跑鞋")["input_ids"]
    added = extend_vocabulary(tok, model, ["红色 跑鞋", "红色", "跑鞋 鞋"], min_count=2)
    after = tok("红色 跑鞋")["input_ids"]
    assert added == 4 and len(set(before[1:-1])) == 1 and len(set(after[1:-1])) == 4
    assert model.get_input_embeddings().num_embeddings == len(tok)


def test_distill_config_resolves_st_students():
    cfg = DistillConfig.load(overrides=["student=bi-encoder", "labels=x.jsonl", "st.max_train_pairs=100"])
    settings = cfg.student_settings()
    assert settings.kind == "bi-encoder" and settings.max_train_pairs == 100 and settings.batch_size == 32


def test_bm25_fusion_is_chosen_on_held_out_training_queries_and_scored_as_saved(cross_dir, base, tmp_path):
    from genrel.distill.st_train import FUSION_GRID, fit_bm25_fusion
    from genrel.score.st_students import bm25_share

    fusion = fit_bm25_fusion(cross_dir, _pairs(), TREC, tmp_path / "fused", _settings("st-cross-encoder", base))
    weight = fusion["bm25_weight"]
    grid = fusion["holdout_ndcg10"]
    assert weight in FUSION_GRID and grid[str(weight)] == max(grid.values())
    pairs = [Pair(row_id=str(i), qid="q", query="red running shoes", text=t) for i, t in enumerate((GOOD, BAD, SOSO))]
    own = load_scorer(str(cross_dir)).raw_scores(pairs)
    fused = [s.score for s in load_scorer(str(tmp_path / "fused")).score_pairs(pairs)]
    assert fused == pytest.approx(((1 - weight) * own + weight * bm25_share(pairs, TREC)).tolist())
