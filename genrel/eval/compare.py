"""Compare evaluation runs side by side: one table (``compare.md``, ``compare.png``, ``compare.json``)
with the best value per metric marked, bootstrap 95% intervals for accuracy, macro-F1, nDCG@10, MAP
and MRR@10, and each run's *paired* difference from the first run: accuracy and macro-F1 over the pairs
both judged, nDCG@10, MAP and MRR@10 as the mean per-query difference over the queries both ranked,
each with a bootstrap interval from one set of query draws applied to both runs.
Ranking measures are trec_eval's (:mod:`genrel.eval.ranking`).

The bootstrap resamples *queries* with replacement (documents of one query are not independent), from
each run's ``predictions.jsonl``: ``n_resamples`` draws of as many queries as the run has, seeded, the
queries sorted by key, so runs on the same data get the same draws (a paired comparison). An interval
is the 2.5th–97.5th percentile of the resampled metric. Point values are the runs' ``report.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrel.errors import DataError
from genrel.eval import metrics as m
from genrel.eval import ranking
from genrel.eval.markdown import fmt, md_table
from genrel.eval.predictions import PREDICTIONS_FILE, query_key, read_predictions
from genrel.eval.report import REPORT_JSON, json_safe

log = logging.getLogger(__name__)

# (key in report.json, column title, better: "max" | "min" | None, decimals)
COLUMNS = [
    ("accuracy", "accuracy", "max", 3),
    ("macro_f1", "macro-F1", "max", 3),
    ("ndcg@10", "nDCG@10", "max", 3),
    ("ndcg@5", "nDCG@5", "max", 3),
    ("map", "MAP", "max", 3),
    ("mrr@10", "MRR@10", "max", 3),
    ("recall@10", "Recall@10", "max", 3),
    ("qwk", "QWK", "max", 3),
    ("mae", "MAE", "min", 3),
    ("ece", "ECE", "min", 3),
    ("binary.f1", "binary F1", "max", 3),
    ("binary.roc_auc", "ROC-AUC", "max", 3),
    ("step_accuracy", "step acc.", "max", 3),
    ("format_error_rate", "format err.", "min", 3),
    ("mean_reasoning_tokens", "reasoning tok.", None, 1),
    ("pairs_per_second", "pairs/s", "max", None),
    ("n_judged", "pairs", None, 0),
]
BOOTSTRAPPED = ("accuracy", "macro_f1", "ndcg@10", "map", "mrr@10")
PAIRED = ("ndcg@10", "map", "mrr@10")  # per-query measures whose paired differences are reported
PAIRED_LABEL = ("accuracy", "macro_f1")  # pair-level measures, paired over the pairs both runs judged
STAR = "★"


def compare(report_dirs: Sequence[str | Path], out_dir: str | Path, *, n_resamples: int = 1000,
            seed: int = 0) -> dict[str, Any]:
    """Write the comparison of ``report_dirs`` (each an ``genrel eval`` output folder) into ``out_dir``
    and return it as a dict (also ``compare.json``)."""
    if not report_dirs:
        raise DataError("nothing to compare", hint="give one or more evaluation output folders")
    runs = [_load_run(Path(d), n_resamples, seed) for d in report_dirs]
    names = _run_names([Path(d) for d in report_dirs])
    for run, name in zip(runs, names):
        run["name"] = name
    base = runs[0]
    for run in runs[1:]:
        if base["per_query"] is None or run["per_query"] is None:
            run["paired"] = None
            continue
        run["paired"] = {
            **paired_label_differences(base["judged"], run["judged"], base["labels"], n_resamples=n_resamples,
                                       seed=seed),
            **paired_differences(base["per_query"], run["per_query"], n_resamples=n_resamples, seed=seed),
        }
    for run in runs:
        del run["judged"]  # the rows served the pairing; compare.json keeps the summaries
    best = best_runs(runs)
    result = {"runs": runs, "best": best, "n_resamples": n_resamples, "seed": seed, "notes": _notes(runs)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.json").write_text(json.dumps(json_safe(result), indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    header, cells, flags = _table(runs, best)
    from genrel.eval.plots import table_png

    table_png(header, cells, flags, "Comparison (★ best; [95% bootstrap interval over queries])",
              out_dir / "compare.png")
    (out_dir / "compare.md").write_text(_markdown(header, cells, flags, result), encoding="utf-8")
    return json_safe(result)


def _load_run(run_dir: Path, n_resamples: int, seed: int) -> dict[str, Any]:
    report_path = run_dir / REPORT_JSON
    if not report_path.is_file():
        raise DataError("no report.json here", where=str(run_dir), hint="run `genrel eval --out DIR` first")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    values = {key: _lookup(report, key) for key, *_ in COLUMNS}
    predictions = run_dir / PREDICTIONS_FILE
    intervals: dict[str, list[float] | None] = dict.fromkeys(BOOTSTRAPPED)
    if predictions.is_file():
        rows = read_predictions(predictions)
        threshold = report["labels"].index(report["binary"]["threshold"])
        intervals = bootstrap_intervals(rows, report["labels"], report["gains"], n_resamples=n_resamples, seed=seed,
                                        threshold=threshold)
        per_query = _per_query(rows, report["labels"], report["gains"], threshold)
    else:
        log.warning("%s: no %s, so no bootstrap intervals", run_dir, PREDICTIONS_FILE)
        rows, per_query = [], None
    return {"dir": str(run_dir), "model": report.get("model"), "criteria": report.get("criteria"),
            "data": report.get("data"), "values": values, "intervals": intervals, "per_query": per_query,
            "labels": report["labels"], "judged": [r for r in rows if r.get("gold") is not None]}


def _per_query(rows, labels, gains, threshold) -> dict[str, dict[str, float]]:
    judged = [r for r in rows if r.get("gold") is not None]
    queries = [query_key(r) for r in judged]
    index = {name: i for i, name in enumerate(labels)}
    return ranking.per_query_measures(queries, ranking.doc_ids(judged, queries), [index[r["gold"]] for r in judged],
                                      [float(r["score"]) for r in judged], gains, threshold)


def paired_differences(base: dict[str, dict[str, float]], other: dict[str, dict[str, float]], *,
                       n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Measure → mean per-query difference (other − base) over the queries both runs ranked, its 95%
    bootstrap interval (queries resampled with replacement, seeded; the same draws for every measure)
    and the number of shared queries. Positive: ``other`` ranks better."""
    out: dict[str, dict[str, Any]] = {}
    for measure in PAIRED:
        keys = sorted(set(base.get(measure, {})) & set(other.get(measure, {})))
        if not keys:
            out[measure] = {"mean": None, "interval": None, "queries": 0}
            continue
        diff = np.array([other[measure][k] - base[measure][k] for k in keys])  # [Q]
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(keys), size=(n_resamples, len(keys)))  # [R, Q]
        means = diff[draws].mean(axis=1)  # [R]
        out[measure] = {"mean": float(diff.mean()), "interval": [float(v) for v in np.percentile(means, [2.5, 97.5])],
                        "queries": len(keys)}
    return out


