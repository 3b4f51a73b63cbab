"""LMScorer: the label distribution read at the label position equals a brute-force computation from
the model's logits (multi-token names, names sharing a prefix), in both forms, batched or not; a
malformed generation still gets probabilities and a format error."""

from __future__ import annotations

import math

import pytest
import torch

from genrel.criteria import Criteria, load_criteria
from genrel.data import Pair
from genrel.grammar import LABEL_CLOSE, LABEL_OPEN
from genrel.score.base import expected_gain
from genrel.score.lm import LMScorer, label_candidates

TREC = load_criteria("trec-dl")
# "rel" is a prefix of "relevant" and "relevantly": only the closing tag tells them apart.
PREFIXES = Criteria.model_validate({
    "name": "prefixes",
    "labels": [
        {"id": 0, "name": "rel", "gain": 0},
        {"id": 1, "name": "relevant", "gain": 1},
        {"id": 2, "name": "relevantly", "gain": 2},
    ],
    "steps": [{"id": "topic", "ask": "On topic?", "verdicts": ["yes", "no"],
               "expect": {"rel": "no", "relevant": "yes", "relevantly": "yes"}}],
})
PAIRS = [
    Pair(row_id="0", query="flea life cycle", text="Fleas live 20 days to a year."),
    Pair(row_id="1", query="red running shoes size 42", text="Acme trail shoe, red, size 42. " * 6, title="Acme"),
    Pair(row_id="2", query="搜索词", text="笔记覆盖了哪些需求？🙂"),
]
GOOD_REASONING = (
    '<step id="need">When do fleas die?</step>\n'
    '<step id="topic">About flea life cycles. Verdict: yes</step>\n'
    '<step id="answer">It gives 20 days to a year. Verdict: yes</step>\n'
    '<step id="exact">It also covers ticks. Verdict: no</step>\n'
)


@pytest.fixture(scope="module", params=["llama", "qwen3"])
def model(request, tiny_tokenizer):
    from genrel.models.tiny import tiny_causal_lm

    return tiny_causal_lm(tiny_tokenizer, arch=request.param).eval()


def brute_force(model, tokenizer, context: str, criteria: Criteria, temperature: float = 1.0) -> dict[str, float]:
    """p(name) ∝ exp(sum log p(tokens of name</label>) / T), one full unpadded forward pass per label."""
    n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    scores = []
    for name in criteria.label_names:
        ids = tokenizer(context + name + LABEL_CLOSE, add_special_tokens=False)["input_ids"]
        assert len(ids) > n_context + 1
        with torch.no_grad():
            log_probs = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)  # [T, V]
        scores.append(sum(log_probs[k - 1, ids[k]].item() for k in range(n_context, len(ids))))
    probs = torch.tensor(scores, dtype=torch.float64).div(temperature).softmax(0).tolist()
    return dict(zip(criteria.label_names, probs))


def close(a: dict[str, float], b: dict[str, float], tol: float = 1e-5) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < tol for k in a)


@pytest.mark.parametrize("criteria", [TREC, PREFIXES], ids=["trec-dl", "shared-prefixes"])
def test_label_first_distribution_equals_brute_force(model, tiny_tokenizer, criteria):
    scorer = LMScorer(model, tiny_tokenizer, criteria, form="label-first", batch_size=2, progress=False)
    for pair, scored in zip(PAIRS, scorer.score_pairs(PAIRS)):
        assert math.isclose(sum(scored.probabilities.values()), 1.0, abs_tol=1e-9)
        assert set(scored.probabilities) == set(criteria.label_names)
        expected = brute_force(model, tiny_tokenizer, scorer.prompt_text(pair) + LABEL_OPEN, criteria)
        assert close(scored.probabilities, expected), (scored.probabilities, expected)
        assert scored.label == max(expected, key=expected.get)
        assert scored.score == pytest.approx(expected_gain(criteria, scored.probabilities))
        assert scored.format_error is None and scored.reasoning is None


def test_candidates_are_multi_token_and_share_prefixes(tiny_tokenizer):
    _, candidates = label_candidates(tiny_tokenizer, ["x<label>"], PREFIXES.label_names)
    rel, relevant, relevantly = candidates[0]
    close_tag = tiny_tokenizer(LABEL_CLOSE, add_special_tokens=False)["input_ids"]
    assert all(c[-len(close_tag) :] == close_tag for c in candidates[0])
    # The names are token prefixes of each other: only the closing tag makes the candidates differ.
    assert relevant[:-len(close_tag)][: len(rel) - len(close_tag)] == rel[: -len(close_tag)]
    assert relevantly[: len(relevant) - len(close_tag)] == relevant[: -len(close_tag)]
    assert len(relevant) - len(close_tag) >= 2  # a multi-token name


