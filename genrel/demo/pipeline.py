"""``genrel demo``: the whole pipeline on the embedded default, sized for a 2-core CPU.

generate the catalogue world → zero-shot eval → verdict-only traces → warm-up SFT (LoRA) → GRPO + SAM
→ eval SFT and RL models → the RL model labels an unlabelled pool → a MiniLM cross-encoder student
learns its soft labels (mixed with gold) → eval the student → one comparison table → how to serve.

Every stage writes into its own folder under ``out_dir`` and a ``.done`` marker when finished, so a
rerun skips what is finished and the stages themselves resume what was interrupted. The demo exercises
the code paths honestly; on a CPU it does not make a good judge (that needs a GPU and real traces).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from genrel.config import StageConfig, read_yaml_mapping
from genrel.demo.world import WorldConfig, write_world
from genrel.errors import ConfigError

CRITERIA = "esci"
# TRL turns activation checkpointing on by default; a 135M model on CPU has memory to spare and the
# recomputation cost a quarter of the speed here (60 vs 77 tokens/s, one trace per pass).
NO_CHECKPOINTING = {"gradient_checkpointing": False}


class DemoConfig(StageConfig):
    """Sizes of every stage; ``quick()`` shrinks them to a smoke run."""

    out_dir: str = Field(default="runs/demo", description="Everything the demo writes.")
    model: str = Field(default="smollm2-135m", description="The reasoning model to train.")
    seed: int = 0
    train_queries: int = Field(default=30, description="Queries of the labelled train split (8 products each).")
    dev_queries: int = Field(default=2, description="Queries of the held-out dev split every model is scored on.")
    pool_queries: int = Field(default=1, description="Queries of the unlabelled pool the RL model labels.")
    eval_pairs: int | None = Field(default=None, ge=1, description="Score only the first N dev pairs (None: all).")
    sft_steps: int = Field(default=16, description="Warm-up SFT optimizer steps.")
    sft_traces_per_step: int = Field(default=2, description="Traces per SFT step (one per forward pass).")
    sft_lr: float = Field(default=1e-3, description="LoRA learning rate: high, so a few dozen traces teach the format.")
    rl_steps: int = Field(default=2, description="GRPO + SAM optimizer steps.")
    rl_prompts_per_step: int = 2
    rl_generations: int = 4
    sam_mode: str = "hard"
    max_length: int = Field(default=768, description="Prompt + trace tokens in SFT; RL prompts get this less max_new_tokens.")
    max_new_tokens: int = Field(default=80, description="Reasoning tokens per completion (eval, RL, labelling).")
    label_samples: int = Field(default=2, description="Teacher samples per pool pair.")
    label_pairs: int | None = Field(default=None, ge=1, description="Label only the first N pool pairs (None: all).")
    student_epochs: int = 2
    zero_shot: bool = Field(default=True, description="Also evaluate the model before any training.")

    def quick(self) -> DemoConfig:
        return self.model_copy(
            update=dict(
                out_dir=self.out_dir if self.out_dir != "runs/demo" else "runs/demo-quick",
                train_queries=4, dev_queries=1, pool_queries=1, eval_pairs=4, sft_steps=3, rl_steps=1,
                rl_prompts_per_step=2, rl_generations=2, max_new_tokens=64, label_samples=1, label_pairs=4,
                student_epochs=1, zero_shot=False,
            )
        )


def run_demo(cfg: DemoConfig, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) every stage and return the summary rows."""
    out = Path(cfg.out_dir)
    _check_same_config(cfg, out / "config.yaml")
    cfg.save(out / "config.yaml")
    started = time.perf_counter()
    stages = [
        ("data", _data),
        ("eval-zero-shot", _eval_zero_shot),
        ("traces", _traces),
        ("sft", _sft),
        ("rl", _rl),
        ("eval-sft", _eval_sft),
        ("eval-rl", _eval_rl),
        ("labels", _labels),
        ("student", _student),
        ("eval-student", _eval_student),
    ]
    for name, stage in stages:
        marker = out / f".{name}.done"
        if marker.exists():
            echo(f"[{name}] done already, skipping")
            continue
        if name == "eval-zero-shot" and not cfg.zero_shot:
            continue
        echo(f"[{name}] running…")
        t0 = time.perf_counter()
        stage(cfg, out)
        marker.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
        echo(f"[{name}] finished in {time.perf_counter() - t0:.0f} s")
    summary = _summary(cfg, out)
    if len(summary["rows"]) > 1:
        from genrel.eval import compare

        compare([row["dir"] for row in summary["rows"]], out / "compare", n_resamples=200, seed=cfg.seed)
        summary["compare"] = str(out / "compare")
    summary["minutes"] = round(_stage_seconds(out) / 60, 1)
    summary["minutes_this_run"] = round((time.perf_counter() - started) / 60, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _check_same_config(cfg: DemoConfig, path: Path) -> None:
    """A rerun resumes only the run it belongs to: other sizes in the same folder would mix two demos."""
    if not path.is_file():
        return
    before = read_yaml_mapping(path)
    changed = sorted(k for k, v in cfg.model_dump(mode="json").items() if k in before and before[k] != v)
    if changed:
        raise ConfigError(
            f"the demo in {path.parent} was run with other settings ({', '.join(changed)})",
            where=str(path), hint="rerun with the same settings to resume, or pass another --out",
        )


# -- stages ------------------------------------------------------------------------------------------


def _data(cfg: DemoConfig, out: Path) -> None:
    for split, queries, seed in (
        ("train", cfg.train_queries, cfg.seed),
        ("dev", cfg.dev_queries, cfg.seed + 1000),
        ("pool", cfg.pool_queries, cfg.seed + 2000),
    ):
        write_world(WorldConfig(seed=seed, queries=queries), out / "data" / f"{split}.jsonl")


def _evaluate(cfg: DemoConfig, model: str, out_dir: Path, data: Path) -> None:
    from genrel.data import load_pairs
    from genrel.eval import evaluate
    from genrel.score.load import load_scorer

    scorer = load_scorer(model, criteria=CRITERIA, max_new_tokens=cfg.max_new_tokens, batch_size=8)
    pairs = load_pairs(data, scorer.criteria).pairs[: cfg.eval_pairs]
    evaluate(scorer, pairs, CRITERIA, out_dir, batch_size=8, data=str(data))


def _eval_zero_shot(cfg: DemoConfig, out: Path) -> None:
    _evaluate(cfg, cfg.model, out / "eval" / "zero-shot", out / "data" / "dev.jsonl")


def _eval_sft(cfg: DemoConfig, out: Path) -> None:
    _evaluate(cfg, str(out / "sft" / "final"), out / "eval" / "sft", out / "data" / "dev.jsonl")


def _eval_rl(cfg: DemoConfig, out: Path) -> None:
    _evaluate(cfg, str(out / "rl" / "final"), out / "eval" / "rl", out / "data" / "dev.jsonl")


def _eval_student(cfg: DemoConfig, out: Path) -> None:
    _evaluate(cfg, str(out / "student"), out / "eval" / "student", out / "data" / "dev.jsonl")


def _traces(cfg: DemoConfig, out: Path) -> None:
    from genrel.train.teacher import TeacherConfig, run_teacher

    run_teacher(TeacherConfig(data=str(out / "data" / "train.jsonl"), criteria=CRITERIA, from_gold=True,
                              out=str(out / "traces.jsonl")))


def _sft(cfg: DemoConfig, out: Path) -> None:
    from genrel.train.sft import SFTStageConfig, run_sft

    run_sft(SFTStageConfig(
        model=cfg.model, criteria=CRITERIA, traces=str(out / "traces.jsonl"), output_dir=str(out / "sft"),
        lora={"r": 16, "alpha": 32}, max_length=cfg.max_length, max_steps=cfg.sft_steps, lr=cfg.sft_lr, batch_size=1,
        grad_accumulation=cfg.sft_traces_per_step, save_steps=max(cfg.sft_steps // 2, 1), resume=True, seed=cfg.seed,
        trl=NO_CHECKPOINTING,
    ))


def _rl(cfg: DemoConfig, out: Path) -> None:
    from genrel.train.rl import RLStageConfig, run_rl

    run_rl(RLStageConfig(
        model=str(out / "sft" / "final"), criteria=CRITERIA, data={"train": str(out / "data" / "train.jsonl")},
        output_dir=str(out / "rl"), sam={"mode": cfg.sam_mode}, num_generations=cfg.rl_generations,
        prompts_per_step=cfg.rl_prompts_per_step, max_completion_length=cfg.max_new_tokens,
        max_prompt_length=cfg.max_length - cfg.max_new_tokens, lora={"r": 16, "alpha": 32},
        lr=5e-5, steps=cfg.rl_steps, save_steps=1, resume=True, seed=cfg.seed, trl=NO_CHECKPOINTING,
    ))


def _labels(cfg: DemoConfig, out: Path) -> None:
    from genrel.distill.label import LabelConfig, run_label

    run_label(LabelConfig(model=str(out / "rl" / "final"), data=str(out / "data" / "pool.jsonl"), criteria=CRITERIA,
                          out=str(out / "labels.jsonl"), samples=cfg.label_samples, limit=cfg.label_pairs,
                          max_new_tokens=cfg.max_new_tokens, batch_size=8, seed=cfg.seed))


def _student(cfg: DemoConfig, out: Path) -> None:
    from genrel.distill.config import DistillConfig
    from genrel.distill.students import run_distill

    run_distill(DistillConfig(student="cross-encoder", labels=str(out / "labels.jsonl"), criteria=CRITERIA,
                              gold=str(out / "data" / "train.jsonl"), gold_weight=0.5, output_dir=str(out / "student"),
                              epochs=cfg.student_epochs, max_length=128, seed=cfg.seed))


def _stage_seconds(out: Path) -> float:
    """Time of every finished stage, this run's or an earlier one's (a resumed demo counts them all)."""
    return sum(json.loads(marker.read_text()).get("seconds", 0.0) for marker in out.glob(".*.done"))


# -- summary ---------------------------------------------------------------------------------------

ROWS = (
    ("zero-shot", "eval/zero-shot"),
    ("warm-up SFT", "eval/sft"),
    (None, "eval/rl"),
    ("student (cross-encoder)", "eval/student"),
)
METRICS = ("accuracy", "macro_f1", "ndcg@10", "format_error_rate", "pairs_per_second")


def _summary(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    rows = []
    for name, folder in ROWS:
        report = out / folder / "report.json"
        if not report.is_file():
            continue
        data = json.loads(report.read_text())
        rows.append({"model": name or f"GRPO+SAM ({cfg.sam_mode})", "dir": str(out / folder),
                     **{m: data.get(m) for m in METRICS}, "n": data.get("n")})
    return {"rows": rows, "serve": f"genrel serve --model {out / 'student'} --backend hf",
            "export": f"genrel export onnx {out / 'student'} --out {out / 'student-onnx'}"}