def paired_label_differences(base_rows: Sequence[dict[str, Any]], other_rows: Sequence[dict[str, Any]],
                             labels: Sequence[str], *, n_resamples: int = 1000,
                             seed: int = 0) -> dict[str, dict[str, Any]]:
    """Accuracy and macro-F1 of ``other`` − ``base`` over the judged pairs both scored (matched by
    ``row_id``), with a 95% bootstrap interval: queries resampled with replacement, seeded, and each
    draw applied to both runs, so the interval is of the difference, not of two independent metrics."""
    other_by_id = {r["row_id"]: r for r in other_rows}
    shared = [(r, other_by_id[r["row_id"]]) for r in base_rows if r["row_id"] in other_by_id]
    if not shared:
        return {key: {"mean": None, "interval": None, "queries": 0} for key in PAIRED_LABEL}
    index = {name: i for i, name in enumerate(labels)}
    keys = sorted({query_key(b) for b, _ in shared})
    position = {key: i for i, key in enumerate(keys)}
    n_l = len(labels)
    per_query = np.zeros((2, len(keys), n_l * n_l))  # [run, Q, L·L] flattened confusion per query
    for b, o in shared:
        q, gold = position[query_key(b)], index[b["gold"]] * n_l
        per_query[0, q, gold + index[b["label"]]] += 1.0
        per_query[1, q, gold + index[o["label"]]] += 1.0

    def measures(weight: np.ndarray) -> np.ndarray:  # [2 measures] other − base
        confusions = (weight @ per_query).reshape(2, n_l, n_l)  # [run, L, L]
        values = [[np.trace(c) / c.sum(), m.macro_f1_from_confusion(c)] for c in confusions]
        return np.array(values[1]) - np.array(values[0])

    rng = np.random.default_rng(seed)
    draws = np.array([measures(np.bincount(rng.integers(0, len(keys), size=len(keys)), minlength=len(keys))
                               .astype(float)) for _ in range(n_resamples)])  # [R, 2]
    point = measures(np.ones(len(keys)))
    return {key: {"mean": float(point[j]), "interval": [float(v) for v in np.percentile(draws[:, j], [2.5, 97.5])],
                  "queries": len(keys), "pairs": len(shared)} for j, key in enumerate(PAIRED_LABEL)}


