"""Evaluate a scorer on judged pairs into a run folder: predictions, metrics, a readable report, plots.

``evaluate`` scores in chunks and appends each chunk to ``predictions.jsonl`` at once, so an
interrupted run resumes where it stopped; then it computes every metric from that file through
:func:`metrics_from_predictions`, the same path anyone can call later, so the report and the file
always agree. The run folder::

    predictions.jsonl   one row per input pair, in input order (genrel.eval.predictions)
    run.json            model, criteria, data, threshold label, pairs/s of the scoring run
    report.json         every metric (docs/evaluation.md)
    report.md           the readable report, with the plots below embedded
    confusion.png  reliability.png  per_step.png

Metric definitions live in :mod:`genrel.eval.metrics`; this module only gathers arrays from rows.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrel.criteria import Criteria, load_criteria
from genrel.data.pair import Pair
from genrel.data.resumable import append_rows, check_unique_row_ids, open_append, resume_rows
from genrel.errors import ConfigError, DataError, ModelError
from genrel.eval import metrics as m
from genrel.eval import ranking
from genrel.eval.predictions import (
    PREDICTIONS_FILE,
    prediction_row,
    put_in_input_order,
    query_key,
    read_predictions,
)
from genrel.progress import progress_bar
from genrel.score.base import Scorer

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
REPORT_JSON = "report.json"


def evaluate(
    scorer: Scorer,
    pairs: Sequence[Pair],
    criteria: Criteria | str,
    out_dir: str | Path,
    *,
    threshold_label: str | None = None,
    batch_size: int = 16,
    explain: bool = True,
    data: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``pairs`` with ``scorer`` into ``out_dir`` and return the report (also ``report.json``).

    ``explain`` asks the scorer for reasoning and verdicts (needed for per-step accuracy; baselines
    ignore it). ``data`` names the data file in the report. Rows already in ``out_dir``'s
    ``predictions.jsonl`` are kept and not scored again. Pairs go to the scorer in chunks of whole
    queries (:func:`query_chunks`); the finished file is in input order."""
    criteria = load_criteria(criteria)
    check_threshold(criteria, threshold_label)  # fail on a bad threshold before any scoring
    path = score_into_run(scorer, pairs, criteria, out_dir, batch_size=batch_size, explain=explain, data=data,
                          progress=progress, threshold_label=threshold_label)
    report = metrics_from_predictions(path, criteria)
    if pairs and not report["n_judged"]:
        log.warning("no pair has a gold label: only format errors and reasoning tokens are measured")
    write_report(report, out_dir)
    return report


