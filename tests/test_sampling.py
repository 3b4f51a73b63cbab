"""data.sample: label mixes drawn with a seed, and the record of what was drawn."""

from __future__ import annotations

import pytest

from genrel.config import validate_model
from genrel.criteria import load_criteria
from genrel.errors import ConfigError, DataError
from genrel.train.sampling import SampleSettings, sample_indices

CRITERIA = load_criteria("trec-dl")
# 10 irrelevant, 5 related, 3 highly, 2 perfect
LABELS = ["irrelevant"] * 10 + ["related"] * 5 + ["highly"] * 3 + ["perfect"] * 2


def settings(value) -> SampleSettings:
    return validate_model(SampleSettings, value, "sample")


def test_as_is_keeps_every_pair_in_order():
    indices, record = sample_indices(LABELS, CRITERIA, settings("as_is"), seed=0)
    assert indices == list(range(len(LABELS)))
    assert record["trained"] == {"irrelevant": 10, "related": 5, "highly": 3, "perfect": 2}
    subset, record = sample_indices(LABELS, CRITERIA, settings({"size": 6}), seed=0)
    assert len(subset) == 6 == record["n"] and subset == sorted(set(subset))


def test_label_uniform_draws_the_rarest_label_count_of_each_without_repeats():
    indices, record = sample_indices(LABELS, CRITERIA, settings("label_uniform"), seed=3)
    assert record["trained"] == {"irrelevant": 2, "related": 2, "highly": 2, "perfect": 2}
    assert record["candidates"] == {"irrelevant": 10, "related": 5, "highly": 3, "perfect": 2}
    assert len(set(indices)) == 8 and record["mode"] == "label_uniform" and record["seed"] == 3
    again, _ = sample_indices(LABELS, CRITERIA, settings("label_uniform"), seed=3)
    other, _ = sample_indices(LABELS, CRITERIA, settings("label_uniform"), seed=4)
    assert again == indices and other != indices  # seeded


def test_label_uniform_with_a_size_splits_it_evenly_and_refuses_or_repeats_short_labels():
    _, record = sample_indices(LABELS, CRITERIA, settings({"mode": "label_uniform", "size": 6}), seed=0)
    assert sorted(record["trained"].values()) == [1, 1, 2, 2] and record["n"] == 6
    with pytest.raises(DataError, match=r"highly needs 5, has 3.*perfect needs 5, has 2"):
        sample_indices(LABELS, CRITERIA, settings({"mode": "label_uniform", "size": 20}), seed=0)
    indices, record = sample_indices(
        LABELS, CRITERIA, settings({"mode": "label_uniform", "size": 20, "replace": True}), seed=0)
    assert record["trained"] == {"irrelevant": 5, "related": 5, "highly": 5, "perfect": 5}
    assert len(set(indices)) < 20


def test_label_weights_follow_the_given_proportions():
    value = {"label_weights": {"irrelevant": 2, "perfect": 1}}
    indices, record = sample_indices(LABELS, CRITERIA, settings(value), seed=0)
    assert record["trained"] == {"irrelevant": 4, "related": 0, "highly": 0, "perfect": 2}
    assert {LABELS[i] for i in indices} == {"irrelevant", "perfect"}


def test_bad_sample_settings_are_precise_errors():
    with pytest.raises(ConfigError, match=r"sample: .*Input should be 'as_is', 'label_uniform' or 'label_weights'"):
        settings("uniform")
    with pytest.raises(ConfigError, match=r"label_weights': only for mode label_weights"):
        settings({"mode": "label_uniform", "label_weights": {"perfect": 1}})
    with pytest.raises(ConfigError, match=r"sample.label_weights: label\(s\) great not in criteria 'trec-dl'"):
        sample_indices(LABELS, CRITERIA, settings({"label_weights": {"great": 1}}), seed=0)
    with pytest.raises(DataError, match=r"2 pair\(s\) have no gold label"):
        sample_indices(["perfect", None, None], CRITERIA, settings("label_uniform"), seed=0)