def _lookup(report: dict, key: str):
    value: Any = report
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def bootstrap_intervals(rows: Sequence[dict[str, Any]], labels: Sequence[str], gains: Sequence[float], *,
                        n_resamples: int = 1000, seed: int = 0,
                        threshold: int | None = None) -> dict[str, list[float] | None]:
    """95% percentile intervals of accuracy, macro-F1, nDCG@10, MAP and MRR@10, resampling queries with
    replacement (``threshold``: the lowest relevant label index of MAP/MRR, default the middle label).

    Each resample weighs query q by how often it was drawn: accuracy and macro-F1 come from the summed
    per-query confusion matrices (exactly :func:`metrics.accuracy` / :func:`metrics.macro_f1` over the
    resampled rows), the ranking measures are the weighted mean of trec_eval's per-query values."""
    judged = [r for r in rows if r.get("gold") is not None]
    if not judged:
        return dict.fromkeys(BOOTSTRAPPED)
    index = {name: i for i, name in enumerate(labels)}
    keys = sorted({query_key(r) for r in judged})
    position = {key: i for i, key in enumerate(keys)}
    n_q, n_l = len(keys), len(labels)
    q_of_row = np.array([position[query_key(r)] for r in judged])  # [N]
    gold = np.array([index[r["gold"]] for r in judged])  # [N]
    pred = np.array([index[r["label"]] for r in judged])  # [N]
    per_query = np.zeros((n_q, n_l * n_l))  # [Q, L·L] flattened confusion per query
    np.add.at(per_query, (q_of_row, gold * n_l + pred), 1.0)
    measures = _per_query(judged, labels, gains, n_l // 2 if threshold is None else threshold)
    ranked = np.array([[measures[name].get(key, np.nan) for key in keys] for name in BOOTSTRAPPED[2:]])  # [M, Q]
    rng = np.random.default_rng(seed)
    samples = np.empty((n_resamples, len(BOOTSTRAPPED)))  # [R, 2 + M]: accuracy, macro-F1, ranking measures
    for r in range(n_resamples):
        weight = np.bincount(rng.integers(0, n_q, size=n_q), minlength=n_q).astype(float)  # [Q]
        confusion = (weight @ per_query).reshape(n_l, n_l)  # [L, L]
        samples[r, 0] = np.trace(confusion) / confusion.sum()
        samples[r, 1] = m.macro_f1_from_confusion(confusion)
        for j, values in enumerate(ranked):
            counted = ~np.isnan(values)
            w = weight[counted]
            samples[r, 2 + j] = (w @ values[counted]) / w.sum() if w.sum() > 0 else np.nan
    out: dict[str, list[float] | None] = {}
    for j, key in enumerate(BOOTSTRAPPED):
        column = samples[:, j][~np.isnan(samples[:, j])]
        out[key] = [float(v) for v in np.percentile(column, [2.5, 97.5])] if len(column) else None
    return out


def best_runs(runs: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Metric → names of the runs with the best value as displayed (ties share it); only metrics with
    a direction, and only when at least two runs have a value."""
    best: dict[str, list[str]] = {}
    for key, _, better, digits in COLUMNS:
        shown = {run["name"]: float(fmt(v, digits)) for run in runs if (v := run["values"].get(key)) is not None}
        if better is None or len(shown) < 2:
            continue
        target = max(shown.values()) if better == "max" else min(shown.values())
        best[key] = [name for name, v in shown.items() if v == target]
    return best


def _table(runs, best) -> tuple[list[str], list[list[str]], list[list[bool]]]:
    """One row per metric, one column per run (reads well for many metrics and a few runs)."""
    header = ["metric", *[run["name"] for run in runs]]
    cells = [["model", *[run.get("model") or "–" for run in runs]]]
    flags = [[False] * len(header)]
    for key, title, better, digits in COLUMNS:
        row, marks = [title + (" ↓" if better == "min" else "")], [False]
        for run in runs:
            text = fmt(run["values"].get(key), digits)
            interval = run["intervals"].get(key)
            if interval is not None:
                text += f" [{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"
            is_best = run["name"] in best.get(key, [])
            row.append(f"{text} {STAR}" if is_best else text)
            marks.append(is_best)
        cells.append(row)
        flags.append(marks)
    return header, cells, flags


def _markdown(header, cells, flags, result) -> str:
    bold = [[f"**{c}**" if flag else c for c, flag in zip(row, marks)] for row, marks in zip(cells, flags)]
    text = "# Comparison\n\n"
    text += (f"★ and bold: best value per metric (↓: lower is better). In brackets: 95% bootstrap interval "
             f"over queries ({result['n_resamples']} resamples, seed {result['seed']}).\n\n")
    text += md_table(header, bold)
    text += "\n![comparison table](compare.png)\n"
    text += _paired_markdown(result["runs"])
    if result["notes"]:
        text += "\n## Notes\n\n" + "".join(f"- {note}\n" for note in result["notes"])
    runs = "".join(f"- {r['name']}: `{r['dir']}` (data `{r['data'] or '-'}`)\n" for r in result["runs"])
    text += "\n## Runs\n\n" + runs
    return text


def _paired_markdown(runs) -> str:
    """The paired-difference table: each later run minus the first."""
    rows = []
    for run in runs[1:]:
        paired = run.get("paired")
        if not paired:
            continue
        cells = [run["name"]]
        for measure in (*PAIRED_LABEL, *PAIRED):
            d = paired[measure]
            interval = d["interval"]
            cells.append("–" if d["mean"] is None else
                         f"{d['mean']:+.3f} [{interval[0]:+.3f}, {interval[1]:+.3f}]")
        cells.append(str(paired[PAIRED[0]]["queries"]))
        rows.append(cells)
    if not rows:
        return ""
    return (f"\n## Paired differences from `{runs[0]['name']}`\n\nRun − `{runs[0]['name']}`: accuracy and "
            "macro-F1 over the pairs both judged, ranking measures as the mean per-query difference over the "
            "queries both ranked; in brackets the 95% bootstrap interval over queries (the same draws for both "
            "runs). An interval that holds 0 is no evidence of a difference.\n\n"
            + md_table(["run", *PAIRED_LABEL, *PAIRED, "queries"], rows))


def _notes(runs) -> list[str]:
    notes = []
    for field, what in (("criteria", "criteria"), ("data", "data files"), ("values.n_judged", "pair counts")):
        values = {str(_lookup(run, field)) for run in runs}
        if len(values) > 1:
            notes.append(f"the runs differ in {what} ({', '.join(sorted(values))}); their numbers are not comparable")
    return notes


def _run_names(dirs: Sequence[Path]) -> list[str]:
    """Each run's folder name, or its path as given when two folders share a name; a folder given twice
    gets ``#2``, ``#3``… so every row has its own name."""
    names = [d.name or str(d) for d in dirs]
    names = [str(d) if names.count(n) > 1 else n for d, n in zip(dirs, names)]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique
