"""BM25 baseline: ranks the matching document first within each query; monotone probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from genrel.criteria import load_criteria
from genrel.data import Pair
from genrel.score.bm25 import BM25Scorer, tokenize
from genrel.score.calibration import nll

TREC = load_criteria("trec-dl")
DOCS = [
    "Red running shoes for trail and road, size 42.",
    "A garden hose, fifty feet, green.",
    "Running is good for your health.",
    "Cordless drill with two batteries.",
]


def pairs_for(query: str, qid: str) -> list[Pair]:
    return [Pair(row_id=f"{qid}-{i}", qid=qid, query=query, text=t) for i, t in enumerate(DOCS)]


def test_bm25_ranks_the_matching_document_first_per_query():
    pairs = pairs_for("red running shoes", "a") + pairs_for("garden hose", "b")
    scored = BM25Scorer(TREC).score_pairs(pairs)
    assert max(range(4), key=lambda i: scored[i].score) == 0
    assert max(range(4, 8), key=lambda i: scored[i].score) == 5
    for s in scored:
        assert sum(s.probabilities.values()) == pytest.approx(1.0)
    # The expected gain follows BM25 within a query (the mapping is monotone).
    first = scored[:4]
    by_bm25 = sorted(first, key=lambda s: s.score)
    gains = [sum(g * s.probabilities[n] for n, g in zip(TREC.label_names, TREC.gains)) for s in by_bm25]
    assert gains == sorted(gains)
    assert first[0].label == "perfect" and first[1].label == "irrelevant"


def test_documents_without_a_query_term_score_zero():
    scored = BM25Scorer(TREC).score_pairs(pairs_for("umbrella", "c"))
    assert all(s.score == 0.0 and s.label == "irrelevant" for s in scored)


def test_fit_lowers_the_nll_and_keeps_the_slope_non_negative():
    rng = np.random.default_rng(0)
    pairs = []
    for q in range(30):
        for i, text in enumerate(DOCS):
            label = "highly" if i == 0 else rng.choice(["irrelevant", "related"])
            pairs.append(Pair(row_id=f"{q}-{i}", qid=str(q), query="red running shoes", text=text, label=label))
    scorer = BM25Scorer(TREC)
    gold = [TREC.label_index(p.label) for p in pairs]

    def current_nll():
        scored = scorer.score_pairs(pairs)
        return nll(np.log([[s.probabilities[n] + 1e-12 for n in TREC.label_names] for s in scored]), gold)

    before = current_nll()
    scorer.fit(pairs)
    assert scorer.slope >= 0 and current_nll() < before


def test_tokenize_cuts_cjk_runs_into_characters_bigrams_or_words():
    assert tokenize("Red-Shoes 42 搜索词", "char") == ["red", "shoes", "42", "搜", "索", "词"]
    assert tokenize("Red-Shoes 42 搜索词") == tokenize("Red-Shoes 42 搜索词", "char")
    assert tokenize("Red-Shoes 42 搜索词 的", "bigram") == ["red", "shoes", "42", "搜索", "索词", "的"]
    assert "搜索" in tokenize("搜索词", "jieba")
    with pytest.raises(ValueError, match="cjk"):
        tokenize("搜索词", "nope")
