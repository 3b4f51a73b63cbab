"""PNG figures of a report and of a comparison, drawn with matplotlib's Agg canvas.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot), so plotting changes no
global backend state and works without a display. Each function takes plain report values and a path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

DPI = 120


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    """Counts annotated in each cell; colour = share of the gold row (the row's recall profile)."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)  # [L, L]
    row_sums = counts.sum(axis=1, keepdims=True)  # [L, 1]
    shares = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)  # [L, L]
    size = 1.2 + 0.9 * len(labels)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Confusion matrix (colour: share of gold row)")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def reliability_png(bins: Sequence[dict], ece: float | None, path: Path) -> Path:
    """Accuracy per confidence bin against the diagonal, with the bins' row counts underneath."""
    fig = _figure(5.5, 5.5)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    width = bins[0]["hi"] - bins[0]["lo"] if bins else 0.1
    centres = [(b["lo"] + b["hi"]) / 2 for b in bins]
    accuracy = [0.0 if _missing(b["accuracy"]) else b["accuracy"] for b in bins]
    top.bar(centres, accuracy, width=width * 0.9, color="tab:blue", alpha=0.8, label="accuracy")
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    points = [(b["confidence"], b["accuracy"]) for b in bins if b["count"]]
    if points:
        top.plot(*zip(*points), "o", color="tab:orange", label="mean confidence → accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    title = "Reliability diagram"
    top.set_title(title if _missing(ece) else f"{title} (ECE {ece:.3f})")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(centres, [b["count"] for b in bins], width=width * 0.9, color="grey")
    bottom.set_xlabel("confidence of the predicted label")
    bottom.set_ylabel("pairs")
    return _save(fig, path)


def per_step_png(accuracy: dict[str, float | None], counts: dict[str, Sequence[int]], path: Path) -> Path:
    """One horizontal bar per checked step: share of right verdicts among verified ones."""
    steps = list(accuracy)
    fig = _figure(6.0, 1.2 + 0.5 * max(len(steps), 1))
    ax = fig.add_subplot()
    values = [0.0 if _missing(accuracy[s]) else accuracy[s] for s in steps]
    ax.barh(range(len(steps)), values, color="tab:green")
    ax.set_yticks(range(len(steps)), steps)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.22)
    ax.set_xlabel("verdict accuracy (right / verified)")
    ax.set_title("Per-step verdict accuracy")
    for i, step in enumerate(steps):
        right, verified = counts[step]
        text = "not verified" if _missing(accuracy[step]) else f"{values[i]:.2f} ({right}/{verified})"
        ax.text(values[i] + 0.01, i, text, va="center", fontsize="small")
    return _save(fig, path)


def table_png(header: Sequence[str], rows: Sequence[Sequence[str]], best: Sequence[Sequence[bool]],
              title: str, path: Path) -> Path:
    """A table as an image; cells flagged in ``best`` are bold on a light green background."""
    width = 1.6 + 2.2 * (len(header) - 1)
    fig = _figure(width, 0.7 + 0.3 * (len(rows) + 1))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    table = ax.table(cellText=[list(r) for r in rows], colLabels=list(header), loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.3)
    for i in range(len(rows) + 1):
        table[i, 0].set_text_props(ha="left")
    for j in range(len(header)):
        table[0, j].set_text_props(weight="bold")
        table[0, j].set_facecolor("#e8e8e8")
    for i, flags in enumerate(best, start=1):
        for j, flag in enumerate(flags):
            if flag:
                table[i, j].set_text_props(weight="bold")
                table[i, j].set_facecolor("#d9f2d9")
    return _save(fig, path)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def curves_png(panels: dict[str, dict[str, Sequence[tuple[float, float]]]], path: Path, title: str = "") -> Path:
    """One panel per entry, two per row: each metric a line over steps (NaN values are gaps)."""
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = _figure(5.0 * columns, 3.4 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.axis("off")
    for ax, (name, lines) in zip(axes, panels.items()):
        for key, points in lines.items():
            steps, values = zip(*points)
            ax.plot(steps, values, marker="." if len(points) < 30 else None, label=key)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
