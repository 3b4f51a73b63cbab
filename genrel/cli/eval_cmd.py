"""``genrel eval`` (score a labelled file into a report folder) and ``genrel compare`` (runs side by side)."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli import data_options as opt
from genrel.cli.common import console, err_console


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("compare")(compare_command)


def eval_command(
    model: str = typer.Option(
        ...,
        "--model",
        help="Model folder or hub id, or a baseline: bm25, zero-shot:<model>, zero-shot-nosteps:<model>.",
    ),
    data: Path | None = opt.DATA,
    criteria: str = typer.Option(..., "--criteria", "-c", help="Criteria preset name or YAML path."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder; an unfinished run there is resumed."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate only the first N pairs."),
    backend: str = typer.Option("hf", "--backend", help="hf, onnx or vllm."),
    threshold: str | None = typer.Option(
        None, "--threshold", help="Lowest label counted as relevant in the binary metrics (default: middle label)."
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Pairs per scoring call."),
    explain: bool = typer.Option(
        True, "--explain/--no-explain", help="Ask for reasoning and verdicts (per-step accuracy needs them)."
    ),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", min=1, help="Reasoning budget per pair (default: the model's; 512 otherwise)."
    ),
    dtype: str = typer.Option("auto", "--dtype", help="Weights dtype for LMs: auto, bfloat16, float32…"),
    on_error: str = typer.Option("fail", "--on-error", help="fail: bad data rows are an error; skip: drop them."),
    mapping: list[str] = opt.MAP,
    no_header: bool = opt.NO_HEADER,
    run: Path | None = opt.RUN,
    qrels: Path | None = opt.QRELS,
    docs: Path | None = opt.DOCS,
    queries: Path | None = opt.QUERIES,
    depth: int | None = opt.DEPTH,
    trec_run: Path | None = typer.Option(
        None, "--trec-run", help="Also write the scores as a standard TREC run file (qid Q0 docid rank score tag)."
    ),
) -> None:
    """Score a labelled file and write predictions.jsonl, report.json, report.md and plots into --out."""
    from genrel.criteria import load_criteria
    from genrel.eval import evaluate, check_threshold

    if backend not in ("hf", "onnx", "vllm"):
        raise typer.BadParameter("must be hf, onnx or vllm", param_hint="--backend")
    crit = load_criteria(criteria)
    check_threshold(crit, threshold)  # a typo fails before the model loads
    pairs = opt.load_data(crit, data=data, run=run, qrels=qrels, docs=docs, queries=queries, depth=depth,
                          mapping=mapping, no_header=no_header, on_error=on_error)
    pairs = pairs[:limit] if limit else pairs
    scorer = resolve_scorer(model, backend, crit, max_new_tokens=max_new_tokens, dtype=dtype)
    report = evaluate(scorer, pairs, crit, out, threshold_label=threshold, batch_size=batch_size,
                      explain=explain, data=opt.data_name(data, run, qrels))
    _print_headline(report, out)
    if trec_run is not None:
        from genrel.eval.predictions import PREDICTIONS_FILE
        from genrel.eval.report import write_trec_run

        write_trec_run(out / PREDICTIONS_FILE, trec_run, scorer.name)
        console.print(f"TREC run: {trec_run}", markup=False, highlight=False)


def resolve_scorer(model: str, backend: str, criteria, *, max_new_tokens: int | None = None, dtype: str = "auto"):
    """The scorer for ``--model`` (models and baselines alike), from :mod:`genrel.score`."""
    from genrel.score import load_scorer

    options = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    return load_scorer(model, backend=backend, criteria=criteria, dtype=dtype, **options)


def compare_command(
    runs: list[Path] = typer.Argument(..., metavar="DIR...", help="Folders written by genrel eval."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for compare.md, compare.png and compare.json."),
    resamples: int = typer.Option(1000, "--resamples", min=1, help="Bootstrap resamples of the queries."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
) -> None:
    """Put several evaluation runs in one table, best value marked, with bootstrap intervals."""
    from genrel.eval import compare

    result = compare(runs, out, n_resamples=resamples, seed=seed)
    for note in result["notes"]:
        err_console.print(f"note: {note}", style="yellow", markup=False, highlight=False)
    console.print(f"{out / 'compare.md'}: {len(result['runs'])} runs compared", markup=False, highlight=False)


def _print_headline(report: dict, out: Path) -> None:
    from rich.table import Table

    from genrel.eval.markdown import HEADLINE, digits_for, fmt

    table = Table(title=f"{report.get('model')} on {report.get('data')} ({report['n_judged']} judged pairs)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, name, _ in HEADLINE:
        table.add_row(name, fmt(report.get(key), digits_for(key)))
    console.print(table)
    console.print(f"report: {out / 'report.md'}", markup=False, highlight=False)