def test_batching_with_left_padding_changes_nothing(model, tiny_tokenizer):
    one = LMScorer(model, tiny_tokenizer, TREC, form="label-first", batch_size=1, progress=False).score_pairs(PAIRS)
    three = LMScorer(model, tiny_tokenizer, TREC, form="label-first", batch_size=3, progress=False).score_pairs(PAIRS)
    for a, b in zip(one, three):
        assert close(a.probabilities, b.probabilities)


def test_temperature_divides_log_scores(model, tiny_tokenizer):
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="label-first", temperature=3.0, progress=False)
    scored = scorer.score_pairs(PAIRS[:1])[0]
    expected = brute_force(model, tiny_tokenizer, scorer.prompt_text(PAIRS[0]) + LABEL_OPEN, TREC, temperature=3.0)
    assert close(scored.probabilities, expected)


def test_reasoning_reads_the_label_where_the_model_wrote_it(model, tiny_tokenizer):
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="reasoning", progress=False)
    # Script the generation: well-formed steps, <label>, then text a stop string would have cut.
    scorer._generate = lambda texts, stop_at_label, max_new_tokens: [(GOOD_REASONING + "<label>perf", 42)] * len(texts)
    scored = scorer.score_pairs(PAIRS[:2])
    for pair, s in zip(PAIRS, scored):
        context = scorer.prompt_text(pair) + GOOD_REASONING + LABEL_OPEN
        assert close(s.probabilities, brute_force(model, tiny_tokenizer, context, TREC))
        assert s.format_error is None
        assert s.verdicts == {"topic": "yes", "answer": "yes", "exact": "no"}
        assert s.reasoning == GOOD_REASONING.strip()
        assert s.reasoning_tokens == 42


def test_missing_label_is_read_after_an_appended_tag(model, tiny_tokenizer):
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="reasoning", progress=False)
    scorer._generate = lambda texts, stop_at_label, max_new_tokens: [(GOOD_REASONING + "  ", 9)] * len(texts)
    s = scorer.score_pairs(PAIRS[:1])[0]
    context = scorer.prompt_text(PAIRS[0]) + GOOD_REASONING.rstrip() + "\n" + LABEL_OPEN
    assert close(s.probabilities, brute_force(model, tiny_tokenizer, context, TREC))
    assert s.format_error == "no_label"
    assert s.verdicts == {"topic": "yes", "answer": "yes", "exact": "no"}  # the steps themselves parsed


def test_malformed_generation_still_scores(model, tiny_tokenizer):
    """A random model writes garbage and never <label>: probabilities anyway, and the error kind."""
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="reasoning", max_new_tokens=6, batch_size=3, progress=False)
    for s in scorer.score_pairs(PAIRS):
        assert math.isclose(sum(s.probabilities.values()), 1.0, abs_tol=1e-9)
        assert s.format_error is not None
        assert 0 < s.reasoning_tokens <= 6
        assert s.verdicts == {}


def test_stop_string_ends_generation_at_label(tiny_tokenizer):
    """A model that always writes '<label>' stops there: the stop string works on real generation."""
    from genrel.models.tiny import tiny_causal_lm

    model = tiny_causal_lm(tiny_tokenizer).eval()
    label_ids = tiny_tokenizer(LABEL_OPEN, add_special_tokens=False)["input_ids"]
    assert len(set(label_ids)) == len(label_ids)
    original = model.forward

    def forward(*args, **kwargs):  # emit the tokens of "<label>" in a loop: each one's successor, else the first
        out = original(*args, **kwargs)
        last = kwargs["input_ids"][0, -1].item()
        step = label_ids.index(last) + 1 if last in label_ids else 0
        out.logits[:, -1, :] = -1e9
        out.logits[:, -1, label_ids[step % len(label_ids)]] = 0.0
        return out

    model.forward = forward
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="reasoning", max_new_tokens=20, progress=False)
    [(text, n_tokens)] = scorer._generate([scorer.prompt_text(PAIRS[0])], stop_at_label=True, max_new_tokens=20)
    assert text == LABEL_OPEN and n_tokens == len(label_ids)


def test_label_first_explanation(model, tiny_tokenizer):
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="label-first", max_explain_tokens=5, progress=False)
    plain, explained = scorer.score_pairs(PAIRS[:1])[0], scorer.score_pairs(PAIRS[:1], explain=True)[0]
    assert close(plain.probabilities, explained.probabilities)
    assert isinstance(explained.reasoning, str) and 0 < explained.reasoning_tokens <= 5
    assert explained.format_error is not None  # a random model's explanation does not parse


