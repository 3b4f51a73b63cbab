"""``genrel train cross-encoder`` and ``genrel export onnx``: the cross-encoder student/baseline and its
ONNX export for serving, and ``genrel train student`` (the sentence-transformers students, typed
config from ``--config`` YAML + ``--set``). SFT and RL are top-level."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli.common import console

train_app = typer.Typer(help="Train a cross-encoder (baseline or student).", no_args_is_help=True)
export_app = typer.Typer(help="Export a model for serving.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    app.add_typer(export_app, name="export")


@train_app.command("cross-encoder")
def train_cross_encoder(
    data: Path = typer.Option(..., "--data", help="Judged training pairs: .jsonl/.csv/.tsv/.parquet."),
    criteria: str = typer.Option(..., "--criteria", "-c", help="Criteria preset name or YAML path."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write (resumes a checkpoint found there)."),
    dev: Path | None = typer.Option(None, "--dev", help="Judged dev pairs (temperature calibration, dev metrics)."),
    dev_fraction: float = typer.Option(
        0.2, "--dev-fraction", min=0.0, max=0.9, help="Without --dev: share of the queries held out as dev (0: none)."
    ),
    base: str = typer.Option("minilm", "--base", help="minilm (all-MiniLM-L6-v2) or an HF encoder id or path."),
    epochs: int = typer.Option(1, "--epochs", min=1),
    lr: float = typer.Option(3e-5, "--lr", help="Peak learning rate (linear warm-up over 10% of steps, then decay)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    max_length: int = typer.Option(256, "--max-length", min=8, help="Tokens of query + document."),
    seed: int = typer.Option(0, "--seed", help="Seed of the head, the shuffles and the dev split."),
    mapping: list[str] = typer.Option(None, "--map", "-m", help="field=column, as in `genrel data check`. Repeatable."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT's checkpoint if present."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1… (default: cuda when available)."),
) -> None:
    """Fine-tune a cross-encoder on judged pairs; writes a genrel model directory."""
    from genrel.criteria import load_criteria
    from genrel.data import load_pairs, mapping_from_pairs, split_by_query
    from genrel.distill.cross_encoder_train import train_cross_encoder as train

    crit = load_criteria(criteria)
    columns = mapping_from_pairs(mapping or [])
    pairs = load_pairs(data, crit, columns).pairs
    if dev is not None:
        dev_pairs = load_pairs(dev, crit, columns).pairs
    elif dev_fraction > 0:
        split = split_by_query(pairs, {"train": 1.0 - dev_fraction, "dev": dev_fraction}, seed=seed)
        pairs, dev_pairs = split["train"], split["dev"]
    else:
        dev_pairs = []
    console.print(f"training on {len(pairs)} pairs, dev {len(dev_pairs)} pairs", markup=False, highlight=False)
    run = train(
        pairs, crit, out, base=base, epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length,
        seed=seed, dev_pairs=dev_pairs or None, resume=resume, device=device,
    )
    console.print(
        f"{run.steps} steps, {run.train_pairs_per_s:.1f} pairs/s, last loss {run.last_loss:.4f}",
        markup=False, highlight=False,
    )
    if run.dev:
        console.print(
            f"dev: accuracy {run.dev['accuracy']:.3f}, NLL {run.dev['nll']:.4f} → {run.dev['nll_calibrated']:.4f} "
            f"at temperature {run.temperature:.3f}",
            markup=False, highlight=False,
        )
    console.print(f"model in {run.out_dir}", markup=False, highlight=False)


@train_app.command("student")
def train_student_command(
    data: Path = typer.Option(None, "--data", help="Judged training pairs: .jsonl/.csv/.tsv/.parquet."),
    criteria: str = typer.Option(None, "--criteria", "-c", help="Criteria preset name or YAML path."),
    out: Path = typer.Option(None, "--out", "-o", help="The student's model folder."),
    kind: str = typer.Option(None, "--kind", help="st-cross-encoder or bi-encoder."),
    config: Path = typer.Option(None, "--config", help="Stage config (YAML, configs/student/); options override it."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a field: a.b=value. Repeatable."),
) -> None:
    """Train a sentence-transformers student (CrossEncoder or bi-encoder with a calibrated label head)."""
    from genrel.config import apply_override, read_yaml_mapping, validate_model
    from genrel.criteria import load_criteria
    from genrel.data import load_pairs
    from genrel.distill.st_config import StudentTrainConfig
    from genrel.distill.st_train import train_student

    raw = read_yaml_mapping(config) if config is not None else {}
    given = {"data": str(data) if data else None, "criteria": criteria, "output_dir": str(out) if out else None}
    raw.update({k: v for k, v in given.items() if v is not None})
    if kind:
        raw.setdefault("student", {})["kind"] = kind
    for item in overrides or []:
        apply_override(raw, item)
    cfg = validate_model(StudentTrainConfig, raw, str(config) if config else "options")
    crit = load_criteria(cfg.criteria)
    pairs = load_pairs(cfg.data, crit, cfg.mapping).pairs
    cfg.save(Path(cfg.output_dir) / "student_config.yaml")
    run = train_student(pairs, crit, cfg.output_dir, cfg.student)
    console.print(f"{run.kind}: {run.train_pairs} training pairs, {run.holdout_pairs} held out; kept {run.kept}; "
                  f"held-out nDCG@10 {run.holdout_ndcg10}", markup=False, highlight=False)
    console.print(f"model in {run.out_dir}", markup=False, highlight=False)


@export_app.command("onnx")
def export_onnx(
    model_dir: Path = typer.Argument(..., help="A genrel cross-encoder directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for model.onnx, tokenizer and genrel_model.json."),
    int8: bool = typer.Option(False, "--int8", help="Also write model.int8.onnx (dynamic int8 quantisation)."),
) -> None:
    """Export a cross-encoder to ONNX; fails if its outputs differ from torch by more than 1e-4."""
    from genrel.score.onnx_export import export_onnx as export

    report = export(model_dir, out, int8=int8)
    console.print(
        f"{report.path}: max |Δ logit| vs torch {report.max_abs_diff:.2e} on {report.samples} sample pairs",
        markup=False, highlight=False,
    )
    if report.int8_path:
        line = f"{report.int8_path}: max |Δ logit| {report.int8_max_abs_diff:.2e}"
        console.print(line, markup=False, highlight=False)
