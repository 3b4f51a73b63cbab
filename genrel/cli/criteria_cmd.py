"""``genrel criteria show|check|list``."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli.common import console

app = typer.Typer(help="Show, list and validate criteria files.", no_args_is_help=True)


@app.command("list")
def list_presets() -> None:
    """List the shipped presets."""
    from genrel.criteria import load_criteria, preset_names

    for name in preset_names():
        c = load_criteria(name)
        console.print(f"[bold]{name}[/]  {', '.join(c.label_names)}  — {c.description}")


@app.command("show")
def show(name: str = typer.Argument(..., help="Preset name or YAML path.")) -> None:
    """Print a preset's YAML."""
    from genrel.criteria import load_criteria, preset_names, preset_path

    load_criteria(name)
    path = preset_path(name) if name in preset_names() else Path(name)
    console.print(path.read_text(encoding="utf-8"), markup=False, highlight=False)


@app.command("check")
def check(path: str = typer.Argument(..., help="Criteria YAML file or preset name.")) -> None:
    """Validate a criteria file; exit non-zero with file and field on the first problem."""
    from genrel.criteria import indistinguishable_labels, load_criteria

    c = load_criteria(path)
    console.print(
        f"ok: {c.name}: {len(c.labels)} labels ({', '.join(c.label_names)}), "
        f"{len(c.steps)} steps ({len(c.checked_steps)} checked), {len(c.rules)} rules",
        markup=False,
    )
    for a, b in indistinguishable_labels(c):
        console.print(f"warning: no checked step tells '{a}' from '{b}'", style="yellow", markup=False)