def score_into_run(
    scorer: Scorer,
    pairs: Sequence[Pair],
    criteria: Criteria,
    out_dir: str | Path,
    *,
    batch_size: int = 16,
    explain: bool = True,
    data: str | None = None,
    progress: bool = True,
    threshold_label: str | None = None,
) -> Path:
    """Score ``pairs`` into ``out_dir/predictions.jsonl`` (resuming: rows already there are kept) and
    record the run in ``run.json``; returns the predictions path. Labels are optional: what ``evaluate``
    and ``genrel score`` share."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}", where="batch_size")
    check_unique_row_ids(pairs)
    out_dir = Path(out_dir)
    run = _start_run(out_dir, scorer.name, criteria.name, data, threshold_label)
    path = out_dir / PREDICTIONS_FILE
    done_rows = resume_rows(path)
    handle = open_append(path)
    done = {row["row_id"] for row in done_rows}
    todo = [p for p in pairs if p.row_id not in done]
    if done:
        log.info("resuming %s: %d of %d pairs already scored", path, len(pairs) - len(todo), len(pairs))
    with handle:
        rate = _score_into(handle, scorer, todo, criteria, batch_size, explain, progress)
    put_in_input_order(path, pairs)
    if rate is not None:
        run["pairs_per_second"] = rate
    _write_json(out_dir / RUN_FILE, run)
    return path


def _score_into(handle, scorer: Scorer, pairs: Sequence[Pair], criteria: Criteria, batch_size: int,
                explain: bool, progress: bool) -> float | None:
    """Score chunk by chunk, appending each chunk's rows at once; returns pairs per second (None if
    none scored)."""
    if not pairs:
        return None
    start = time.perf_counter()
    with progress_bar(len(pairs), f"eval {scorer.name}", enabled=progress) as bar:
        for chunk in query_chunks(pairs, batch_size):
            results = scorer.score_pairs(chunk, explain=explain)
            if len(results) != len(chunk):
                raise ModelError(f"scorer '{scorer.name}' returned {len(results)} results for {len(chunk)} pairs")
            append_rows(handle, [prediction_row(pair, scored, criteria) for pair, scored in zip(chunk, results)])
            bar.update(len(chunk))
    elapsed = time.perf_counter() - start
    return len(pairs) / elapsed if elapsed > 0 else None


def query_chunks(pairs: Sequence[Pair], batch_size: int) -> list[list[Pair]]:
    """Chunks of whole queries (in order of first appearance), each closed once it holds at least
    ``batch_size`` pairs: a scorer whose scores depend on a query's other candidates (BM25's IDF) sees
    every query whole. For data grouped by query this keeps input order."""
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.query_key, []).append(pair)
    chunks, current = [], []
    for group in groups.values():
        current.extend(group)
        if len(current) >= batch_size:
            chunks.append(current)
            current = []
    return chunks + ([current] if current else [])


def metrics_from_predictions(
    predictions_path: str | Path, criteria: Criteria | str, *, threshold_label: str | None = None
) -> dict[str, Any]:
    """The full report computed from a predictions file alone (rows need ``gold``), JSON-ready:
    undefined values are None. Model, data, pairs/s and, unless given, the threshold label come from
    ``run.json`` beside the file when it is there."""
    criteria = load_criteria(criteria)
    path = Path(predictions_path)
    run = _read_json(path.parent / RUN_FILE) or {}
    if threshold_label is None:
        threshold_label = run.get("threshold_label")
    rows = read_predictions(path)
    report = {
        "model": run.get("model"),
        "criteria": criteria.name,
        "data": run.get("data"),
        "pairs_per_second": run.get("pairs_per_second"),
        **compute_metrics(rows, criteria, threshold_label, where=str(path)),
    }
    return json_safe(report)


def compute_metrics(rows: Sequence[dict[str, Any]], criteria: Criteria, threshold_label: str | None = None,
                    *, where: str = "predictions") -> dict[str, Any]:
    """Every metric of docs/evaluation.md over prediction rows (values may be nan)."""
    names = criteria.label_names
    judged = [r for r in rows if r.get("gold") is not None]
    gold = [_index(criteria, r["gold"], "gold", where, r) for r in judged]
    pred = [_index(criteria, r["label"], "label", where, r) for r in judged]
    probs = np.array([[float(r["probabilities"].get(n, 0.0)) for n in names] for r in judged]).reshape(-1, len(names))
    confidence = [float(r["probabilities"].get(r["label"], 0.0)) for r in judged]
    correct = [g == p for g, p in zip(gold, pred)]
    queries = [query_key(r) for r in judged]
    counts = m.step_verdict_counts(
        criteria,
        [r.get("verdicts") for r in judged],
        [r["gold"] for r in judged],
        [r.get("gold_verdicts") for r in judged],
    )
    per_step, pooled = m.step_accuracies(counts)
    t_index = threshold_index(criteria, threshold_label)
    per_query = ranking_per_query(judged, criteria, t_index, where)
    return {
        "n": len(rows),
        "n_judged": len(judged),
        "n_queries": len(set(queries)),
        "accuracy": m.accuracy(gold, pred),
        "macro_f1": m.macro_f1(gold, pred),
        "qwk": m.quadratic_kappa(gold, pred, len(names)),
        "mae": m.scale_mae(gold, pred),
        **ranking.mean_measures(per_query),
        "ndcg_queries": len(per_query["ndcg@10"]),
        "ranking_engine": ranking_engine(),
        "ece": m.expected_calibration_error(confidence, correct),
        "format_error_rate": m.format_error_rate([r.get("format_error") for r in rows]),
        "mean_reasoning_tokens": m.mean_reasoning_tokens([int(r.get("reasoning_tokens") or 0) for r in rows]),
        "step_accuracy": pooled,
        "per_step_accuracy": per_step,
        "per_step_counts": {s: list(c) for s, c in counts.items()},
        "binary": {"threshold": names[t_index], **m.binary_scores(gold, pred, probs, t_index)},
        "per_class": m.per_class(gold, pred, names),
        "confusion": {"labels": names, "matrix": m.confusion(gold, pred, len(names))},
        "reliability": m.reliability_bins(confidence, correct),
        "format_errors": dict(Counter(r["format_error"] for r in rows if r.get("format_error") is not None)),
        "labels": names,
        "gains": criteria.gains,
    }


def ranking_per_query(judged: Sequence[dict[str, Any]], criteria: Criteria, t_index: int,
                      where: str = "predictions") -> dict[str, dict[str, float]]:
    """trec_eval's per-query ranking measures (:mod:`genrel.eval.ranking`) over judged prediction rows."""
    queries = [query_key(r) for r in judged]
    gold = [_index(criteria, r["gold"], "gold", where, r) for r in judged]
    scores = [float(r["score"]) for r in judged]
    return ranking.per_query_measures(queries, ranking.doc_ids(judged, queries), gold, scores, criteria.gains,
                                      t_index)


