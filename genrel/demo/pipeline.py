"""``genrel demo``: the whole pipeline on the embedded default, sized to show a model learning on a 2-core CPU.

generate the catalogue world → zero-shot eval → grounded reasoning traces → warm-up SFT (LoRA) → GRPO + SAM
→ eval SFT and RL models → the RL model labels an unlabelled pool → a MiniLM cross-encoder student
learns its soft labels (mixed with gold) → eval the student → one table with each model's paired
difference to zero-shot → how to serve.

Every stage writes into its own folder under ``out_dir`` and a ``.done`` marker (its time and a line
saying what it did) when finished, so a rerun skips what is finished and the stages themselves resume
what was interrupted. Between stages the process hands freed memory back to the system, so the peak is
that of the largest stage, not the sum of all of them.

Sizes were chosen by measuring (README, docs/training.md): a 135M model collapses to one label with
~100 traces and learns the criteria with a few hundred grounded ones; dev is 8 queries the train split
never saw (64 pairs), so a difference of ~0.25 in accuracy is clear of the noise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from genrel.config import StageConfig, read_yaml_mapping
from genrel.data.resumable import replace_rows
from genrel.demo.world import WorldConfig, generate
from genrel.errors import ConfigError

CRITERIA = "esci"
# TRL turns activation checkpointing on by default; a 135M model on CPU has memory to spare and the
# recomputation cost a quarter of the speed here (60 vs 77 tokens/s, one trace per pass).
NO_CHECKPOINTING = {"gradient_checkpointing": False}
REWARD_PNG = "rl-curves.png"  # the RL stage's reward (and loss, masked share) per step
DEV_SEED, POOL_SEED = 1000, 2000  # world seeds of the dev and pool splits, offsets of cfg.seed


class DemoConfig(StageConfig):
    """Sizes of every stage; ``quick()`` shrinks them to a smoke run."""

    out_dir: str = Field(default="runs/demo", description="Everything the demo writes.")
    model: str = Field(default="smollm2-135m", description="The reasoning model to train.")
    seed: int = 0
    train_queries: int = Field(default=60, description="Queries of the labelled train split (8 products each).")
    dev_queries: int = Field(default=8, description="Dev queries, none of them in train; every model is scored on them.")
    pool_queries: int = Field(default=8, description="Queries of the unlabelled pool the RL model labels.")
    eval_pairs: int | None = Field(default=None, ge=1, description="Score only the first N dev pairs (None: all).")
    sft_steps: int = Field(default=32, description="Warm-up SFT optimizer steps.")
    sft_traces_per_step: int = Field(default=8, description="Grounded traces per SFT step.")
    sft_batch: int = Field(default=8, description="Traces per forward pass (the rest is gradient accumulation).")
    sft_lr: float = Field(default=1e-3, description="LoRA learning rate of the warm-up.")
    lora_layers: int | None = Field(default=15, description="LoRA on the top N layers only (None: every layer).")
    rl_steps: int = Field(default=4, description="GRPO + SAM optimizer steps.")
    rl_prompts_per_step: int = 4
    rl_generations: int = 4
    rl_micro_batch: int = Field(default=4, description="Completions per GRPO forward/backward (memory).")
    rl_lr: float = Field(default=1e-4, description="LoRA learning rate of GRPO.")
    sam_mode: str = "hard"
    max_length: int = Field(default=768, description="Prompt + trace tokens in SFT; RL prompts get this less max_new_tokens.")
    max_new_tokens: int = Field(default=120, description="Reasoning tokens per completion (eval, RL, labelling).")
    eval_batch: int = Field(default=16, description="Pairs per batch when scoring.")
    label_samples: int = Field(default=2, description="Teacher samples per pool pair.")
    label_pairs: int | None = Field(default=None, ge=1, description="Label only the first N pool pairs (None: all).")
    gold_weight: float = Field(default=0.5, description="Weight of a gold pair against a teacher-labelled one in the student.")
    student_epochs: int = 3
    zero_shot: bool = Field(default=True, description="Also evaluate the model before any training.")

    def quick(self) -> DemoConfig:
        return self.model_copy(
            update=dict(
                out_dir=self.out_dir if self.out_dir != "runs/demo" else "runs/demo-quick",
                train_queries=4, dev_queries=1, pool_queries=1, eval_pairs=4, sft_steps=3, sft_traces_per_step=2,
                sft_batch=2, rl_steps=1, rl_prompts_per_step=2, rl_generations=2, rl_micro_batch=2, max_new_tokens=64,
                label_samples=1, label_pairs=4, student_epochs=1, zero_shot=False,
            )
        )


Stage = Callable[[DemoConfig, Path], str]


def run_demo(cfg: DemoConfig, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) every stage and return the summary rows."""
    out = Path(cfg.out_dir)
    _check_same_config(cfg, out / "config.yaml")
    cfg.save(out / "config.yaml")
    started = time.perf_counter()
    stages: list[tuple[str, Stage]] = [
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
        what = stage(cfg, out)
        seconds = time.perf_counter() - t0
        marker.write_text(json.dumps({"seconds": round(seconds, 1), "what": what}))
        echo(f"[{name}] {what} ({seconds:.0f} s)")
        _release_memory()
    summary = _summary(cfg, out)
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


def _release_memory() -> None:
    """Collect the finished stage's objects and return glibc's free heap pages to the system."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# -- stages ------------------------------------------------------------------------------------------


def _world(cfg: DemoConfig, split: str) -> WorldConfig:
    seed = {"train": cfg.seed, "dev": cfg.seed + DEV_SEED, "pool": cfg.seed + POOL_SEED}[split]
    queries = {"train": cfg.train_queries, "dev": cfg.dev_queries, "pool": cfg.pool_queries}[split]
    return WorldConfig(seed=seed, queries=queries)


def _data(cfg: DemoConfig, out: Path) -> str:
    """Train as generated; dev and pool drawn from other seeds, keeping only queries train never wrote."""
    train = list(generate(_world(cfg, "train")))
    replace_rows(out / "data" / "train.jsonl", train)
    seen = {row["query"] for row in train}
    for split in ("dev", "pool"):
        wanted = _world(cfg, split)
        rows = list(generate(wanted.model_copy(update={"queries": wanted.queries * 4})))
        query_of = {row["qid"]: row["query"] for row in rows}  # in draw order
        kept = [q for q, text in query_of.items() if text not in seen][: wanted.queries]
        replace_rows(out / "data" / f"{split}.jsonl", [row for row in rows if row["qid"] in kept])
        seen |= {row["query"] for row in rows if row["qid"] in kept}
    return (f"catalogue world: {len(train)} train pairs; dev {cfg.dev_queries} and pool {cfg.pool_queries} "
            "queries unseen in train")


def _evaluate(cfg: DemoConfig, model: str, out_dir: Path, data: Path) -> str:
    from genrel.data import load_pairs
    from genrel.eval import evaluate
    from genrel.score.load import load_scorer

    scorer = load_scorer(model, criteria=CRITERIA, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.eval_batch)
    pairs = load_pairs(data, scorer.criteria).pairs[: cfg.eval_pairs]
    report = evaluate(scorer, pairs, CRITERIA, out_dir, batch_size=cfg.eval_batch, data=str(data))
    return (f"{len(pairs)} dev pairs: accuracy {report['accuracy']:.3f}, "
            f"format errors {report['format_error_rate']:.3f}, {report['pairs_per_second']:.2f} pairs/s")


def _eval_zero_shot(cfg: DemoConfig, out: Path) -> str:
    return _evaluate(cfg, cfg.model, out / "eval" / "zero-shot", out / "data" / "dev.jsonl")


def _eval_sft(cfg: DemoConfig, out: Path) -> str:
    return _evaluate(cfg, str(out / "sft" / "final"), out / "eval" / "sft", out / "data" / "dev.jsonl")


def _eval_rl(cfg: DemoConfig, out: Path) -> str:
    return _evaluate(cfg, str(out / "rl" / "final"), out / "eval" / "rl", out / "data" / "dev.jsonl")


def _eval_student(cfg: DemoConfig, out: Path) -> str:
    return _evaluate(cfg, str(out / "student"), out / "eval" / "student", out / "data" / "dev.jsonl")


def _traces(cfg: DemoConfig, out: Path) -> str:
    from genrel.criteria import load_criteria
    from genrel.demo.traces import write_grounded_traces

    path = write_grounded_traces(_world(cfg, "train"), load_criteria(CRITERIA), out / "traces.jsonl")
    count = sum(1 for _ in path.open(encoding="utf-8"))
    return f"{count} grounded reasoning traces written from the world's facts"


def _lora(cfg: DemoConfig) -> dict[str, Any]:
    """No dropout: PEFT then feeds each adapter the layer's input itself instead of a saved dropped-out copy
    (measured: the copies were most of GRPO's memory on the embedded model)."""
    return {"r": 16, "alpha": 32, "dropout": 0.0, "top_layers": cfg.lora_layers}


def _sft(cfg: DemoConfig, out: Path) -> str:
    from genrel.train.sft import SFTStageConfig, run_sft

    result = run_sft(SFTStageConfig(
        model=cfg.model, criteria=CRITERIA, traces=str(out / "traces.jsonl"), output_dir=str(out / "sft"),
        lora=_lora(cfg), max_length=cfg.max_length, max_steps=cfg.sft_steps, lr=cfg.sft_lr, batch_size=cfg.sft_batch,
        grad_accumulation=max(cfg.sft_traces_per_step // cfg.sft_batch, 1), save_steps=max(cfg.sft_steps // 2, 1),
        resume=True, seed=cfg.seed, trl=NO_CHECKPOINTING,
    ))
    records = _metrics(result.metrics_path)
    losses = [r["loss"] for r in records if "loss" in r]
    speed = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    return (f"LoRA SFT, {result.global_step} steps × {cfg.sft_traces_per_step} traces"
            + (f", loss {losses[0]:.2f} → {losses[-1]:.2f}" if losses else "")
            + (f", {sum(speed) / len(speed):.0f} tokens/s" if speed else ""))


def _rl(cfg: DemoConfig, out: Path) -> str:
    from genrel.eval.curves import plot_run
    from genrel.train.rl import RLStageConfig, run_rl

    result = run_rl(RLStageConfig(
        model=str(out / "sft" / "final"), criteria=CRITERIA, data={"train": str(out / "data" / "train.jsonl")},
        output_dir=str(out / "rl"), sam={"mode": cfg.sam_mode}, num_generations=cfg.rl_generations,
        prompts_per_step=cfg.rl_prompts_per_step, micro_batch_size=cfg.rl_micro_batch,
        max_completion_length=cfg.max_new_tokens,
        max_prompt_length=cfg.max_length - cfg.max_new_tokens, lora=_lora(cfg),
        lr=cfg.rl_lr, steps=cfg.rl_steps, save_steps=max(cfg.rl_steps // 2, 1), resume=True, seed=cfg.seed,
        trl=NO_CHECKPOINTING,
    ))
    rewards = [r["reward"] for r in _metrics(result.metrics_path) if "reward" in r]
    plot_run(out / "rl", out / REWARD_PNG)
    half = max(len(rewards) // 2, 1)
    return (f"GRPO + SAM ({cfg.sam_mode}), {result.global_step} steps × {cfg.rl_prompts_per_step} prompts × "
            f"{cfg.rl_generations} samples; mean reward {_mean(rewards[:half]):.2f} (first half) → "
            f"{_mean(rewards[half:]):.2f} (second half); curves in {REWARD_PNG}")


def _labels(cfg: DemoConfig, out: Path) -> str:
    from genrel.distill.label import LabelConfig, run_label

    run = run_label(LabelConfig(model=str(out / "rl" / "final"), data=str(out / "data" / "pool.jsonl"),
                                criteria=CRITERIA, out=str(out / "labels.jsonl"), samples=cfg.label_samples,
                                limit=cfg.label_pairs, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.eval_batch,
                                seed=cfg.seed))
    return f"the RL model labelled {run.labelled + run.skipped} pool pairs, {cfg.label_samples} samples each"


def _student(cfg: DemoConfig, out: Path) -> str:
    from genrel.distill.config import DistillConfig
    from genrel.distill.students import run_distill

    run = run_distill(DistillConfig(
        student="cross-encoder", labels=str(out / "labels.jsonl"), criteria=CRITERIA,
        gold=str(out / "data" / "train.jsonl"), gold_weight=cfg.gold_weight, output_dir=str(out / "student"),
        epochs=cfg.student_epochs, max_length=128, seed=cfg.seed,
    ))
    return (f"MiniLM cross-encoder, {cfg.student_epochs} epochs on {run.data['pairs']} pairs "
            f"({run.data['teacher']} with the RL model's soft labels, the rest gold)")


def _metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


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
STAGE_ORDER = ("data", "eval-zero-shot", "traces", "sft", "rl", "eval-sft", "eval-rl", "labels", "student",
               "eval-student")


def _summary(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """One row per evaluated model with, from the second on, its paired difference to the first
    (zero-shot when it ran): accuracy, macro-F1 and nDCG@10 with their 95% query-bootstrap intervals."""
    rows = []
    for name, folder in ROWS:
        report = out / folder / "report.json"
        if not report.is_file():
            continue
        data = json.loads(report.read_text())
        rows.append({"model": name or f"GRPO+SAM ({cfg.sam_mode})", "dir": str(out / folder),
                     **{m: data.get(m) for m in METRICS}, "n": data.get("n")})
    summary: dict[str, Any] = {"rows": rows}
    if len(rows) > 1:
        from genrel.eval import compare

        result = compare([row["dir"] for row in rows], out / "compare", n_resamples=1000, seed=cfg.seed)
        for row, run in zip(rows[1:], result["runs"][1:]):
            row["vs_first"] = {k: v for k, v in (run.get("paired") or {}).items() if k in ("accuracy", "macro_f1", "ndcg@10")}
        summary["baseline"] = rows[0]["model"]
        summary["compare"] = str(out / "compare")
    summary["stages"] = [{"stage": name, **json.loads((out / f".{name}.done").read_text())}
                         for name in STAGE_ORDER if (out / f".{name}.done").is_file()]
    if (out / REWARD_PNG).is_file():
        summary["reward_curve"] = str(out / REWARD_PNG)
    summary["serve"] = f"genrel serve --model {out / 'student'} --backend hf"
    summary["export"] = f"genrel export onnx {out / 'student'} --out {out / 'student-onnx'}"
    return summary
