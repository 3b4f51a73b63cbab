"""bench/learning.py: its building blocks in seconds (arguments, world splits, tokenizer, compact prompt,
evaluation of a random model, summary table and plot), and a whole miniature run marked slow."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest

from conftest import REPO
from genrel.criteria import load_criteria
from genrel.grammar import LABEL_OPEN, step_open
from genrel.train.teacher import gold_completion

CRITERIA = load_criteria("esci")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_learning", REPO / "bench" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def world(bench, tmp_path_factory):
    return bench.world_splits(20, seed=0, work=tmp_path_factory.mktemp("world"))


def test_arguments_default_to_every_arm_and_three_evaluation_points(bench):
    args = bench.parse_args(["--steps", "10"])
    assert args.arm_list == ["off", "hard", "soft", "first_error", "hard+step"]
    assert args.eval_steps == [0, 5, 10] and args.seed_list == [0, 1, 2]
    assert bench.ARMS["soft"]["sam"] == {"mode": "soft", "alpha": 0.3}
    assert bench.ARMS["hard+step"]["rewards"] == {"step_weight": 0.5}
    with pytest.raises(SystemExit):
        bench.parse_args(["--arms", "hard,nonsense"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--steps", "4", "--eval-at", "0,8"])


def test_splits_are_query_disjoint(world):
    queries = {name: {p.qid for p in pairs} for name, pairs in world.items()}
    assert queries["train"] and queries["dev"] and queries["test"]
    assert not (queries["train"] & queries["test"]) and not (queries["dev"] & queries["test"])
    assert all(p.verdicts for pairs in world.values() for p in pairs)


def test_tokenizer_keeps_grammar_tags_whole_and_round_trips(bench, world):
    tokenizer = bench.world_tokenizer(CRITERIA, world["train"], 600)
    for tag in (step_open("type"), "</step>", LABEL_OPEN, "</label>"):
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1
    text = gold_completion(CRITERIA, world["test"][0])
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_compact_prompt_holds_query_and_title_only(bench, world):
    pair = world["test"][0]
    (message,) = bench.compact_messages(CRITERIA, pair)
    assert message["role"] == "user"
    assert pair.query in message["content"] and pair.title in message["content"]
    assert pair.text not in message["content"]


def test_evaluate_a_random_model_gives_shares(bench, world):
    from genrel.models.tiny import tiny_causal_lm

    tokenizer = bench.world_tokenizer(CRITERIA, world["train"], 600)
    data = bench.EvalSet.build(CRITERIA, world["test"][:6], tokenizer)
    model = tiny_causal_lm(tokenizer, hidden_size=32, layers=1, seed=0)
    metrics = bench.evaluate(model, tokenizer, CRITERIA, data, max_new_tokens=6)
    assert set(metrics) == {"label_accuracy", "step_accuracy", "format_error_rate"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["format_error_rate"] == 1.0 and metrics["step_accuracy"] == 0.0  # missing verdicts are wrong
    assert model.training  # evaluation restores the mode it found


def test_summary_table_and_plot(bench, tmp_path):
    def point(acc):
        return {"label_accuracy": acc, "step_accuracy": acc / 2, "format_error_rate": 0.0}

    runs = [{"curves": {"off": {"0": point(0.4), "4": point(0.5)}, "hard": {"0": point(0.4), "4": point(0.7)}}},
            {"curves": {"off": {"0": point(0.6), "4": point(0.5)}, "hard": {"0": point(0.6), "4": point(0.9)}}}]
    summary = bench.summarise(runs, ["off", "hard"], [0, 4])
    mean, sd, n = summary["hard"]["4"]["label_accuracy"]
    assert (round(mean, 6), round(sd, 6), n) == (0.8, round(math.sqrt(0.02), 6), 2)
    text = bench.table(summary, [0, 4])
    assert "| hard " in text and "0.800 ± 0.141" in text
    assert bench.plot(summary, [0, 4], tmp_path / "learning.png").stat().st_size > 1000
    delta = bench.paired_deltas(runs, ["off", "hard"], 4)["hard"]["label_accuracy"]
    assert [round(x, 6) for x in delta] == [0.3, round(math.sqrt(0.02), 6), 2]  # hard - off per seed: 0.2, 0.4


def test_report_pools_seeds_of_runs_with_equal_settings(bench, tmp_path, capsys):
    def result(seed, steps=4):
        point = {"label_accuracy": 0.5, "step_accuracy": 0.5, "format_error_rate": 0.0}
        return {"command": f"python bench/learning.py --seeds {seed}", "arms": {"off": {}, "hard": {}},
                "settings": {"seeds": str(seed), "steps": steps, "eval_steps": [0, steps]}, "total_seconds": 1.0,
                "runs": [{"seed": seed, "curves": {arm: {"0": point, str(steps): point} for arm in ("off", "hard")}}]}

    merged = bench.report(bench.pooled([result(0), result(1)]), tmp_path)
    assert [r["seed"] for r in merged["runs"]] == [0, 1] and merged["settings"]["seeds"] == "0,1"
    assert merged["summary"]["hard"]["4"]["label_accuracy"] == [0.5, 0.0, 2]
    assert merged["paired_vs_off"]["hard"]["label_accuracy"] == [0.0, 0.0, 2]
    assert "| hard " in capsys.readouterr().out and (tmp_path / "learning.json").is_file()
    with pytest.raises(SystemExit, match="differ in: eval_steps, steps"):
        bench.pooled([result(0), result(1, steps=6)])
    with pytest.raises(SystemExit, match="share a seed"):
        bench.pooled([result(0), result(0)])


@pytest.mark.slow
def test_miniature_run_writes_results(bench, tmp_path):
    out = tmp_path / "results"
    result = bench.main(["--seeds", "0", "--arms", "off,hard", "--steps", "2", "--queries", "20",
                         "--warmup-max-steps", "4", "--warmup-eval-every", "2", "--prompts", "2",
                         "--generations", "2", "--hidden", "32", "--layers", "1", "--vocab", "600",
                         "--out", str(out), "--work", str(tmp_path / "work")])
    saved = json.loads((out / "learning.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    assert set(saved["summary"]) == {"off", "hard"} and set(saved["summary"]["off"]) == {"0", "1", "2"}
    assert (out / "learning.png").stat().st_size > 1000
