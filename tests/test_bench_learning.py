"""bench/learning.py: its building blocks (arguments, both worlds, tokenizer, the two prompt kinds,
evaluation, statistics, table, plot), and the whole benchmark end to end at a minimal size: the arms
differ where they should and share what they should, finished cells are skipped on a rerun."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest

from conftest import REPO
from genrel.grammar import LABEL_OPEN, step_open


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_learning", REPO / "bench" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(bench):
    return bench.learning_report


@pytest.fixture(scope="module")
def worlds(bench, tmp_path_factory):
    args = bench.parse_args(["--queries", "20", "--vocab", "500"])
    work = tmp_path_factory.mktemp("worlds")
    return {name: bench.load_world(name, args, work) for name in bench.WORLDS}


def test_arguments_plan_core_arms_on_six_seeds_and_variants_on_three(bench):
    args = bench.parse_args([])
    assert args.arm_list == ["generic", "off", "hard", "hard+renorm", "soft", "first_error", "hard+step"]
    assert args.world_list == ["catalogue", "notes"]
    cells = bench.planned_cells(args)
    per_arm = {arm: len({s for w, a, s in cells if a == arm}) for arm in args.arm_list}
    assert per_arm == {"generic": 6, "off": 6, "hard": 6, "hard+renorm": 3, "soft": 3, "first_error": 3, "hard+step": 3}
    assert len(cells) == 2 * (3 * 6 + 4 * 3)
    assert bench.ARMS["hard+renorm"].rl["sam"] == {"mode": "hard", "renormalize": True}
    assert bench.ARMS["generic"].prompt == "generic" and bench.ARMS["off"].prompt == "criteria"
    assert bench.parse_args(["--warmup-steps", "7"]).warmup_step_map == {"catalogue": 7, "notes": 7}
    assert bench.eval_steps(bench.parse_args(["--steps", "50", "--eval-every", "20"])) == [0, 20, 40, 50]
    with pytest.raises(SystemExit):
        bench.parse_args(["--arms", "hard,nonsense"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--warmup-steps", "notes=5"])  # catalogue missing


def test_fingerprint_ignores_scheduling_not_results(bench):
    base = bench.fingerprint(bench.parse_args([]))
    assert bench.fingerprint(bench.parse_args(["--seeds", "0", "--jobs", "2", "--arms", "off"])) == base
    assert bench.fingerprint(bench.parse_args(["--steps", "7"])) != base
    assert bench.fingerprint(bench.parse_args(["--warmup-steps", "9"])) != base


def test_worlds_are_query_disjoint_with_gold_verdicts(worlds):
    assert worlds["notes"].criteria.steps[0].provisional  # the world where the provisional rule acts
    for world in worlds.values():
        queries = {name: {p.qid for p in pairs} for name, pairs in world.splits.items()}
        assert queries["train"] and queries["test"] and not (queries["train"] & queries["test"])
        assert all(p.verdicts for pairs in world.splits.values() for p in pairs)


def test_generic_prompt_and_completion_hold_no_criteria_steps(worlds):
    for world in worlds.values():
        pair = world.splits["test"][0]
        criteria_system, criteria_user = (m["content"] for m in world.messages("criteria", pair))
        generic_system, generic_user = (m["content"] for m in world.messages("generic", pair))
        assert criteria_user == generic_user and pair.query in generic_user and pair.title in generic_user
        assert pair.text not in generic_user  # the title holds the facts; the text is left out
        for step in world.criteria.steps:
            assert step.ask in criteria_system and step.ask not in generic_system
            assert step_open(step.id) in world.completion("criteria", pair)
        assert all(rule in criteria_system and rule not in generic_system for rule in world.criteria.rules)
        assert world.completion("generic", pair) == f"{LABEL_OPEN}{pair.label}</label>"


def test_tokenizer_keeps_tags_and_system_messages_whole(worlds):
    for world in worlds.values():
        tok = world.tokenizer
        for tag in (step_open(world.criteria.steps[0].id), "</step>", LABEL_OPEN, "</label>"):
            assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
        pair = world.splits["test"][0]
        for kind in ("criteria", "generic"):
            system = world.messages(kind, pair)[0]["content"]
            assert len(tok(system, add_special_tokens=False)["input_ids"]) == 1
            text = world.completion(kind, pair)
            assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_evaluate_a_random_model(bench, worlds):
    from genrel.models.tiny import tiny_causal_lm

    world = worlds["notes"]
    model = tiny_causal_lm(world.tokenizer, hidden_size=32, layers=1, seed=0)
    for kind in ("criteria", "generic"):
        data = bench.EvalSet.build(world, kind, world.splits["test"][:4])
        metrics = bench.evaluate(model, world.tokenizer, world.prompt_criteria[kind], data, max_new_tokens=4)
        assert 0.0 <= metrics["label_accuracy"] <= 1.0
        assert metrics["format_error_rate"] == 1.0  # 4 tokens cannot hold the steps, nor does a random model write them
        if kind == "criteria":
            assert metrics["step_accuracy"] == 0.0 and set(metrics["step_accuracy_by_step"]) == {"provisional", "calibrated"}
        else:
            assert metrics["step_accuracy"] is None and metrics["consistency"] is None
        assert model.training  # evaluation restores the mode it found


def _cell(world, arm, seed, accs, steps=(0, 10, 20), masked=0.1):
    curve = {str(s): {"label_accuracy": a, "step_accuracy": a / 2, "consistency": 0.9, "format_error_rate": 0.0}
             for s, a in zip(steps, accs)}
    return {"world": world, "arm": arm, "seed": seed, "curve": curve, "train": {"sam/masked_token_share": [masked] * 3},
            "warmup": {"format": "generic" if arm == "generic" else "criteria", "test": curve["0"]}}


def test_paired_intervals_and_sample_efficiency(report):
    cells = [_cell("w", "off", 0, [0.5, 0.55, 0.6]), _cell("w", "off", 1, [0.6, 0.65, 0.7]),
             _cell("w", "off", 2, [0.55, 0.6, 0.65]),
             _cell("w", "hard", 0, [0.5, 0.6, 0.7]), _cell("w", "hard", 1, [0.6, 0.7, 0.75]),
             _cell("w", "hard", 2, [0.55, 0.65, 0.7])]
    s = report.summarise(cells)["w"]
    d = s["paired_vs_off"]["hard"]["label_accuracy"]  # per seed 0.10, 0.05, 0.05
    assert math.isclose(d["mean"], 0.2 / 3) and d["n"] == 3
    half = 4.302653 * math.sqrt(((0.1 - 0.2 / 3) ** 2 + 2 * (0.05 - 0.2 / 3) ** 2) / 2) / math.sqrt(3)  # t(0.975, 2)
    assert math.isclose(d["high"] - d["mean"], half, rel_tol=1e-4)
    # off's mean final is 0.65; hard's mean curve 0.55, 0.65, 0.7167 reaches it at step 10 of off's 20.
    assert math.isclose(s["sample_efficiency"]["hard"], 0.5) and math.isclose(s["sample_efficiency"]["off"], 1.0)
    assert report.steps_to_reach([(0, 0.4), (10, 0.6)], 0.5) == 5.0
    assert report.steps_to_reach([(0, 0.4), (10, 0.45)], 0.5) is None
    assert math.isclose(s["masked_token_share"]["hard"]["mean"], 0.1)
    assert s["warmup"]["criteria"]["in_range"] and s["warmup"]["criteria"]["min"] == 0.5


def test_table_and_plot(report, tmp_path):
    cells = [_cell("w", arm, seed, [0.5, 0.5 + 0.1 * seed, 0.6]) for arm in ("generic", "off", "hard") for seed in (0, 1)]
    summary = report.summarise(cells)
    text = report.table(summary["w"], ["generic", "off", "hard"], [0, 20])
    assert "| hard " in text and "+0.000 [" in text and "0.600 ± 0.000" in text
    assert report.plot(cells, summary, ["generic", "off", "hard"], tmp_path / "p.png").stat().st_size > 1000
    assert any("NOT in" not in line for line in report.warmup_lines(summary))


MINI = ["--worlds", "notes", "--seeds", "0,1", "--arms", "generic,off,hard", "--steps", "2", "--eval-every", "1",
        "--queries", "12", "--eval-pairs", "6", "--hidden", "32", "--layers", "1", "--vocab", "400",
        "--warmup-steps", "3", "--prompts", "2", "--generations", "2"]


def test_benchmark_end_to_end_arms_differ_and_share_where_they_should(bench, tmp_path, capsys):
    out, work = tmp_path / "out", tmp_path / "work"
    args = [*MINI, "--out", str(out), "--work", str(work)]
    result = bench.main(args)
    cells = {c["key"]: c for c in bench.read_cells(out)}
    assert sorted(cells) == sorted(f"notes/{a}/seed{s}" for a in ("generic", "off", "hard") for s in (0, 1))
    for seed in (0, 1):
        generic, off, hard = (cells[f"notes/{a}/seed{seed}"] for a in ("generic", "off", "hard"))
        # off and hard: one warm-up checkpoint; generic: its own (label-only traces), same steps
        assert off["warmup"]["sha256"] == hard["warmup"]["sha256"] != generic["warmup"]["sha256"]
        assert off["warmup"]["steps"] == generic["warmup"]["steps"] == 3
        # the same training rows in the same order for every arm of a seed
        assert off["data_order_sha256"] == hard["data_order_sha256"] == generic["data_order_sha256"]
        assert "provisional" not in generic["prompt_example"] and "Reason in these steps" not in generic["prompt_example"]
        assert "provisional" in off["prompt_example"] and "Reason in these steps" in off["prompt_example"]
        assert generic["max_completion_tokens"] < off["max_completion_tokens"]
        assert not off["bf16"] and not generic["bf16"]  # fp32 pinned whatever the host supports
        assert set(off["curve"]) == {"0", "1", "2"} and off["curve"]["0"] == off["warmup"]["test"]
        assert len(hard["train"]["sam/masked_token_share"]) == 2 and "steps/provisional_accuracy" in hard["train"]
        assert all(x in (0, 0.0, None) for x in off["train"]["sam/masked_token_share"])  # off masks nothing
        assert generic["curve"]["2"]["step_accuracy"] is None
    assert cells["notes/off/seed0"]["data_order_sha256"] != cells["notes/off/seed1"]["data_order_sha256"]
    saved = json.loads((out / "learning.json").read_text())
    assert saved["cells"] == {"done": 6, "planned": 6, "missing": []}
    assert set(saved["summary"]["notes"]["paired_vs_off"]) == {"generic", "hard"}
    assert saved["summary"]["notes"]["paired_vs_off"]["hard"]["label_accuracy"]["n"] == 2
    by_step = saved["summary"]["notes"]["curves"]["hard"]["2"]["step_accuracy_by_step"]
    assert set(by_step) == {"provisional", "calibrated"} and by_step["provisional"][2] == 2
    assert (out / "learning.png").stat().st_size > 1000
    assert "warm-up notes/criteria" in capsys.readouterr().out
    # A rerun trains nothing: every cell is done.
    bench.main(args)
    assert len(bench.read_cells(out)) == 6
    # Cells of other settings are refused, not mixed in.
    with pytest.raises(SystemExit, match="other settings"):
        bench.main([*MINI, "--steps", "3", "--out", str(out), "--work", str(work)])
    assert result["cells"]["done"] == 6


def test_children_split_groups_by_missing_cells(bench):
    costs = {("a", 0): 7, ("a", 1): 3, ("b", 0): 7, ("b", 1): 3, ("b", 2): 4}
    shards = bench.shard(list(costs), costs, 2)
    assert sorted(sum(costs[g] for g in s) for s in shards) == [11, 13]  # longest first, each onto the lighter job
    assert sorted(g for s in shards for g in s) == sorted(costs)
    assert bench.shard(list(costs), costs, 9) and len(bench.shard(list(costs), costs, 9)) == 5
    assert bench._without_jobs(["--jobs", "2", "--seeds", "0", "--jobs=3"]) == ["--seeds", "0"]


@pytest.mark.slow
def test_both_worlds_every_arm_two_jobs(bench, tmp_path):
    out = tmp_path / "out"
    result = bench.main(["--seeds", "0", "--variant-seeds", "0", "--steps", "2", "--eval-every", "2",
                         "--queries", "12", "--eval-pairs", "6", "--hidden", "32", "--layers", "1", "--vocab", "400",
                         "--warmup-steps", "3", "--prompts", "2", "--generations", "2", "--jobs", "2",
                         "--out", str(out), "--work", str(tmp_path / "work")])
    assert result["cells"]["done"] == 2 * len(bench.ARMS) and not result["cells"]["missing"]
    assert set(result["summary"]) == {"catalogue", "notes"}