def test_no_steps_prompt_leaves_out_the_steps(model, tiny_tokenizer):
    steps = LMScorer(model, tiny_tokenizer, TREC, form="label-first", progress=False)
    nosteps = LMScorer(model, tiny_tokenizer, TREC, form="label-first", prompt="no-steps", progress=False)
    assert "Does it answer the query?" in steps.prompt_text(PAIRS[0])
    assert "Does it answer the query?" not in nosteps.prompt_text(PAIRS[0])
    s = nosteps.score_pairs(PAIRS[:1])[0]
    assert close(s.probabilities, brute_force(model, tiny_tokenizer, nosteps.prompt_text(PAIRS[0]) + LABEL_OPEN, TREC))


def test_max_length_cuts_the_document(model, tiny_tokenizer):
    long_pair = Pair(row_id="9", query="q", text="Fleas live 20 days to a year. " * 200)
    n_tokens = lambda text: len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    unlimited = LMScorer(model, tiny_tokenizer, TREC, form="label-first", progress=False)
    overhead = n_tokens(unlimited.prompt_text(long_pair.model_copy(update={"text": ""})))
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="label-first", max_length=overhead + 60, progress=False)
    prompt = scorer.prompt_text(long_pair)
    assert "[…]" in prompt and n_tokens(unlimited.prompt_text(long_pair)) > overhead + 200
    assert overhead + 50 <= n_tokens(prompt) <= overhead + 60 + 8  # the cut marker's tokens


def test_unknown_form_is_rejected(model, tiny_tokenizer):
    with pytest.raises(ValueError, match="form"):
        LMScorer(model, tiny_tokenizer, TREC, form="steps-last")


# -- shared prefix cache ---------------------------------------------------------------------------
# Pairs of different lengths: with batch_size 3 every batch pads, and the last batch is smaller.
PREFIX_PAIRS = PAIRS + [
    Pair(row_id="3", query="cat flea treatment", text="Spot-on drops kill fleas for a month. " * 3),
    Pair(row_id="4", query="q", text="x"),
]


SHARP = 0.2  # peaked outputs: a position off by one moves probabilities by ~1e-2, not ~1e-6


@pytest.fixture(scope="module", params=["llama", "qwen3"])
def model_f32(request, tiny_tokenizer):
    from genrel.models.tiny import tiny_causal_lm

    return tiny_causal_lm(tiny_tokenizer, arch=request.param, init_std=SHARP).to(torch.float32).eval()


class FedTokens:
    """Counts the token positions the model is run on (every forward pass, generation steps included)."""

    def __init__(self, model):
        self.n = 0
        self._hook = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        self.n += (kwargs.get("input_ids") if "input_ids" in kwargs else args[0]).numel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._hook.remove()


def scored_both_ways(model, tokenizer, pairs, **options):
    """(with the prefix cache, without it, tokens fed with, tokens fed without, the cached scorer)."""
    runs = []
    for prefix_cache in (True, False):
        scorer = LMScorer(model, tokenizer, TREC, batch_size=3, progress=False, prefix_cache=prefix_cache, **options)
        with FedTokens(model) as fed:
            runs.append((scorer.score_pairs(pairs), fed.n, scorer))
    (cached, fed_cached, scorer), (plain, fed_plain, _) = runs
    return cached, plain, fed_cached, fed_plain, scorer


def test_prefix_cache_label_first_equals_the_plain_path(model_f32, tiny_tokenizer):
    cached, plain, fed_cached, fed_plain, scorer = scored_both_ways(
        model_f32, tiny_tokenizer, PREFIX_PAIRS, form="label-first")
    for a, b in zip(cached, plain):
        assert close(a.probabilities, b.probabilities, tol=1e-4)
    prefix = scorer.prefix_tokens
    assert prefix >= 100 and scorer._prefix.passes == 1  # one system prompt, run once for both batches
    assert fed_cached == fed_plain - (len(PREFIX_PAIRS) - 1) * prefix


def test_prefix_cache_reasoning_equals_the_plain_path(model_f32, tiny_tokenizer):
    cached, plain, fed_cached, fed_plain, scorer = scored_both_ways(
        model_f32, tiny_tokenizer, PREFIX_PAIRS, form="reasoning", max_new_tokens=12)
    assert all(a.reasoning for a in cached)  # the model wrote something to compare
    for a, b in zip(cached, plain):
        assert a.reasoning == b.reasoning and a.reasoning_tokens == b.reasoning_tokens
        assert a.format_error == b.format_error
        assert close(a.probabilities, b.probabilities, tol=1e-4)
    assert scorer._prefix.passes == 1
    # generation and the label pass each skip the prefix in every row but the one that computed it
    assert fed_plain - fed_cached == (2 * len(PREFIX_PAIRS) - 1) * scorer.prefix_tokens


