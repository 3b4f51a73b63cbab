"""``genrel demo``: the whole pipeline on the embedded default model."""

from __future__ import annotations

import typer

from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    quick: bool = typer.Option(False, "--quick", help="A smoke run of about 3 minutes: every stage, tiny sizes."),
    out: str = typer.Option(None, "--out", help="Output folder (default runs/demo, or runs/demo-quick)."),
    config: str = typer.Option(None, "--config", help="YAML with DemoConfig fields."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a field: key=value (repeatable)."),
) -> None:
    """Generate a catalogue, warm up, train GRPO + SAM, evaluate, distil a student; resumable."""
    from rich import box
    from rich.table import Table

    from genrel.demo.pipeline import DemoConfig, run_demo

    cfg = DemoConfig.load(config, overrides)
    if quick:
        cfg = cfg.quick()
    if out:
        cfg = cfg.model_copy(update={"out_dir": out})
    console.print(f"genrel demo → {cfg.out_dir} ({'quick' if quick else 'full'}; rerun to resume)")
    summary = run_demo(cfg, echo=lambda text: console.print(text, markup=False, highlight=False))
    sizes = sorted({row["n"] for row in summary["rows"]})
    title = (f"genrel demo: {summary['minutes']} min of stage time; "
             f"{'/'.join(map(str, sizes))} dev pairs of the catalogue world")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("model", "accuracy", "macro-F1", "nDCG@10", "fmt err.", "pairs/s"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for row in summary["rows"]:
        metrics = ("accuracy", "macro_f1", "ndcg@10", "format_error_rate", "pairs_per_second")
        table.add_row(row["model"], *(_fmt(row[key]) for key in metrics))
    console.print(table)
    if "compare" in summary:
        console.print(f"comparison with 95% intervals: {summary['compare']}/compare.md")
    console.print(f"serve the student:  {summary['serve']}")
    console.print(f"export it to ONNX:  {summary['export']}")


def _fmt(value) -> str:
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    return f"{value:.3g}" if value >= 10 else f"{value:.3f}"
