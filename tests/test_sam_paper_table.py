"""SAM with provisional steps reproduces the eight-case table of the paper authors' training code.

Segments: the provisional grade (P), the rule-recalibrated grade (R) and the final label, which is never
masked. Statuses come from :func:`genrel.verify.step_status` on the ``notes`` preset, where a wrong
provisional grade corrected by a right calibrated grade is unverifiable (docs/design.md, "Verification and the provisional rule").
"""

from __future__ import annotations

import pytest
import torch

from genrel.criteria import load_criteria
from genrel.grammar import parse, render
from genrel.sam.alignment import token_step_index
from genrel.sam.masking import masked_tokens, sam_advantages
from genrel.verify import step_status

GOLD, WRONG = "partial", "low"

# (label right, P right, R right) -> segments masked
TABLE = {
    (True, True, True): set(),
    (True, False, True): set(),
    (True, True, False): {"calibrated"},
    (True, False, False): {"provisional", "calibrated"},
    (False, True, True): {"provisional", "calibrated"},
    (False, False, True): {"calibrated"},
    (False, True, False): {"provisional"},
    (False, False, False): set(),
}

TEXTS = {
    "needs": "The searcher wants a weekend trip plan for Shanghai 上海周末 😀",
    "coverage": "The note lists three cafés and a museum, 笔记主要讲咖啡馆",
    "category": "Travel, as the query.",
    "keywords": "Hits 上海 and 周末; misses nothing core 🎉",
    "provisional": "From the analysis alone the main need is partly met.",
    "calibrated": "No business rule lowers it further.",
}


@pytest.fixture(scope="module")
def notes():
    return load_criteria("notes")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator([" ".join(TEXTS.values()), '<step id="x"> Verdict: </step> <label></label>'] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>")


def _case(label_right: bool, p_right: bool, r_right: bool) -> tuple[dict[str, str], str]:
    verdicts = {"provisional": GOLD if p_right else WRONG, "calibrated": GOLD if r_right else WRONG}
    return verdicts, GOLD if label_right else WRONG


def _masked_steps(criteria, statuses: list[int], advantage: float) -> set[str]:
    # One token per step plus one for the label (outside every step, -1).
    K = len(criteria.steps)
    token_step = torch.tensor([list(range(K)) + [-1]])
    masked = masked_tokens(torch.tensor([advantage]), token_step, torch.tensor([statuses]), "hard")[0]
    assert not masked[-1], "the label is never masked"
    return {criteria.steps[k].id for k in range(K) if masked[k]}


@pytest.mark.parametrize("case", list(TABLE))
def test_eight_case_table(notes, case):
    label_right, p_right, r_right = case
    verdicts, _ = _case(*case)
    statuses = step_status(notes, verdicts, GOLD)
    advantage = 1.0 if label_right else -1.0  # reward 1 for the right grade, 0 otherwise
    assert _masked_steps(notes, statuses, advantage) == TABLE[case]


def test_provisional_status_follows_the_contract(notes):
    P, R = notes.step_index("provisional"), notes.step_index("calibrated")
    assert notes.steps[P].provisional and P < R
    status = step_status(notes, {"provisional": WRONG, "calibrated": GOLD}, GOLD)
    assert (status[P], status[R]) == (-1, 1)
    status = step_status(notes, {"provisional": WRONG, "calibrated": WRONG}, GOLD)
    assert (status[P], status[R]) == (0, 0)
    assert all(status[k] == -1 for k, step in enumerate(notes.steps) if not step.checked)


def test_table_end_to_end_on_tokens(notes, tokenizer):
    """render → tokenize → parse spans → token_step_index → verify → sam_advantages, for all eight cases."""
    cases = list(TABLE)
    texts = [render(notes, TEXTS, *_case(*case)) for case in cases]
    rows = [tokenizer.encode(t, add_special_tokens=False) + [tokenizer.eos_token_id] for t in texts]
    T = max(map(len, rows))
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (T - len(r)) for r in rows])
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    parsed = [parse(t, notes) for t in decoded]
    spans = [[None] * len(notes.steps) for _ in parsed]
    for b, p in enumerate(parsed):
        for step in p.steps:
            spans[b][step.index] = step.span
    token_step = token_step_index(ids, spans, tokenizer)
    statuses = torch.tensor([step_status(notes, p.verdicts, GOLD) for p in parsed])
    advantages = torch.tensor([1.0 if case[0] else -1.0 for case in cases])
    out = sam_advantages(advantages, token_step, statuses, "hard")
    for b, case in enumerate(cases):
        for k, step in enumerate(notes.steps):
            values = out[b][token_step[b] == k]
            assert len(values) > 0
            expected = 0.0 if step.id in TABLE[case] else advantages[b].item()
            assert values.eq(expected).all(), (case, step.id)
        outside = out[b][token_step[b] == -1]  # glue, the label, EOS and padding keep A
        assert outside.eq(advantages[b]).all()
        start, end = parsed[b].label_span
        label_text = decoded[b][start:end]
        assert label_text in ("<label>partial</label>", "<label>low</label>")
