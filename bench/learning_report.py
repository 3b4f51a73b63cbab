"""Summaries of the SAM learning benchmark's cells: per world and arm, curves over seeds, paired
differences to ``off`` with 95% intervals, the sample-efficiency ratio, SAM's masked-token share, the
warm-up check; a markdown table and the plot. Reads only cell records (``learning-cells.jsonl``), so a
run that spans sessions is summarised the same way at any point. Imports no torch.

A cell is one world × arm × seed: ``{"world", "arm", "seed", "curve": {step: metrics}, "train":
{metric: [value per GRPO step]}, "warmup": {...}, ...}`` as ``bench/learning.py`` writes it.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

CURVE_METRICS = ("label_accuracy", "step_accuracy", "consistency", "format_error_rate")
WARMUP_RANGE = (0.5, 0.75)  # held-out label accuracy the warm-up must end in (issue 12)


def by_world_arm(cells: list[dict]) -> dict[str, dict[str, dict[int, dict]]]:
    """world -> arm -> seed -> cell."""
    out: dict[str, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for cell in cells:
        out[cell["world"]][cell["arm"]][cell["seed"]] = cell
    return {w: dict(arms) for w, arms in out.items()}


def mean_sd(xs: list[float]) -> list[float]:
    """[mean, sd, n] ignoring missing values (sd 0 with one value, NaN with none)."""
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return [math.nan, math.nan, 0]
    return [statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs)]


def t_interval(xs: list[float], level: float = 0.95) -> dict[str, float]:
    """Mean of paired differences with a Student-t interval over seeds (NaN bounds with < 2 seeds)."""
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    n = len(xs)
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    mean = statistics.fmean(xs)
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": 1}
    from scipy.stats import t

    half = t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(xs) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def curves(seeds: dict[int, dict]) -> dict[str, dict[str, list[float]]]:
    """step -> metric -> [mean, sd, n] over the arm's seeds; per-step accuracy also by step id."""
    steps = sorted({int(s) for cell in seeds.values() for s in cell["curve"]})
    out = {}
    for step in steps:
        points = [c["curve"].get(str(step), {}) for c in seeds.values()]
        out[str(step)] = {m: mean_sd([p.get(m) for p in points]) for m in CURVE_METRICS}
        step_ids = sorted({k for p in points for k in (p.get("step_accuracy_by_step") or {})})
        out[str(step)]["step_accuracy_by_step"] = {
            k: mean_sd([(p.get("step_accuracy_by_step") or {}).get(k) for p in points]) for k in step_ids}
    return out


def paired_to_off(arms: dict[str, dict[int, dict]], step: int) -> dict[str, dict[str, dict[str, float]]]:
    """arm -> metric -> t interval of (arm - off) at ``step`` over the seeds both arms ran: a seed's
    arms share the warm-up data order and (criteria arms) the warm-up checkpoint, so the difference
    carries less seed noise than the arms' separate means."""
    if "off" not in arms:
        return {}
    out = {}
    for arm, seeds in arms.items():
        if arm == "off":
            continue
        common = sorted(set(seeds) & set(arms["off"]))
        out[arm] = {m: t_interval([_at(seeds[s], step, m) - _at(arms["off"][s], step, m)
                                   if _at(seeds[s], step, m) is not None and _at(arms["off"][s], step, m) is not None
                                   else None for s in common])
                    for m in ("label_accuracy", "step_accuracy", "consistency")}
    return out


def _at(cell: dict, step: int, metric: str) -> float | None:
    value = cell["curve"].get(str(step), {}).get(metric)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def steps_to_reach(points: list[tuple[int, float]], target: float) -> float | None:
    """The first step at which a curve reaches ``target``, linear between evaluation points; None if never."""
    for (s0, v0), (s1, v1) in zip(points, points[1:]):
        if v0 >= target:
            return float(s0)
        if v1 >= target:
            return s0 + (s1 - s0) * (target - v0) / (v1 - v0)
    return float(points[-1][0]) if points and points[-1][1] >= target else None


