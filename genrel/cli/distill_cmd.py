"""``genrel label`` (a teacher writes soft labels for a pool) and ``genrel distill`` (a student learns them).

Both take an optional ``--config`` YAML (``configs/distill/``); options given on the command line
override it, and ``--set a.b=value`` overrides anything. See docs/distillation.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from genrel.cli.common import console

_CONFIG = typer.Option(None, "--config", "-c", help="Stage config (YAML); command-line options override it.")
_SET = typer.Option(None, "--set", help="Override a field: a.b=value (value read as YAML). Repeatable.")


def register(app: typer.Typer) -> None:
    app.command("label")(label)
    app.command("distill")(distill)


def label(
    model: str = typer.Option(None, "--model", help="Teacher: GRM / genrel model folder, smollm2-135m, HF id or folder."),
    data: Path = typer.Option(None, "--data", help="The pool (.jsonl/.csv/.tsv/.parquet); its labels are kept as gold."),
    criteria: str = typer.Option(None, "--criteria", help="Criteria preset or YAML (default: the teacher folder's)."),
    out: Path = typer.Option(None, "--out", help="Labels file (.jsonl); an existing one is resumed."),
    samples: int = typer.Option(None, "--samples", help="Sampled reasoning completions per pair (default 4)."),
    temperature: float = typer.Option(None, "--temperature", help="Sampling temperature (default 0.8)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Reasoning tokens per sample (default 512)."),
    max_length: int = typer.Option(None, "--max-length", help="Prompt tokens; documents are cut to fit."),
    limit: int = typer.Option(None, "--limit", help="Label only the first N pairs."),
    backend: str = typer.Option(None, "--backend", help="hf (transformers, default) or vllm (offline batch, gpu extra)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Pairs per generation call (default 4)."),
    dtype: str = typer.Option(None, "--dtype", help="Teacher dtype: auto, bfloat16, float32 (default auto)."),
    config: Path = _CONFIG,
    overrides: list[str] = _SET,
) -> None:
    """Label a pool with a teacher's soft label distribution (k sampled reasonings per pair)."""
    from genrel.distill.label import LabelConfig, run_label

    cfg = _load(LabelConfig, config, overrides, dict(
        model=model, data=data, criteria=criteria, out=out, samples=samples, temperature=temperature,
        max_new_tokens=max_new_tokens, max_length=max_length, limit=limit, backend=backend, batch_size=batch_size,
        dtype=dtype,
    ))
    run = run_label(cfg)
    parsed = f", {run.parse_rate:.0%} of samples parse" if run.parse_rate is not None else ""
    console.print(
        f"labelled {run.labelled} pairs ({run.skipped} already done) at {run.pairs_per_s:.2f} pairs/s{parsed}: {run.out}",
        markup=False, highlight=False,
    )


def distill(
    student: str = typer.Option(None, "--student", help="lm (label-first causal LM) or cross-encoder."),
    labels: Path = typer.Option(None, "--labels", help="Labels file written by `genrel label`."),
    gold: Path = typer.Option(None, "--gold", help="Judged pairs to mix in."),
    gold_weight: float = typer.Option(None, "--gold-weight", help="Gold share where a pair has both (default 0.5)."),
    criteria: str = typer.Option(None, "--criteria", help="Criteria preset or YAML (default trec-dl)."),
    out: Path = typer.Option(None, "--out", help="Output folder: the student's genrel model folder."),
    base: str = typer.Option(None, "--base", help="Student base: minilm / an HF encoder, or smollm2-135m / a causal LM."),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs (default 1)."),
    dev: Path = typer.Option(None, "--dev", help="Judged dev pairs: temperature fitted, metrics logged."),
    config: Path = _CONFIG,
    overrides: list[str] = _SET,
) -> None:
    """Train a student (label-first LM or cross-encoder) on teacher soft labels, mixed with gold labels."""
    from genrel.distill.config import DistillConfig
    from genrel.distill.students import run_distill

    cfg = _load(DistillConfig, config, overrides, dict(
        student=student, labels=labels, gold=gold, gold_weight=gold_weight, criteria=criteria, output_dir=out,
        base=base, epochs=epochs, dev=dev,
    ))
    run = run_distill(cfg)
    summary = ", ".join(f"{k} {v}" for k, v in run.data.items())
    console.print(f"student saved in {run.out_dir} ({summary})", markup=False, highlight=False)


def _load(cls, config: Path | None, overrides: list[str] | None, options: dict[str, Any]):
    """The stage config: YAML file, then the options given on the command line, then ``--set``."""
    from genrel.config import apply_override, read_yaml_mapping, validate_model

    data = read_yaml_mapping(config) if config is not None else {}
    data.update({k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None})
    for item in overrides or []:
        apply_override(data, item)
    return validate_model(cls, data, str(config) if config else "options")
