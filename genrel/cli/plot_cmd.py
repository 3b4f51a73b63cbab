"""``genrel plot RUN_DIR``: a training run's learning curves (loss, reward, accuracy, masked share) to PNG."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("plot")(plot)


def plot(
    run_dir: Path = typer.Argument(..., help="A training run folder holding metrics.jsonl (SFT, RL, distil…)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="PNG to write (default RUN_DIR/curves.png)."),
) -> None:
    """Draw the learning curves of RUN_DIR/metrics.jsonl."""
    from genrel.eval.curves import plot_run

    console.print(f"curves: {plot_run(run_dir, out)}", markup=False, highlight=False)
