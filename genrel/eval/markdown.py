"""Markdown of an evaluation report (``report.md``): a headline table, then the detail a reviewer asks
for next (per class, confusion, binary cut, calibration, steps, format errors). Only formatting: the
numbers come from ``report.json`` as computed by :mod:`genrel.eval.report`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

HEADLINE = [
    ("accuracy", "Accuracy", "share of pairs whose predicted label is the gold label"),
    ("macro_f1", "Macro-F1", "mean F1 over labels, each label weighing the same"),
    ("qwk", "Quadratic kappa", "agreement with gold beyond chance; far-off grades cost more (1 = perfect)"),
    ("mae", "MAE (grades)", "mean distance between predicted and gold grade on the scale (lower is better)"),
    ("ndcg@5", "nDCG@5", "graded ranking quality of the top 5 per query, trec_eval's ndcg_cut (1 = ideal order)"),
    ("ndcg@10", "nDCG@10", "graded ranking quality of the top 10 per query, trec_eval's ndcg_cut (1 = ideal order)"),
    ("map", "MAP", "mean average precision, relevant = the binary threshold label or better (trec_eval map)"),
    ("mrr@10", "MRR@10", "mean reciprocal rank of the first relevant document in the top 10"),
    ("recall@10", "Recall@10", "share of a query's relevant documents in its top 10"),
    ("ece", "ECE", "calibration error: gap between confidence and accuracy (lower is better)"),
    ("step_accuracy", "Step verdict accuracy", "share of verifiable step verdicts that are right"),
    ("format_error_rate", "Format error rate", "share of outputs that broke the grammar (lower is better)"),
    ("mean_reasoning_tokens", "Reasoning tokens", "mean generated reasoning tokens per pair"),
    ("pairs_per_second", "Pairs / s", "scoring throughput of this run"),
]


def fmt(value: Any, digits: int | None = 3) -> str:
    """A number for a table: fixed decimals, integers as is, undefined as an en dash. ``digits=None``
    keeps three significant digits (throughputs span 0.05 pairs/s for an LM to 500 for BM25)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if digits is None:
            return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return f"{value:.{digits}f}"
    return str(value)


def digits_for(key: str) -> int | None:
    """Decimals a headline metric is shown with."""
    return None if key in ("pairs_per_second", "mean_reasoning_tokens") else 3


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` is one of l/r per column (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [_row(header), _row(rule)] + [_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def report_markdown(report: dict[str, Any], images: dict[str, str]) -> str:
    """The whole ``report.md``; ``images`` maps plot kind (confusion, reliability, per_step) → file name."""
    parts = [_title(report), _headline(report), _per_class(report), _confusion(report, images.get("confusion")),
             _binary(report), _calibration(report, images.get("reliability")), _steps(report, images.get("per_step")),
             _format_errors(report), _footer()]
    return "\n".join(p for p in parts if p)


def _title(r: dict) -> str:
    return (
        f"# Evaluation: {r.get('model') or 'model'}\n\n"
        f"- data: `{r.get('data') or '-'}`\n"
        f"- criteria: `{r['criteria']}` (labels, worst to best: {', '.join(r['labels'])})\n"
        f"- {r['n']} pairs, {r['n_judged']} with a gold label, {r['n_queries']} queries "
        f"({r['ndcg_queries']} ranked; every query counts, one with no relevant document scores 0)\n"
        f"- ranking measures: {r.get('ranking_engine') or 'trec_eval'}, judged pool only, ties by document id "
        f"descending (docs/evaluation.md)\n"
    )


def _headline(r: dict) -> str:
    rows = [[name, f"**{fmt(r.get(key), digits_for(key))}**", means]
            for key, name, means in HEADLINE]
    return "## Headline\n\n" + md_table(["metric", "value", "what it means"], rows, "lrl")


def _per_class(r: dict) -> str:
    rows = [[name, fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), fmt(c["support"])]
            for name, c in r["per_class"].items()]
    return "## Per label\n\n" + md_table(["label", "precision", "recall", "F1", "gold pairs"], rows)


def _confusion(r: dict, image: str | None) -> str:
    labels, matrix = r["confusion"]["labels"], r["confusion"]["matrix"]
    rows = [[f"**{labels[i]}**", *[str(v) for v in row], str(sum(row))] for i, row in enumerate(matrix)]
    text = "## Confusion matrix\n\nRows: gold label; columns: predicted label.\n\n"
    text += md_table(["gold \\ predicted", *labels, "total"], rows)
    return text + (f"\n![confusion matrix]({image})\n" if image else "")


def _binary(r: dict) -> str:
    b = r["binary"]
    rows = [[k, fmt(b[k])] for k in ("precision", "recall", "f1", "roc_auc")]
    rows.append(["relevant gold pairs", fmt(b["positives"])])
    return (f"## Relevant or not (relevant = `{b['threshold']}` or better)\n\n"
            + md_table(["metric", "value"], rows))


def _calibration(r: dict, image: str | None) -> str:
    rows = [[f"{b['lo']:.1f}–{b['hi']:.1f}", str(b["count"]), fmt(b["confidence"]), fmt(b["accuracy"])]
            for b in r["reliability"] if b["count"]]
    text = (f"## Calibration\n\nECE {fmt(r['ece'])}: confidence is the probability of the predicted label; "
            "a calibrated model is right that often.\n\n")
    text += md_table(["confidence bin", "pairs", "mean confidence", "accuracy"], rows)
    return text + (f"\n![reliability diagram]({image})\n" if image else "")


def _steps(r: dict, image: str | None) -> str:
    counts = r["per_step_counts"]
    if not any(total for _, total in counts.values()):
        return "## Reasoning steps\n\nNo verifiable step verdicts (the model gave none, or no step is checked).\n"
    rows = [[s, fmt(r["per_step_accuracy"][s]), str(right), str(total)] for s, (right, total) in counts.items()]
    rows.append(["**all steps**", f"**{fmt(r['step_accuracy'])}**", str(sum(c[0] for c in counts.values())),
                 str(sum(c[1] for c in counts.values()))])
    text = "## Reasoning steps\n\nA verdict is right when it agrees with the gold label (criteria `expect`, "
    text += "or the row's gold verdicts).\n\n"
    text += md_table(["step", "accuracy", "right", "verified"], rows)
    return text + (f"\n![per-step accuracy]({image})\n" if image else "")


def _format_errors(r: dict) -> str:
    if not r["format_errors"]:
        return "## Format errors\n\nNone.\n"
    rows = [[kind, str(n)] for kind, n in sorted(r["format_errors"].items(), key=lambda kv: -kv[1])]
    return ("## Format errors\n\nThese pairs still have a label and a score (read from the label "
            "probabilities); the explanation broke the output grammar.\n\n" + md_table(["kind", "pairs"], rows))


def _footer() -> str:
    return "---\nMetric definitions: `docs/evaluation.md`. Recompute from `predictions.jsonl` with " \
           "`genrel.eval.metrics_from_predictions`.\n"
