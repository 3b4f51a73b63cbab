"""``genrel score``: score unjudged candidates (a first-stage run, a query log) with any model into
``predictions.jsonl`` and a TREC run file; resumable. ``genrel eval`` is the same with metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli import data_options as opt
from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("score")(score_command)


def score_command(
    model: str = typer.Option(..., "--model", help="Model folder or hub id, or bm25, zero-shot:<model>."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder; an unfinished run there is resumed."),
    data: Path | None = opt.DATA,
    run: Path | None = opt.RUN,
    qrels: Path | None = opt.QRELS,
    docs: Path | None = opt.DOCS,
    queries: Path | None = opt.QUERIES,
    depth: int | None = opt.DEPTH,
    criteria: str | None = typer.Option(
        None, "--criteria", "-c", help="Criteria preset or YAML (default: the model folder's own)."
    ),
    backend: str = typer.Option("hf", "--backend", help="hf, onnx or vllm."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Pairs per scoring call."),
    explain: bool = typer.Option(False, "--explain/--no-explain", help="Also keep reasoning and verdicts (slower)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N pairs."),
    tag: str | None = typer.Option(None, "--tag", help="Run tag in the TREC file's last column (default: model)."),
    dtype: str = typer.Option("auto", "--dtype", help="Weights dtype for LMs: auto, bfloat16, float32…"),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1, help="Reasoning budget per pair."),
    on_error: str = typer.Option("fail", "--on-error", help="fail: bad data rows are an error; skip: drop them."),
    mapping: list[str] = opt.MAP,
    no_header: bool = opt.NO_HEADER,
) -> None:
    """Score candidates (labels optional) into OUT/predictions.jsonl and OUT/run.trec."""
    from genrel.cli.eval_cmd import resolve_scorer
    from genrel.eval.scoring import score_candidates

    scorer = resolve_scorer(model, backend, criteria, max_new_tokens=max_new_tokens, dtype=dtype)
    pairs = opt.load_data(scorer.criteria, data=data, run=run, qrels=qrels, docs=docs, queries=queries, depth=depth,
                          mapping=mapping, no_header=no_header, on_error=on_error, require_label=False)
    pairs = pairs[:limit] if limit else pairs
    summary = score_candidates(scorer, pairs, scorer.criteria, out, batch_size=batch_size, explain=explain,
                               data=opt.data_name(data, run, qrels), run_tag=tag)
    console.print(
        f"{summary['pairs']} pairs of {summary['queries']} queries scored ({summary['judged']} judged): "
        f"{summary['predictions']}, {summary['trec_run']}",
        markup=False, highlight=False,
    )
