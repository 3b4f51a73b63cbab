"""Distillation: teacher labelling (rows, soft labels, resume), the merged training set, the label-first
LM student (loss, KL to the teacher, train/score agreement, one-pass scoring, LoRA, resume) and the
cross-encoder student on soft labels. Tiny random models only; a few seconds each on 2 CPU cores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from genrel.criteria import load_criteria
from genrel.data import Pair, write_pairs_jsonl
from genrel.distill import DistillConfig, LabelConfig, build_distill_set, read_labels, run_distill, run_label, teacher_fields
from genrel.distill.labels_file import TeacherLabel, append_records, labelled_ids
from genrel.errors import ConfigError, DataError, MissingExtraError, ModelError
from genrel.grammar import LABEL_OPEN
from genrel.score.base import Scored

CRITERIA = load_criteria("trec-dl")
NAMES = CRITERIA.label_names  # irrelevant, related, highly, perfect
REASONING = (
    '<step id="need">The price.</step>\n<step id="topic">On topic. Verdict: yes</step>\n'
    '<step id="answer">Answers. Verdict: yes</step>\n<step id="exact">Exact. Verdict: yes</step>'
)
# The LM student tests use the trec-dl labels with short texts and two steps: the prompt is most of
# the cost of a step with the tiny byte-level tokenizer.
MINI_CRITERIA = """
name: mini
labels:
  - {id: 0, name: irrelevant, gain: 0, means: "off topic"}
  - {id: 1, name: related, gain: 1, means: "on topic"}
  - {id: 2, name: highly, gain: 2, means: "answers"}
  - {id: 3, name: perfect, gain: 3, means: "exact answer"}
steps:
  - {id: need, ask: "Need?"}
  - {id: topic, ask: "On topic?", verdicts: [yes, no], expect: {irrelevant: no, related: yes, highly: yes, perfect: yes}}
