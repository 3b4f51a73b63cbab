"""compare(): one table over runs, best value marked, query-bootstrap intervals around the point values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from genrel.criteria import load_criteria
from genrel.data.pair import Pair
from genrel.eval import bootstrap_intervals, compare, evaluate, read_predictions
from genrel.score.base import Scored, Scorer, argmax_label, expected_gain

CRIT = load_criteria("trec-dl")
NAMES = CRIT.label_names


class NoisyScorer(Scorer):
    """Puts ``skill`` of the mass on the gold label and spreads the rest by a seeded draw per row."""

    def __init__(self, name: str, skill: float, seed: int):
        self.criteria, self.name, self.skill, self.seed = CRIT, name, skill, seed

    def score_pairs(self, pairs, *, explain=False):
        out = []
        for pair in pairs:
            rng = np.random.default_rng([self.seed, int(pair.row_id)])
            values = (1 - self.skill) * rng.dirichlet(np.ones(len(NAMES)))
            values[NAMES.index(pair.label)] += self.skill
            probs = dict(zip(NAMES, values.tolist()))
            out.append(Scored(label=argmax_label(probs, CRIT), score=expected_gain(CRIT, probs), probabilities=probs,
                              format_error="malformed" if int(pair.row_id) % 11 == 0 else None))
        return out


def _pairs() -> list[Pair]:
    rng = np.random.default_rng(7)
    return [Pair(row_id=str(q * 6 + d), query=f"q{q}", text="t", qid=f"q{q}", docid=f"d{d}",
                 label=NAMES[int(rng.integers(0, 4))]) for q in range(15) for d in range(6)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, skill in (("good", 0.3), ("weak", 0.05)):
        evaluate(NoisyScorer(name, skill, seed=1), _pairs(), CRIT, root / name, data="dev.jsonl", progress=False)
    return root


def test_compare_marks_best_and_brackets_point_estimates(runs, tmp_path):
    result = compare([runs / "good", runs / "weak"], tmp_path / "cmp", n_resamples=300)
    good, weak = result["runs"]
    assert good["values"]["accuracy"] > weak["values"]["accuracy"]
    assert result["best"]["accuracy"] == ["good"] and result["best"]["macro_f1"] == ["good"]
    assert result["best"]["ece"] == [min((good, weak), key=lambda r: r["values"]["ece"])["name"]]
    for run in (good, weak):
        for key in ("accuracy", "macro_f1", "ndcg@10"):
            lo, hi = run["intervals"][key]
            assert lo <= run["values"][key] <= hi and lo < hi, (run["name"], key)
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "★" in md and "**" in md and "[" in md and "ECE ↓" in md
    png = tmp_path / "cmp" / "compare.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["best"] == result["best"]


def test_bootstrap_is_seeded_and_centred(runs):
    rows = read_predictions(runs / "good" / "predictions.jsonl")
    report = json.loads((runs / "good" / "report.json").read_text())
    a = bootstrap_intervals(rows, NAMES, CRIT.gains, n_resamples=200, seed=3)
    b = bootstrap_intervals(rows, NAMES, CRIT.gains, n_resamples=200, seed=3)
    assert a == b
    many = bootstrap_intervals(rows, NAMES, CRIT.gains, n_resamples=2000, seed=0)
    for key in ("accuracy", "macro_f1", "ndcg@10"):
        lo, hi = many[key]
        assert lo < report[key] < hi


def test_lower_is_better_metrics_and_ties(runs, tmp_path):
    result = compare([runs / "good", runs / "good"], tmp_path / "same", n_resamples=50)
    # the same folder twice: names are the paths, every metric ties and both are marked
    assert len(result["best"]["accuracy"]) == 2 and len(result["best"]["format_error_rate"]) == 2


def test_cli_compare(runs, tmp_path):
    from genrel.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["compare", str(runs / "good"), str(runs / "weak"), "--out", str(out),
                                      "--resamples", "100"])
    assert result.exit_code == 0, result.output
    assert (out / "compare.md").is_file() and (out / "compare.png").is_file()


def test_paired_differences_are_per_query_means_with_an_interval(runs, tmp_path):
    result = compare([runs / "weak", runs / "good"], tmp_path / "cmp", n_resamples=500)
    weak, good = result["runs"]
    paired = good["paired"]["ndcg@10"]
    mine = {q: good["per_query"]["ndcg@10"][q] - weak["per_query"]["ndcg@10"][q] for q in weak["per_query"]["ndcg@10"]}
    assert paired["queries"] == 15 and paired["mean"] == pytest.approx(np.mean(list(mine.values())))
    assert paired["mean"] == pytest.approx(good["values"]["ndcg@10"] - weak["values"]["ndcg@10"])
    lo, hi = paired["interval"]
    assert lo < paired["mean"] < hi and "paired" not in weak
    assert "Paired differences from `weak`" in (tmp_path / "cmp" / "compare.md").read_text()


def test_paired_accuracy_difference_uses_the_same_query_draws_for_both_runs(runs, tmp_path):
    result = compare([runs / "weak", runs / "good"], tmp_path / "acc", n_resamples=500)
    weak, good = result["runs"]
    paired = good["paired"]["accuracy"]
    assert paired["pairs"] == 90 and paired["queries"] == 15
    assert paired["mean"] == pytest.approx(good["values"]["accuracy"] - weak["values"]["accuracy"])
    lo, hi = paired["interval"]
    assert 0 < lo < paired["mean"] < hi  # skill 0.3 vs 0.05 on 90 pairs: a clear difference
    # pairing removes the shared query-to-query spread: the difference's interval is narrower than the
    # interval one would get by treating the runs' bootstrap intervals as independent
    unpaired = np.hypot(*(np.diff(r["intervals"]["accuracy"])[0] for r in (good, weak)))
    assert hi - lo < unpaired
    same = compare([runs / "good", runs / "good"], tmp_path / "same-acc", n_resamples=50)["runs"][1]["paired"]
    assert same["accuracy"]["mean"] == 0 and same["accuracy"]["interval"] == [0, 0]
    assert same["macro_f1"]["interval"] == [0, 0]
    assert "macro_f1" in (tmp_path / "acc" / "compare.md").read_text()