def write_trec_run(predictions_path: str | Path, out_file: str | Path, run_name: str | None = None) -> Path:
    """The predictions as a standard TREC run file (every row, judged or not; see
    :func:`genrel.eval.ranking.write_run_file`)."""
    rows = read_predictions(predictions_path)
    run = _read_json(Path(predictions_path).parent / RUN_FILE) or {}
    queries = [query_key(r) for r in rows]
    return ranking.write_run_file(out_file, queries, ranking.doc_ids(rows, queries), [float(r["score"]) for r in rows],
                                  run_name or run.get("model") or "genrel")


def ranking_engine() -> str:
    """What computed the ranking measures, with versions (recorded in every report)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    return f"trec_eval via pytrec_eval-terrier {v('pytrec_eval-terrier')} / ir-measures {v('ir-measures')}"


def threshold_index(criteria: Criteria, threshold_label: str | None) -> int:
    """Position of the binary threshold label; by default the label at position L // 2 (for a
    4-point scale the third label, e.g. trec-dl ``highly``, TREC's binary cut)."""
    check_threshold(criteria, threshold_label)
    if threshold_label is None:
        return len(criteria.labels) // 2
    return criteria.label_index(threshold_label)


def check_threshold(criteria: Criteria, threshold_label: str | None) -> None:
    """A :class:`ConfigError` unless ``threshold_label`` is None (the default cut) or a label of ``criteria``."""
    if threshold_label is not None and threshold_label not in criteria.label_names:
        raise ConfigError(
            f"threshold label '{threshold_label}' is not a label of criteria '{criteria.name}'",
            where="threshold",
            hint=f"labels: {', '.join(criteria.label_names)}",
        )


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``report.json``, the plots and ``report.md`` into ``out_dir``; returns the Markdown path."""
    from genrel.eval import plots
    from genrel.eval.markdown import report_markdown

    out_dir = Path(out_dir)
    _write_json(out_dir / REPORT_JSON, report)
    images = {
        "confusion": plots.confusion_png(report["confusion"]["matrix"], report["labels"], out_dir / "confusion.png"),
        "reliability": plots.reliability_png(report["reliability"], report["ece"], out_dir / "reliability.png"),
    }
    if any(total for _, total in report["per_step_counts"].values()):
        images["per_step"] = plots.per_step_png(
            report["per_step_accuracy"], report["per_step_counts"], out_dir / "per_step.png"
        )
    md = out_dir / "report.md"
    md.write_text(report_markdown(report, {k: p.name for k, p in images.items()}), encoding="utf-8")
    return md


def _index(criteria: Criteria, name: Any, field: str, where: str, row: dict) -> int:
    if name not in criteria.label_names:
        raise DataError(
            f"row '{row.get('row_id')}': {field} '{name}' is not a label of criteria '{criteria.name}'",
            where=where,
            hint=f"labels: {', '.join(criteria.label_names)}",
        )
    return criteria.label_index(name)


def _start_run(out_dir: Path, model: str, criteria: str, data: str | None, threshold_label: str | None) -> dict:
    """The run record; an existing one must be of the same model and criteria (resume), else error."""
    previous = _read_json(out_dir / RUN_FILE)
    has_rows = (out_dir / PREDICTIONS_FILE).is_file() and (out_dir / PREDICTIONS_FILE).stat().st_size > 0
    if previous and has_rows:
        for key, value in (("model", model), ("criteria", criteria)):
            if previous.get(key) != value:
                raise ConfigError(
                    f"holds predictions of {key} '{previous.get(key)}', not '{value}'",
                    where=str(out_dir),
                    hint="use another output folder, or delete this one to start over",
                )
    run = {"model": model, "criteria": criteria, "data": data, "threshold_label": threshold_label}
    run["pairs_per_second"] = (previous or {}).get("pairs_per_second") if has_rows else None
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / RUN_FILE, run)
    return run


def json_safe(value: Any) -> Any:
    """Plain JSON values: nan/inf become None, numpy scalars become Python numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(value), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from None