"""
MINI_REASONING = '<step id="need">Shoes.</step>\n<step id="topic">On topic. Verdict: yes</step>'


def _scored(label: str, p: float, error: str | None = None, reasoning: str = "r") -> Scored:
    rest = (1 - p) / 3
    probs = {n: (p if n == label else rest) for n in NAMES}
    return Scored(label=label, score=0.0, probabilities=probs, reasoning=reasoning, format_error=error)


def _pool(path: Path, n: int = 5) -> Path:
    pairs = [
        Pair(row_id=f"r{i}", query="red running shoes" if i % 2 else "wedding dress cost", text="Acme trail shoe, red.",
             qid=f"q{i % 2}", docid=f"d{i}", label=NAMES[i % 4])
        for i in range(n)
    ]
    return write_pairs_jsonl(pairs, path)


def _mini(tmp_path: Path) -> str:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI_CRITERIA)
    return str(path)


def _label_row(i: int, soft: dict[str, float], reasoning: str | None = None, **pair) -> dict:
    row = {"row_id": f"t{i}", "qid": f"q{i}", "docid": f"d{i}", "query": "red running shoes",
           "text": "Acme trail shoe, red, size 42.", "title": None, "fields": {}, "gold": None,
           "votes": None, "probabilities": soft, "soft_label": soft, "reasoning": reasoning,
           "reasoning_label": max(soft, key=soft.get) if reasoning else None, "n_samples": 2, "n_unparseable": 0}
    row.update(pair)
    return row


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOOD = {"irrelevant": 0.02, "related": 0.08, "highly": 0.1, "perfect": 0.8}
BAD = {"irrelevant": 0.8, "related": 0.1, "highly": 0.06, "perfect": 0.04}


# -- teacher labelling ---------------------------------------------------------------------------------
def test_teacher_fields_soft_label_votes_and_kept_reasoning():
    samples = [
        _scored("highly", 0.7, error="missing_step", reasoning="bad"),
        _scored("perfect", 0.6, reasoning="first perfect"),
        _scored("highly", 0.5, reasoning="first parsed highly"),
        _scored("perfect", 0.9, reasoning="second perfect"),
    ]
    fields = teacher_fields(samples, CRITERIA)
    assert math.isclose(sum(fields["soft_label"].values()), 1.0)
    assert fields["soft_label"] == fields["probabilities"]
    assert math.isclose(fields["probabilities"]["perfect"], np.mean([0.1, 0.6, 0.5 / 3, 0.9]))
    assert fields["votes"] == {"irrelevant": 0.0, "related": 0.0, "highly": 1 / 3, "perfect": 2 / 3}
    assert (fields["n_samples"], fields["n_unparseable"], fields["format_errors"]) == (4, 1, {"missing_step": 1})
    assert (fields["reasoning"], fields["reasoning_label"]) == ("first perfect", "perfect")


def test_teacher_fields_when_no_sample_parses():
    fields = teacher_fields([_scored("related", 0.9, error="no_label")] * 2, CRITERIA)
    assert fields["votes"] is None and fields["reasoning"] is None and fields["reasoning_label"] is None
    assert fields["teacher_label"] == "related" and math.isclose(sum(fields["soft_label"].values()), 1.0)


def test_label_writes_k_samples_per_pair_and_resumes_without_repeats(tiny_model_dir, tmp_path, monkeypatch):
    from genrel.score.lm import LMScorer

    generated = []
    original = LMScorer._generate

    def spy(self, texts, stop_at_label, max_new_tokens):
        generated.append((len(texts), dict(self.generation_kwargs)))
        return original(self, texts, stop_at_label, max_new_tokens)

    monkeypatch.setattr(LMScorer, "_generate", spy)
    pool, out = _pool(tmp_path / "pool.jsonl"), tmp_path / "labels.jsonl"
    cfg = LabelConfig(model=str(tiny_model_dir), data=str(pool), criteria=_mini(tmp_path), out=str(out), samples=3,
                      max_new_tokens=4, limit=3, batch_size=2, progress=False)
    first = run_label(cfg)
    assert (first.labelled, first.skipped) == (3, 0)
    assert [n for n, _ in generated] == [6, 3]  # 2 pairs × 3 samples, then 1 × 3
    assert all(kw["do_sample"] and kw["temperature"] == 0.8 for _, kw in generated)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row_id"] for r in rows] == ["r0", "r1", "r2"]
    for row, gold in zip(rows, NAMES):
        assert row["gold"] == gold and row["n_samples"] == 3 and row["query"] and row["qid"] and row["docid"]
        assert set(row["soft_label"]) == set(NAMES) and math.isclose(sum(row["soft_label"].values()), 1.0)
        assert row["votes"] is None or math.isclose(sum(row["votes"].values()), 1.0)
        assert 0 <= row["n_unparseable"] <= 3
    assert (tmp_path / "labels.config.yaml").is_file()

    with open(out, "a") as f:
        f.write('{"row_id": "r3", "query": "torn wri')  # a run killed mid-line
    second = run_label(cfg.model_copy(update={"limit": None}))
    assert (second.labelled, second.skipped) == (2, 3)
    ids = [json.loads(line)["row_id"] for line in out.read_text().splitlines()]
    assert ids == ["r0", "r1", "r2", "r3", "r4"]
    assert len(read_labels(out, CRITERIA)) == 5


def test_label_refuses_to_append_labels_of_another_teacher_setting(tmp_path):
    pool, out = _pool(tmp_path / "pool.jsonl"), tmp_path / "labels.jsonl"
    cfg = LabelConfig(model="some-model", data=str(pool), criteria="trec-dl", out=str(out), samples=4)
    cfg.save(tmp_path / "labels.config.yaml")
    _write_rows(out, [_label_row(0, GOOD)])
    with pytest.raises(ConfigError, match="samples"):
        run_label(cfg.model_copy(update={"samples": 2}))


def test_label_rejects_a_label_first_teacher(tmp_path):
    from genrel.models.model_dir import write_model_info

    write_model_info(tmp_path / "student", kind="causal-lm", form="label-first", criteria=CRITERIA, created_by="t", max_length=64)
    cfg = LabelConfig(model=str(tmp_path / "student"), data=str(_pool(tmp_path / "p.jsonl")), out=str(tmp_path / "l.jsonl"))
    with pytest.raises(ModelError, match="does not reason"):
        run_label(cfg)


def test_label_vllm_backend_without_vllm_names_the_extra(tiny_model_dir, tmp_path):
    pytest.importorskip("genrel.score.vllm_backend")
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    cfg = LabelConfig(model=str(tiny_model_dir), data=str(_pool(tmp_path / "p.jsonl")), criteria="trec-dl",
                      out=str(tmp_path / "l.jsonl"), backend="vllm")
    with pytest.raises(MissingExtraError, match=r"genrel\[gpu\]"):
        run_label(cfg)


def test_labels_file_torn_and_bad_lines(tmp_path):
    path = _write_rows(tmp_path / "l.jsonl", [_label_row(0, GOOD), _label_row(1, BAD)])
    with open(path, "a") as f:
        f.write('{"row_id": "t2", "soft')
    assert [t.pair.row_id for t in read_labels(path, CRITERIA)] == ["t0", "t1"]
    assert labelled_ids(path) == {"t0", "t1"} and path.read_text().endswith("}\n")
    append_records(path, [_label_row(2, GOOD)])
    assert [t.pair.row_id for t in read_labels(path, CRITERIA)] == ["t0", "t1", "t2"]

    bad = _write_rows(tmp_path / "bad.jsonl", [_label_row(0, GOOD), _label_row(1, {"great": 1.0})])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: field 'soft_label'"):
        read_labels(bad, CRITERIA)
    middle = tmp_path / "middle.jsonl"
    middle.write_text(json.dumps(_label_row(0, GOOD)) + "\n{oops\n" + json.dumps(_label_row(1, GOOD)) + "\n")
    with pytest.raises(DataError, match=r"middle\.jsonl:2"):
        labelled_ids(middle)


# -- the training set ----------------------------------------------------------------------------------
def test_distill_set_mixes_gold_and_teacher_per_row():
    def teacher(i, soft):
        return TeacherLabel(Pair(row_id=f"t{i}", query="q", text=f"doc {i}", qid="1", docid=f"d{i}"), soft,
                            gold="related", reasoning="why" if i == 0 else None, reasoning_label="perfect" if i == 0 else None)

    gold = [Pair(row_id="g0", query="q", text="doc 0", qid="1", docid="d0", label="highly"),
            Pair(row_id="g9", query="q", text="doc 9", qid="1", docid="d9", label="irrelevant")]
    data = build_distill_set([teacher(0, GOOD), teacher(1, BAD)], gold, gold_weight=0.3)
    assert [p.row_id for p in data.pairs] == ["t0", "t1", "g9"]
    assert [p.label for p in data.pairs] == ["highly", None, "irrelevant"]  # the pool's own gold is not taught
    assert data.label_weights == [0.3, 0.0, 1.0]
    assert data.soft_labels == [GOOD, BAD, None]
    assert data.explanations == ["why", None, None] and data.explanation_labels == ["perfect", None, None]
    assert data.summary() == {"pairs": 3, "teacher": 2, "gold": 2, "both": 1, "explanations": 1}

    from genrel.distill.targets import target_distributions

    targets = target_distributions(data.pairs, CRITERIA, data.soft_labels, data.label_weights)
    assert np.allclose(targets[0], 0.3 * np.eye(4)[2] + 0.7 * np.array(list(GOOD.values())))
    assert np.allclose(targets.sum(1), 1.0)


# -- the label-first LM student -------------------------------------------------------------------------
def _lm_labels(tmp_path: Path, n: int = 6) -> tuple[Path, Path]:
    """(labels file, criteria file) for the LM student: two kinds of pairs the teacher tells apart."""
    criteria = Path(_mini(tmp_path))
    rows = [
        _label_row(i, GOOD if i % 2 else BAD, MINI_REASONING if i % 2 else None,
                   query="red running shoes" if i % 2 else "wedding dress cost",
                   text="Acme trail shoe, red, size 42." if i % 2 else "搜索词的主需求")
        for i in range(n)
    ]
    return _write_rows(tmp_path / "labels.jsonl", rows), criteria


def _mean_kl(scorer, pairs, targets) -> float:
    import torch

    with torch.inference_mode():
        log_scores = scorer.label_log_scores([scorer.prompt_text(p) + LABEL_OPEN for p in pairs])  # [N, L]
    log_p = log_scores - np.logaddexp.reduce(log_scores, axis=1, keepdims=True)
    return float(np.mean(np.sum(targets * (np.log(np.clip(targets, 1e-12, None)) - log_p), axis=1)))


@pytest.fixture(scope="module")
def lm_student(tiny_model_dir, tmp_path_factory):
    """Train the tiny model as a label-first student; returns (cfg, run, KL before, KL after)."""
    from genrel.distill.students import load_distill_set
    from genrel.score.load import load_scorer

    tmp = tmp_path_factory.mktemp("lm-student")
    labels, criteria = _lm_labels(tmp, n=4)
    cfg = DistillConfig(student="lm", labels=str(labels), criteria=str(criteria), base=str(tiny_model_dir),
                        output_dir=str(tmp / "out"), epochs=4, lr=3e-3, batch_size=2, log_every=1, progress=False,
                        lm={"explanation_weight": 0.5, "max_explanation_tokens": 24})
    data = load_distill_set(cfg)
    targets = np.array([[s[n] for n in NAMES] for s in data.soft_labels])
    before = _mean_kl(load_scorer(str(tiny_model_dir), criteria=str(criteria), progress=False), data.pairs, targets)
    run = run_distill(cfg)
    after = _mean_kl(load_scorer(cfg.output_dir, progress=False), data.pairs, targets)
    return cfg, run, before, after


def test_lm_student_loss_and_kl_to_the_teacher_go_down(lm_student):
    cfg, run, before, after = lm_student
    lines = [json.loads(x) for x in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "train/lr" in x]
    assert len(steps) == 8 and all(math.isfinite(x["train/loss"]) for x in steps)  # 4 epochs × 2 steps
    assert np.mean([x["train/loss"] for x in steps[-2:]]) < np.mean([x["train/loss"] for x in steps[:2]])
    assert steps[-1]["train/explanation_ce"] < steps[0]["train/explanation_ce"]
    assert after < before / 2, (before, after)
    assert run.report.steps == 8 and not (Path(cfg.output_dir) / "checkpoint").exists()


def test_saved_lm_student_is_label_first_and_scores_in_one_pass(lm_student, monkeypatch):
    import torch

    from genrel.score.lm import LMScorer
    from genrel.score.load import load_scorer
    from genrel.models.model_dir import read_model_info

    cfg, *_ = lm_student
    info = read_model_info(cfg.output_dir)
    assert (info.kind, info.form, info.prompt, info.max_length) == ("causal-lm", "label-first", "steps", 768)
    scorer = load_scorer(cfg.output_dir, progress=False)
    assert isinstance(scorer, LMScorer) and scorer.form == "label-first"

    def no_generate(*args, **kwargs):
        raise AssertionError("label-first scoring must not generate")

    monkeypatch.setattr(scorer.model, "generate", no_generate)
    widths = []
    hook = scorer.model.register_forward_pre_hook(lambda m, args, kwargs: widths.append(kwargs["input_ids"].shape[1]),
                                                  with_kwargs=True)
    pairs = [Pair(row_id="a", query="red running shoes", text="Acme trail shoe, red, size 42."),
             Pair(row_id="b", query="wedding dress cost", text="搜索词的主需求")]
    with torch.inference_mode():
        scored = scorer.score_pairs(pairs)
    hook.remove()
    longest_label = max(len(c) for c in scorer.tokenizer([n + "</label>" for n in NAMES])["input_ids"])
    # the prompt is read once (the shared prefix, then each pair's own tokens); the rest are label tokens
    prompt_passes = 1 + (scorer.prefix_tokens > 0)
    assert sum(w > longest_label for w in widths) == prompt_passes
    assert len(widths) <= prompt_passes + len(NAMES)
    assert all(math.isclose(sum(s.probabilities.values()), 1.0) for s in scored)
    assert all(s.reasoning is None and s.reasoning_tokens == 0 for s in scored)


def test_lm_student_training_reads_labels_exactly_like_the_scorer(tiny_model_dir, tmp_path):
    import torch

    from genrel.distill.label_first import encode_examples, student_log_scores
    from genrel.distill.students import load_distill_set
    from genrel.distill.targets import target_distributions
    from genrel.score.load import load_scorer

    labels, criteria = _lm_labels(tmp_path)
    cfg = DistillConfig(student="lm", labels=str(labels), criteria=str(criteria), output_dir=str(tmp_path / "o")).resolved()
    data = load_distill_set(cfg)
    scorer = load_scorer(str(tiny_model_dir), criteria=str(criteria), progress=False, dtype="float32")  # as trained
    scorer.form, scorer.prompt = "label-first", "steps"
    targets = target_distributions(data.pairs, scorer.criteria, data.soft_labels, data.label_weights)
    examples = encode_examples(scorer, data, targets, 8)
    assert examples[1].explanation and examples[1].explanation_label == NAMES.index("perfect")
    assert examples[0].explanation == [] and examples[0].explanation_label == -1
    with torch.no_grad():
        trained, nll, n_tokens = student_log_scores(scorer.model, examples[:3], scorer.pad_id)  # [3, L]
        scored = scorer.label_log_scores([scorer.prompt_text(p) + LABEL_OPEN for p in data.pairs[:3]])
    assert np.allclose(trained.numpy(), scored, atol=1e-4)
    assert n_tokens == 8 and float(nll) > 0  # one explanation (pair 1), cut to 8 tokens


def test_lm_student_lora_resumes_after_an_interruption_and_saves_merged(tiny_model_dir, tmp_path, monkeypatch):
    import genrel.distill.label_first as label_first

    labels, criteria = _lm_labels(tmp_path, n=2)
    cfg = DistillConfig(student="lm", labels=str(labels), criteria=str(criteria), base=str(tiny_model_dir),
                        output_dir=str(tmp_path / "out"), epochs=2, batch_size=2, progress=False,
                        lm={"prompt": "no-steps", "explanation_weight": 0.0, "lora": {"r": 4, "alpha": 8}})
    original, calls = label_first.distillation_loss, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first step of epoch 2
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(label_first, "distillation_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_distill(cfg)
    assert (tmp_path / "out" / "checkpoint" / "state.json").is_file()
    monkeypatch.setattr(label_first, "distillation_loss", original)
    with pytest.raises(ModelError, match=r"other settings \(lr\)"):
        run_distill(cfg.model_copy(update={"lr": 1e-3}))
    run = run_distill(cfg)
    assert run.report.steps == 2
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # epoch 1 is not trained again
    assert not (tmp_path / "out" / "adapter_config.json").exists()  # LoRA merged into the weights
    assert (tmp_path / "out" / "model.safetensors").is_file() and not (tmp_path / "out" / "checkpoint").exists()


# -- the cross-encoder student ---------------------------------------------------------------------------
def test_cross_encoder_student_learns_soft_labels_mixed_with_gold(tmp_path):
    from score_helpers import save_tiny_encoder

    from genrel.score.cross_encoder import CrossEncoderModel
    from genrel.score.load import load_scorer
    from genrel.models.model_dir import read_model_info

    base = save_tiny_encoder(tmp_path / "tiny-bert")
    rows = [_label_row(i, GOOD if i % 2 else BAD, query="red running shoes" if i % 2 else "garden hose price",
                       text="red running shoes trail" if i % 2 else "blue cotton shirt") for i in range(16)]
    labels = _write_rows(tmp_path / "labels.jsonl", rows)
    gold = write_pairs_jsonl([Pair(row_id="g", query="red running shoes", text="red shoe size", qid="qg", docid="dg", label="highly"),
                              Pair(row_id="g1", query="red running shoes", text="red running shoes trail", qid="q1", docid="d1",
                                   label="perfect")], tmp_path / "gold.jsonl")
    cfg = DistillConfig(student="cross-encoder", labels=str(labels), gold=str(gold), gold_weight=0.5, base=str(base),
                        output_dir=str(tmp_path / "ce"), epochs=4, lr=5e-3, batch_size=8, max_length=32, progress=False)
    run = run_distill(cfg)
    assert run.data == {"pairs": 17, "teacher": 16, "gold": 2, "both": 1, "explanations": 0}
    info = read_model_info(cfg.output_dir)
    assert info.kind == "cross-encoder" and info.criteria_model().label_names == NAMES
    assert (Path(cfg.output_dir) / "distill_config.yaml").is_file()

    pairs = [Pair(row_id=r["row_id"], query=r["query"], text=r["text"]) for r in rows]
    targets = np.array([[r["soft_label"][n] for n in NAMES] for r in rows])

    def kl(probs):
        return float(np.mean(np.sum(targets * (np.log(targets) - np.log(np.clip(probs, 1e-12, None))), axis=1)))

    import torch

    untrained = CrossEncoderModel.from_base(str(base), CRITERIA, max_length=32)
    with torch.no_grad():
        before = untrained.logits(pairs).softmax(-1).numpy()
    scored = load_scorer(cfg.output_dir, progress=False).score_pairs(pairs)
    after = np.array([[s.probabilities[n] for n in NAMES] for s in scored])
    assert kl(after) < kl(before) - 0.1, (kl(before), kl(after))  # from uniform towards the teacher's marginal


def test_cross_encoder_student_gets_soft_labels_and_per_row_gold_weights(tmp_path, monkeypatch):
    import genrel.distill.cross_encoder_train as trainer

    seen = {}
    monkeypatch.setattr(trainer, "train_cross_encoder", lambda pairs, criteria, out, **kw: seen.update(pairs=pairs, **kw))
    labels = _write_rows(tmp_path / "labels.jsonl", [_label_row(0, GOOD), _label_row(1, BAD)])
    gold = write_pairs_jsonl([Pair(row_id="g", query="q", text="t", qid="q1", docid="d1", label="highly"),
                              Pair(row_id="h", query="q", text="u", qid="q9", docid="d9", label="related")], tmp_path / "g.jsonl")
    run_distill(DistillConfig(student="cross-encoder", labels=str(labels), gold=str(gold), gold_weight=0.25,
                              output_dir=str(tmp_path / "ce")))
    assert [p.label for p in seen["pairs"]] == [None, "highly", "related"]
    assert seen["soft_labels"] == [GOOD, BAD, None] and seen["label_weights"] == [0.0, 0.25, 1.0]
    assert (seen["base"], seen["lr"], seen["batch_size"], seen["max_length"]) == ("minilm", 3e-5, 16, 256)


# -- configs and CLI ---------------------------------------------------------------------------------------
def test_shipped_distill_configs_load():
    from conftest import REPO

    files = sorted((REPO / "configs" / "distill").glob("*.yaml"))
    assert {f.name for f in files} >= {"cpu-cross-encoder.yaml", "cpu-lm.yaml"}
    for path in files:
        cfg = DistillConfig.load(path).resolved()
        assert cfg.base and cfg.lr and cfg.batch_size and cfg.max_length


def test_distill_config_checks_explanation_needs_steps():
    with pytest.raises(ConfigError, match="lm.prompt=steps"):
        DistillConfig.load(None, ["student=lm", "labels=x.jsonl", "lm.prompt=no-steps"])
    assert DistillConfig.load(None, ["student=lm", "labels=x", "lm.lora.r=8"]).resolved().lr == 2e-4


def test_cli_label_and_distill(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from genrel.cli import app

    pool = _pool(tmp_path / "pool.jsonl", n=2)
    result = CliRunner().invoke(app, [
        "label", "--model", str(tiny_model_dir), "--data", str(pool), "--criteria", _mini(tmp_path), "--out",
        str(tmp_path / "labels.jsonl"), "--samples", "2", "--max-new-tokens", "2", "--limit", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "labelled 1 pairs" in result.output
    assert len(read_labels(tmp_path / "labels.jsonl", CRITERIA)) == 1

    result = CliRunner().invoke(app, ["distill", "--student", "cross-encoder", "--labels", str(tmp_path / "missing.jsonl"),
                                      "--out", str(tmp_path / "s")])
    assert isinstance(result.exception, DataError) and "labels file not found" in str(result.exception)
    result = CliRunner().invoke(app, ["distill", "--student", "tree", "--labels", "x.jsonl"])
    assert isinstance(result.exception, ConfigError) and "student" in str(result.exception)
