"""``genrel teacher``: reasoning traces from an OpenAI-compatible endpoint (or from gold labels) for SFT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("teacher")(teacher)


def teacher(
    config: Path = typer.Option(None, "--config", "-c", help="Teacher config (YAML); flags below override it."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a field: a.b=value (value read as YAML). Repeatable."),
    data: str = typer.Option(None, "--data", help="Judged pairs file (.jsonl/.csv/.tsv/.parquet)."),
    criteria: str = typer.Option(None, "--criteria", help="Criteria preset name or YAML path."),
    out: str = typer.Option(None, "--out", help="Trace file to write or resume (JSON lines)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible API root, e.g. http://localhost:8000/v1."),
    model: str = typer.Option(None, "--model", help="Model name at the endpoint (default: the one it serves)."),
    n: int = typer.Option(None, "--n", help="Samples per pair."),
    concurrency: int = typer.Option(None, "--concurrency", help="Requests in flight at most."),
    from_gold: bool = typer.Option(None, "--from-gold/--no-from-gold", help="No endpoint: verdict-only traces from gold labels."),
) -> None:
    """Sample teacher traces, keep the accepted ones for SFT. Rerun the same command to resume."""
    from genrel.config import apply_override, read_yaml_mapping, validate_model
    from genrel.train.teacher import TeacherConfig, run_teacher

    values: dict[str, Any] = read_yaml_mapping(config) if config else {}
    for item in overrides or []:
        apply_override(values, item)
    flags = {"data": data, "criteria": criteria, "out": out, "base_url": base_url, "model": model, "n": n,
             "concurrency": concurrency, "from_gold": from_gold}
    values.update({k: v for k, v in flags.items() if v is not None})
    cfg = validate_model(TeacherConfig, values, str(config) if config else "teacher options")
    result = run_teacher(cfg)
    console.print(acceptance_table(result.acceptance))
    note = f", {result.rejected_requests} request(s) rejected by the endpoint (rerun to retry)" if result.rejected_requests else ""
    console.print(
        f"{result.written} trace(s) written, {result.skipped} already there{note}: {result.path}",
        markup=False, highlight=False,
    )


def acceptance_table(acceptance: dict[str, tuple[int, int]]):
    """A rich table: per gold label, accepted / total traces and the rate."""
    from rich.table import Table

    table = Table(title="Accepted traces per gold label")
    for name, justify in (("gold label", "left"), ("accepted", "right"), ("traces", "right"), ("rate", "right")):
        table.add_column(name, justify=justify)
    total_a = total_t = 0
    for label, (accepted, total) in acceptance.items():
        table.add_row(label, str(accepted), str(total), f"{accepted / total:.1%}")
        total_a, total_t = total_a + accepted, total_t + total
    if total_t:
        table.add_row("all", str(total_a), str(total_t), f"{total_a / total_t:.1%}", style="bold")
    return table
