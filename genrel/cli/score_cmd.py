"""``genrel train cross-encoder`` and ``genrel export onnx``: the cross-encoder student/baseline and its
ONNX export for serving. The ``train`` group holds only the cross-encoder; SFT and RL are top-level."""

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