def sample_efficiency(arms: dict[str, dict[int, dict]], final_step: int) -> dict[str, float | None]:
    """arm -> (GRPO steps for the arm's seed-mean label accuracy to reach off's seed-mean final one) ÷
    off's steps; None when the arm never reaches it within the budget. Means over the seeds both ran."""
    if "off" not in arms:
        return {}
    out = {}
    for arm, seeds in arms.items():
        common = sorted(set(seeds) & set(arms["off"]))
        if not common:
            continue
        target = statistics.fmean(_at(arms["off"][s], final_step, "label_accuracy") for s in common)
        steps = sorted({int(k) for s in common for k in seeds[s]["curve"]})
        points = [(k, statistics.fmean(seeds[s]["curve"][str(k)]["label_accuracy"] for s in common))
                  for k in steps if all(str(k) in seeds[s]["curve"] for s in common)]
        reached = steps_to_reach(points, target)
        out[arm] = None if reached is None else reached / final_step
    return out


def masked_share(seeds: dict[int, dict]) -> dict[str, object]:
    """SAM's masked-token share: mean over GRPO steps and seeds, and the per-step mean curve."""
    series = [c["train"].get("sam/masked_token_share") or [] for c in seeds.values()]
    length = max((len(s) for s in series), default=0)
    curve = [mean_sd([s[i] if i < len(s) else None for s in series])[0] for i in range(length)]
    flat = [x for s in series for x in s if x is not None]
    return {"mean": statistics.fmean(flat) if flat else math.nan, "curve": curve}


def warmup_check(arms: dict[str, dict[int, dict]]) -> dict[str, dict[str, object]]:
    """format -> held-out (test, step 0) label accuracy of the warm-up over seeds, and whether every
    seed lies in :data:`WARMUP_RANGE`."""
    by_format: dict[str, dict[int, float]] = defaultdict(dict)
    for seeds in arms.values():
        for seed, cell in seeds.items():
            by_format[cell["warmup"]["format"]][seed] = cell["warmup"]["test"]["label_accuracy"]
    lo, hi = WARMUP_RANGE
    return {fmt: {"mean_sd_n": mean_sd(list(v.values())), "min": min(v.values()), "max": max(v.values()),
                  "in_range": all(lo <= x <= hi for x in v.values()), "per_seed": dict(sorted(v.items()))}
            for fmt, v in sorted(by_format.items())}


def summarise(cells: list[dict]) -> dict:
    """Everything the report shows, per world."""
    out = {}
    for world, arms in sorted(by_world_arm(cells).items()):
        final = max(int(s) for seeds in arms.values() for c in seeds.values() for s in c["curve"])
        out[world] = {
            "final_step": final,
            "seeds": {arm: sorted(seeds) for arm, seeds in arms.items()},
            "curves": {arm: curves(seeds) for arm, seeds in arms.items()},
            "paired_vs_off": paired_to_off(arms, final),
            "sample_efficiency": sample_efficiency(arms, final),
            "masked_token_share": {arm: masked_share(seeds) for arm, seeds in arms.items()},
            "warmup": warmup_check(arms),
        }
    return out