def test_prompts_without_a_shared_prefix_run_whole(model_f32, tiny_tokenizer):
    prompts = ["Fleas live 20 days.", "搜索词的主需求是什么？", "Query: red running shoes size 42."]
    scorer = LMScorer(model_f32, tiny_tokenizer, TREC, form="label-first", progress=False)
    plain = LMScorer(model_f32, tiny_tokenizer, TREC, form="label-first", progress=False, prefix_cache=False)
    for a, b in zip(scorer.score_prompts(prompts), plain.score_prompts(prompts)):
        assert close(a.probabilities, b.probabilities, tol=1e-4)
    assert scorer.prefix_tokens == 0 and scorer._prefix.passes == 0


def test_prefix_cache_is_kept_across_calls_and_recomputed_when_the_prefix_changes(model_f32, tiny_tokenizer):
    scorer = LMScorer(model_f32, tiny_tokenizer, TREC, form="label-first", batch_size=3, progress=False)
    plain = LMScorer(model_f32, tiny_tokenizer, TREC, form="label-first", batch_size=3, progress=False,
                     prefix_cache=False)
    scorer.score_pairs(PREFIX_PAIRS)
    first = scorer._prefix.ids
    scorer.score_pairs(PREFIX_PAIRS[::-1])
    assert scorer._prefix.passes == 1 and scorer._prefix.ids == first  # a service's second call
    # Other criteria in the prompt: another system message, another prefix.
    other = [LMScorer(model_f32, tiny_tokenizer, PREFIXES, progress=False).prompt_text(p) for p in PREFIX_PAIRS]
    for a, b in zip(scorer.score_prompts(other), plain.score_prompts(other)):
        assert close(a.probabilities, b.probabilities, tol=1e-4)
    assert scorer._prefix.passes == 2 and scorer._prefix.ids != first


def test_one_pair_per_call_finds_the_shared_prefix(model_f32, tiny_tokenizer):
    """A service scoring one pair per call: the first call caches its whole prompt, the second narrows
    it to what both share, the third reuses that."""
    scorer = LMScorer(model_f32, tiny_tokenizer, TREC, form="label-first", progress=False)
    plain = LMScorer(model_f32, tiny_tokenizer, TREC, form="label-first", progress=False, prefix_cache=False)
    for pair in PAIRS:
        [a], [b] = scorer.score_pairs([pair]), plain.score_pairs([pair])
        assert close(a.probabilities, b.probabilities, tol=1e-4)
    assert scorer._prefix.passes == 2
    assert 100 <= scorer.prefix_tokens < len(tiny_tokenizer(scorer.prompt_text(PAIRS[0]))["input_ids"]) - 5


def test_changed_weights_recompute_the_prefix(tiny_tokenizer):
    from genrel.models.tiny import tiny_causal_lm

    model = tiny_causal_lm(tiny_tokenizer, init_std=SHARP).to(torch.float32).eval()
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="label-first", progress=False)
    scorer.score_pairs(PAIRS)
    with torch.no_grad():
        model.model.layers[0].self_attn.k_proj.weight.mul_(1.5)  # an optimizer step would do the same
    plain = LMScorer(model, tiny_tokenizer, TREC, form="label-first", progress=False, prefix_cache=False)
    for a, b in zip(scorer.score_pairs(PAIRS), plain.score_pairs(PAIRS)):
        assert close(a.probabilities, b.probabilities, tol=1e-4)
    assert scorer._prefix.passes == 2


def test_sliding_window_model_falls_back_to_the_plain_path(tiny_tokenizer):
    from genrel.models.tiny import tiny_causal_lm

    model = tiny_causal_lm(tiny_tokenizer, arch="qwen3", sliding_window=4096, init_std=SHARP).to(torch.float32).eval()
    scorer = LMScorer(model, tiny_tokenizer, TREC, form="reasoning", max_new_tokens=4, batch_size=3, progress=False)
    plain = LMScorer(model, tiny_tokenizer, TREC, form="reasoning", max_new_tokens=4, batch_size=3, progress=False,
                     prefix_cache=False)
    for a, b in zip(scorer.score_pairs(PAIRS), plain.score_pairs(PAIRS)):
        assert a.reasoning == b.reasoning and close(a.probabilities, b.probabilities, tol=1e-4)
    assert scorer._prefix.usable is False and scorer._prefix.passes == 1  # tried once, never again


def test_shared_prefix_length_leaves_a_token_and_ignores_short_prefixes():
    from genrel.score.prefix_cache import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5]], min_tokens=2) == 3
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]], min_tokens=2) == 2  # [1, 2, 3] keeps one token
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5]], min_tokens=4) == 0
    assert shared_prefix_length([[7, 2, 3], [1, 2, 3]], min_tokens=0) == 0
