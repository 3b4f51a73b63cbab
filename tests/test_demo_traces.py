"""Grounded traces of the catalogue world: accepted by the teacher's check, grounded in the drawn facts,
read back by SFT as the same pairs the world's data file holds."""

from __future__ import annotations

import pytest

from genrel.criteria import load_criteria
from genrel.data import load_pairs, pair_record
from genrel.demo.traces import grounded_completion, write_grounded_traces
from genrel.demo.world import WorldConfig, judge, query_products, write_world
from genrel.grammar import parse
from genrel.train.sft import pair_from_trace
from genrel.train.teacher import accepted_traces, read_traces

ESCI = load_criteria("esci")
WORLD = WorldConfig(seed=4, queries=40)


def _steps(completion: str) -> dict[str, str]:
    return {step.id: step.text for step in parse(completion, ESCI).steps}


@pytest.fixture(scope="module")
def traces_path(tmp_path_factory):
    return write_grounded_traces(WORLD, ESCI, tmp_path_factory.mktemp("traces") / "traces.jsonl")


def test_every_trace_parses_and_is_accepted(traces_path):
    traces = read_traces(traces_path)
    assert len(traces) == WORLD.queries * WORLD.candidates_per_query
    assert {t["gold_label"] for t in traces} == set(ESCI.label_names)
    for trace in traces:
        assert trace["error"] is None, trace["completion"]
        assert trace["accepted"], trace
        assert trace["sample"] == 0 and trace["model"] == "world"
        assert len(trace["completion"]) <= 400


def test_sft_reads_back_the_pairs_of_the_world_file(traces_path, tmp_path):
    pairs = load_pairs(write_world(WORLD, tmp_path / "train.jsonl"), ESCI).pairs
    accepted = accepted_traces(traces_path)
    assert [t["row_id"] for t in accepted] == [p.row_id for p in pairs]
    for trace, pair in zip(accepted, pairs):
        assert pair_from_trace(trace).row_id == pair.row_id
        assert pair_record(pair_from_trace(trace)) == pair_record(pair)


def test_need_names_the_canonical_type_whatever_the_query_wrote():
    noisy = WorldConfig(seed=6, queries=40, synonym_rate=1.0, typo_rate=0.5)
    synonyms = 0
    for query, product in query_products(noisy):
        need = _steps(grounded_completion(query, product, ESCI))["need"]
        assert query.type.name in need
        assert all(value in need for value in query.specs.values())
        synonyms += query.type.name not in query.text
    assert synonyms > 0


def test_type_and_complement_steps_name_both_sides():
    for query, product in query_products(WORLD):
        steps = _steps(grounded_completion(query, product, ESCI))
        assert product.type.name in steps["type"] and query.type.name in steps["type"]
        if product.type is not query.type:
            complement = steps["complement"].lower()
            assert product.type.name in complement and query.type.name in complement


def test_specs_step_names_each_unmet_spec_of_a_substitute():
    substitutes = 0
    for query, product in query_products(WORLD):
        label, _ = judge(query, product)
        if label != "substitute":
            continue
        substitutes += 1
        specs = _steps(grounded_completion(query, product, ESCI))["specs"]
        unmet = {k: v for k, v in query.specs.items() if product.fields[k] != v}
        assert unmet
        for key, wanted in unmet.items():
            assert key in specs.lower() and wanted in specs and product.fields[key] in specs, specs
    assert substitutes > 0


def test_traces_are_deterministic(tmp_path):
    a = write_grounded_traces(WORLD, ESCI, tmp_path / "a.jsonl").read_bytes()
    b = write_grounded_traces(WORLD, ESCI, tmp_path / "b.jsonl").read_bytes()
    c = write_grounded_traces(WORLD.model_copy(update={"seed": 5}), ESCI, tmp_path / "c.jsonl").read_bytes()
    assert a == b != c