def table(world_summary: dict, arms: list[str], steps: list[int]) -> str:
    """Markdown: per arm, label / step accuracy and consistency (mean ± sd) at ``steps``, paired
    difference to off at the last step with its 95% interval, sample-efficiency ratio, masked share."""
    final = world_summary["final_step"]
    header = ["arm", "seeds", *(f"label acc @{s}" for s in steps), *(f"step acc @{s}" for s in steps),
              f"consistency @{final}", f"Δ label vs off @{final} [95% CI]", f"Δ step vs off @{final} [95% CI]",
              "steps to off's final ÷ off's", "masked share"]
    rows = []
    for arm in arms:
        if arm not in world_summary["curves"]:
            continue
        curve = world_summary["curves"][arm]
        paired = world_summary["paired_vs_off"].get(arm, {})
        eff = world_summary["sample_efficiency"].get(arm)
        rows.append([
            arm, str(len(world_summary["seeds"][arm])),
            *(_pm(curve.get(str(s), {}).get("label_accuracy")) for s in steps),
            *(_pm(curve.get(str(s), {}).get("step_accuracy")) for s in steps),
            _pm(curve.get(str(final), {}).get("consistency")),
            _ci(paired.get("label_accuracy")), _ci(paired.get("step_accuracy")),
            "—" if arm not in world_summary["sample_efficiency"] else ("> 1 (not reached)" if eff is None else f"{eff:.2f}"),
            _num(world_summary["masked_token_share"][arm]["mean"]),
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def warmup_lines(summary: dict) -> list[str]:
    lo, hi = WARMUP_RANGE
    lines = []
    for world, ws in summary.items():
        for fmt, w in ws["warmup"].items():
            mean, sd, n = w["mean_sd_n"]
            verdict = "in" if w["in_range"] else "NOT in"
            lines.append(f"warm-up {world}/{fmt}: held-out label accuracy {mean:.3f} ± {sd:.3f} over {n} seed(s) "
                         f"(min {w['min']:.3f}, max {w['max']:.3f}): {verdict} {lo:.0%}–{hi:.0%}")
    return lines


def plot(cells: list[dict], summary: dict, arms: list[str], path: Path) -> Path:
    """Per world: test label accuracy, test step accuracy (mean with a ± sd seed band) and SAM's
    masked-token share per GRPO step (mean over seeds)."""
    from matplotlib.figure import Figure

    worlds = list(summary)
    fig = Figure(figsize=(15, 4 * len(worlds)), dpi=110, layout="constrained")
    colours = {arm: f"C{i}" for i, arm in enumerate(arms)}
    for row, world in enumerate(worlds):
        ws = summary[world]
        for col, (metric, title) in enumerate([("label_accuracy", "test label accuracy"),
                                               ("step_accuracy", "test step accuracy")]):
            ax = fig.add_subplot(len(worlds), 3, row * 3 + col + 1)
            for arm in arms:
                curve = ws["curves"].get(arm)
                if not curve:
                    continue
                steps = sorted(int(s) for s in curve)
                mean = [curve[str(s)][metric][0] for s in steps]
                sd = [curve[str(s)][metric][1] for s in steps]
                if all(math.isnan(m) for m in mean):
                    continue
                n = curve[str(steps[-1])][metric][2]
                ax.plot(steps, mean, marker="o", ms=3, color=colours[arm], label=f"{arm} (n={n})")
                ax.fill_between(steps, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                                color=colours[arm], alpha=0.15, linewidth=0)
            ax.set_title(f"{world}: {title} (mean ± sd over seeds)")
            ax.set_xlabel("GRPO step")
            ax.grid(alpha=0.3)
            if col == 0:
                ax.legend(fontsize=7)
        ax = fig.add_subplot(len(worlds), 3, row * 3 + 3)
        for arm in arms:
            share = ws["masked_token_share"].get(arm, {}).get("curve") or []
            if share and not all(math.isnan(x) for x in share):
                ax.plot(range(1, len(share) + 1), share, color=colours[arm], label=arm)
        ax.set_title(f"{world}: SAM masked-token share per step")
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _pm(mean_sd_n: list[float] | None) -> str:
    if not mean_sd_n or mean_sd_n[2] == 0:
        return "—"
    return f"{mean_sd_n[0]:.3f} ± {mean_sd_n[1]:.3f}"


def _ci(interval: dict | None) -> str:
    if not interval or interval["n"] == 0:
        return "—"
    if interval["n"] < 2:
        return f"{interval['mean']:+.3f} (1 seed)"
    return f"{interval['mean']:+.3f} [{interval['low']:+.3f}, {interval['high']:+.3f}]"


def _num(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.3f}"
