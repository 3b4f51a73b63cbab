"""``genrel data check|split``: validate a labelled data file and make query-disjoint splits."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import typer

from genrel.cli.common import console, err_console

app = typer.Typer(help="Inspect and validate labelled data.", no_args_is_help=True)

MAX_PROBLEMS_SHOWN = 20

_CRITERIA = typer.Option(..., "--criteria", "-c", help="Criteria preset name or YAML path.")
_MAP = typer.Option(
    None, "--map", "-m", help="field=column, e.g. query=search_term, label=grade, fields=brand,price. Repeatable."
)
_ON_ERROR = typer.Option("fail", "--on-error", help="fail: bad rows are an error; skip: drop them.")


def _load(path: Path, criteria: str, mapping: list[str] | None, require_label: bool = True):
    from genrel.criteria import load_criteria
    from genrel.data import load_pairs, mapping_from_pairs

    crit = load_criteria(criteria)
    columns = mapping_from_pairs(mapping or [])
    return crit, load_pairs(path, crit, columns, on_error="skip", require_label=require_label)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("fail", "skip"):
        raise typer.BadParameter("must be 'fail' or 'skip'", param_hint="--on-error")


def _print_problems(problems) -> None:
    bad_rows = len({p.source for p in problems})
    err_console.print(f"{len(problems)} problem(s) in {bad_rows} row(s):", style="yellow", markup=False)
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        err_console.print(f"  {problem}", markup=False, highlight=False)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        err_console.print(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN} more", markup=False)


@app.command("check")
def check(
    path: Path = typer.Argument(..., help="Data file: .jsonl/.json, .csv, .tsv or .parquet."),
    criteria: str = _CRITERIA,
    on_error: str = typer.Option(
        "fail", "--on-error", help="Accepted for symmetry with the other commands: any bad row makes check exit 1."
    ),
    mapping: list[str] = _MAP,
    require_label: bool = typer.Option(True, "--require-label/--no-require-label", help="Every row needs a label."),
) -> None:
    """Count pairs per label and per query, and list bad rows as file:line: field: message. Exits 1 when
    any row is bad, 0 when all are good, so a script can use it as a check."""
    from rich.table import Table

    _check_on_error(on_error)
    crit, result = _load(path, criteria, mapping, require_label)
    pairs = result.pairs
    counts = Counter(p.label for p in pairs)
    table = Table(title=f"{path} ({crit.name})")
    table.add_column("label")
    table.add_column("pairs", justify="right")
    table.add_column("share", justify="right")
    names = crit.label_names + ([None] if counts.get(None) else [])
    for name in names:
        n = counts.get(name, 0)
        table.add_row(name or "(none)", str(n), f"{n / len(pairs):.1%}" if pairs else "-")
    table.add_row("total", str(len(pairs)), "", style="bold")
    console.print(table)
    per_query = Counter(p.query_key for p in pairs)
    if per_query:
        sizes = sorted(per_query.values())
        console.print(
            f"{len(per_query)} queries; pairs per query: min {sizes[0]}, median {statistics.median(sizes):g}, "
            f"mean {statistics.fmean(sizes):.1f}, max {sizes[-1]}",
            markup=False,
        )
    with_verdicts = sum(1 for p in pairs if p.verdicts)
    if with_verdicts:
        console.print(f"{with_verdicts} pairs carry per-step gold verdicts", markup=False)
    if result.problems:
        _print_problems(result.problems)
        raise typer.Exit(1)
    console.print("no problems", style="green")


@app.command("split")
def split(
    path: Path = typer.Argument(..., help="Data file: .jsonl/.json, .csv, .tsv or .parquet."),
    criteria: str = _CRITERIA,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for train.jsonl and dev.jsonl."),
    dev: float = typer.Option(0.2, "--dev", min=0.0, max=1.0, help="Share of the queries that go to dev."),
    seed: int = typer.Option(0, "--seed", help="Seed of the query shuffle."),
    on_error: str = _ON_ERROR,
    mapping: list[str] = _MAP,
) -> None:
    """Split by query (no query in both files) into OUT/train.jsonl and OUT/dev.jsonl."""
    from genrel.data import split_by_query, write_pairs_jsonl

    _check_on_error(on_error)
    _, result = _load(path, criteria, mapping)
    if result.problems:
        _print_problems(result.problems)
        if on_error == "fail":
            raise typer.Exit(1)
    splits = split_by_query(result.pairs, {"train": 1.0 - dev, "dev": dev}, seed=seed)
    for name, pairs in splits.items():
        target = write_pairs_jsonl(pairs, out / f"{name}.jsonl")
        queries = len({p.query_key for p in pairs})
        console.print(f"{target}: {len(pairs)} pairs, {queries} queries", markup=False)
