"""Data options shared by the commands that read pairs to score: ``--data`` (any source
``genrel.data.load_pairs`` takes) or TREC parts given one by one (``--run``, ``--qrels``, ``--docs``,
``--queries``, ``--depth``), plus ``--map`` and ``--no-header``."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli.common import err_console

DATA = typer.Option(
    None, "--data",
    help="Pairs: .jsonl/.csv/.tsv/.parquet, a BEIR or datasets folder, or a source .yaml (docs/data-formats.md).",
)
RUN = typer.Option(None, "--run", help="TREC run file: the candidates to score (with --docs and --queries).")
QRELS = typer.Option(None, "--qrels", help="TREC qrels (3 or 4 columns): judgments, optional with --run.")
DOCS = typer.Option(None, "--docs", help="Documents for --run/--qrels: id<TAB>text TSV or JSON lines.")
QUERIES = typer.Option(None, "--queries", help="Queries for --run/--qrels: id<TAB>text TSV or JSON lines.")
DEPTH = typer.Option(None, "--depth", min=1, help="Keep each query's best N candidates of --run.")
NO_HEADER = typer.Option(False, "--no-header", help="The CSV/TSV has no header line (default: detected).")
MAP = typer.Option(None, "--map", "-m", help="field=column, e.g. query=search_term, label=grade. Repeatable.")


def load_data(criteria, *, data: Path | None, run: Path | None = None, qrels: Path | None = None,
              docs: Path | None = None, queries: Path | None = None, depth: int | None = None,
              mapping: list[str] | None = None, no_header: bool = False, on_error: str = "fail",
              require_label: bool = True):
    """The pairs of ``--data`` or of the TREC parts; skipped bad rows are reported on stderr."""
    from genrel.data import TrecSource, load_pairs, mapping_from_pairs
    from genrel.errors import ConfigError

    if on_error not in ("fail", "skip"):
        raise typer.BadParameter("must be 'fail' or 'skip'", param_hint="--on-error")
    parts = {"run": run, "qrels": qrels, "docs": docs, "queries": queries}
    if data is not None and any(v is not None for v in parts.values()):
        raise ConfigError("give --data, or --run/--qrels with --docs and --queries, not both", where="--data")
    if data is None:
        if docs is None or queries is None or (run is None and qrels is None):
            raise ConfigError("no data", where="--data",
                              hint="pass --data FILE, or --run/--qrels with --docs and --queries")
        source = TrecSource(**parts, depth=depth)
    else:
        source = data
    columns = mapping_from_pairs(list(mapping or []) + (["header=false"] if no_header else []))
    loaded = load_pairs(source, criteria, columns, on_error=on_error, require_label=require_label)
    if loaded.problems:
        err_console.print(f"skipped {loaded.bad_rows} bad row(s); first: {loaded.problems[0]}", style="yellow",
                          markup=False, highlight=False)
    return loaded.pairs


def data_name(data: Path | None, run: Path | None, qrels: Path | None) -> str:
    return str(data or run or qrels)
