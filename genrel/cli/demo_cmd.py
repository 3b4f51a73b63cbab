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
    verbose: bool = typer.Option(False, "--verbose", help="Also show the libraries' own bars, logs and warnings."),
) -> None:
    """Generate a catalogue, warm up, train GRPO + SAM, evaluate, distil a student; resumable."""
    if not verbose:
        from genrel.progress import quiet_libraries

        quiet_libraries()
    from genrel.demo.pipeline import DemoConfig, run_demo

    cfg = DemoConfig.load(config, overrides)
    if quick:
        cfg = cfg.quick()
    if out:
        cfg = cfg.model_copy(update={"out_dir": out})
    console.print(f"genrel demo → {cfg.out_dir} ({'quick' if quick else 'full'}; rerun to resume)")
    summary = run_demo(cfg, echo=lambda text: console.print(text, markup=False, highlight=False))
    print_summary(summary)


def print_summary(summary: dict) -> None:
    """The table (with each model's paired difference to the first row), one line per stage, next steps."""
    from rich import box
    from rich.table import Table

    sizes = sorted({row["n"] for row in summary["rows"]})
    title = (f"genrel demo: {summary['minutes']} min of stage time; "
             f"{'/'.join(map(str, sizes))} dev pairs of the catalogue world (queries unseen in training)")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    baseline = summary.get("baseline")
    columns = ["model", "accuracy", f"Δ vs {baseline} [95%]" if baseline else None, "macro-F1", "nDCG@10",
               "fmt err.", "pairs/s"]
    for col in filter(None, columns):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for row in summary["rows"]:
        cells = [row["model"], _fmt(row["accuracy"])]
        if baseline:
            cells.append(_difference(row.get("vs_first", {}).get("accuracy")))
        cells += [_fmt(row[key]) for key in ("macro_f1", "ndcg@10", "format_error_rate", "pairs_per_second")]
        table.add_row(*cells)
    console.print(table)
    for stage in summary.get("stages", []):
        console.print(f"  {stage['stage']:<14} {stage['seconds']:>6.0f} s  {stage.get('what', '')}",
                      markup=False, highlight=False)
    if "compare" in summary:
        console.print(f"every metric with 95% intervals and paired differences: {summary['compare']}/compare.md")
    if "reward_curve" in summary:
        console.print(f"the RL stage's reward per step: {summary['reward_curve']}")
    console.print(f"serve the student:  {summary['serve']}")
    console.print(f"export it to ONNX:  {summary['export']}")


def _difference(paired: dict | None) -> str:
    if not paired or paired.get("mean") is None:
        return "—"
    lo, hi = paired["interval"]
    return f"{paired['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def _fmt(value) -> str:
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    return f"{value:.3g}" if value >= 10 else f"{value:.3f}"
