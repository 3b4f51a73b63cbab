"""Dev validation during training: metrics from the eval stage's code, and SFT keeping its best step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genrel.criteria import load_criteria
from genrel.data import Pair, write_pairs_jsonl
from genrel.eval.report import compute_metrics
from genrel.score.base import Scored
from genrel.train.validation import ValidationSettings, dev_metrics, dev_schedule, trainer_options

CRITERIA = load_criteria("trec-dl")
LABELS = CRITERIA.label_names


def row(gold: str, label: str, verdicts: dict | None = None, error: str | None = None) -> dict:
    from genrel.eval.predictions import prediction_row

    probabilities = {name: float(name == label) for name in LABELS}
    scored = Scored(label=label, score=0.0, probabilities=probabilities, verdicts=verdicts or {}, format_error=error)
    return prediction_row(Pair(row_id=gold + label, query="q", text="t", label=gold), scored, CRITERIA)


def test_dev_metrics_are_the_eval_reports_numbers_with_the_trainers_prefix():
    rows = [row("highly", "highly", {"topic": "yes", "answer": "yes", "exact": "no"}),
            row("perfect", "highly", {"topic": "yes", "answer": "no", "exact": "no"}),
            row("irrelevant", "irrelevant", error="missing_step"), row("related", "perfect")]
    metrics, report = dev_metrics(rows, CRITERIA), compute_metrics(rows, CRITERIA)
    assert metrics["eval_accuracy"] == report["accuracy"] == 0.5
    assert metrics["eval_macro_f1"] == pytest.approx(report["macro_f1"])
    assert metrics["eval_format_error_rate"] == 0.25
    assert metrics["eval_step_accuracy"] == pytest.approx(report["step_accuracy"]) and 0 < report["step_accuracy"] < 1
    assert metrics["eval_steps/answer_accuracy"] == 0.5  # right for highly, wrong for perfect
    assert metrics["eval_n"] == 4 and set(metrics) >= {"eval_ndcg@10", "eval_steps/topic_accuracy"}


def test_dev_schedule_evaluates_every_eval_steps_and_at_the_end_and_checkpoints_with_select_best():
    from transformers import TrainerControl, TrainerState

    def steps(settings, max_steps):
        callback, state = dev_schedule(settings), TrainerState(max_steps=max_steps)
        out = []
        for step in range(1, max_steps + 1):
            state.global_step, control = step, TrainerControl()
            callback.on_step_end(None, state, control)
            out.append((step, control.should_evaluate, control.should_save))
        return [(s, save) for s, evaluate, save in out if evaluate]

    assert steps(ValidationSettings(eval_steps=25), 60) == [(25, False), (50, False), (60, False)]
    assert steps(ValidationSettings(eval_steps=2, select_best="macro_f1"), 4) == [(2, True), (4, True)]
    assert trainer_options(ValidationSettings(select_best="macro_f1"), has_dev=True) == {
        "metric_for_best_model": "eval_macro_f1", "greater_is_better": True}
    assert trainer_options(ValidationSettings(select_best="macro_f1"), has_dev=False) == {}
    assert ValidationSettings(decoding="greedy").generation_kwargs() == {"do_sample": False}
    assert ValidationSettings().generation_kwargs() == {"do_sample": True, "temperature": 0.6, "top_p": 0.95}


def test_sft_with_a_dev_set_logs_dev_metrics_and_keeps_the_best_step(tmp_path, tiny_model_dir, monkeypatch):
    from genrel.train import validation
    from genrel.train.sft import SFTStageConfig, run_sft
    from genrel.train.teacher import TeacherConfig, run_teacher

    pairs = [Pair(row_id=str(i), qid=f"q{i}", query=f"query {i}", text=f"A passage {i}.", label=LABELS[i % 4])
             for i in range(4)]
    data = write_pairs_jsonl(pairs, tmp_path / "pairs.jsonl")
    run_teacher(TeacherConfig(data=str(data), criteria="trec-dl", out=str(tmp_path / "gold.jsonl"), from_gold=True),
                progress=False)
    real = validation.dev_scorer

    def forced(model, trainer, criteria, options):  # step 1 scores better than step 2
        scorer = real(model, trainer, criteria, options)
        score_pairs = scorer.score_pairs

        def wrapped(batch, *, explain=False):
            out = score_pairs(batch, explain=explain)
            for pair, s in zip(batch, out):
                s.label = pair.label if trainer.state.global_step == 1 else LABELS[(LABELS.index(pair.label) + 1) % 4]
            return out

        scorer.score_pairs = wrapped
        return scorer

    monkeypatch.setattr(validation, "dev_scorer", forced)
    cfg = SFTStageConfig.model_validate(dict(
        model=str(tiny_model_dir), criteria="trec-dl", traces=str(tmp_path / "gold.jsonl"), dev=str(data),
        output_dir=str(tmp_path / "run"), max_length=2048, max_steps=2, lr=5e-3, batch_size=2, save_steps=100,
        validation={"eval_steps": 1, "max_new_tokens": 4, "max_pairs": 2, "select_best": "accuracy"}, trl={"warmup_steps": 0}))
    result = run_sft(cfg)
    dev = [r for r in map(json.loads, result.metrics_path.read_text().splitlines()) if "eval_accuracy" in r]
    assert [(r["step"], r["eval_accuracy"]) for r in dev] == [(1, 1.0), (2, 0.0)]
    assert result.selected_step == 1
    final = load_file(str(Path(result.final_dir) / "model.safetensors"))
    best = load_file(str(result.run_dir / "checkpoint-1" / "model.safetensors"))
    assert all(torch.equal(final[k], best[k]) for k in best)
