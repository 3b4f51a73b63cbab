"""Scripted rollouts: replay fixed completions instead of sampling, for tests and the SAM benchmark.

A random tiny model writes text that never parses, so SAM would have nothing to mask. A scripted
trainer keeps every other part of TRL's pipeline (rewards, advantages, SAM, loss, optimizer) and only
swaps the token ids that generation returns: completion ``j`` of each prompt's group is
``texts[j % len(texts)]`` followed by end-of-sequence. Not for real training.
"""

from __future__ import annotations

from genrel.criteria import Criteria
from genrel.grammar import render


def scripted(trainer_class: type, texts: list[str]) -> type:
    """A subclass of ``trainer_class`` (a TRL ``GRPOTrainer``) whose rollouts are ``texts``."""

    class Scripted(trainer_class):
        scripted_texts = list(texts)

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs):
            tok = self.processing_class
            ids = [tok.encode(t, add_special_tokens=False) + [tok.eos_token_id] for t in self.scripted_texts]
            return [ids[i % num_generations % len(ids)] for i in range(len(prompt_ids))], None

    Scripted.__name__ = Scripted.__qualname__ = f"Scripted{trainer_class.__name__}"
    return Scripted


def mixed_completions(criteria: Criteria, gold_label: str) -> list[str]:
    """Four completions for one gold label: right label and steps; right label with its last checked
    step wrong (masked when A > 0); wrong label and steps with some right (masked when A < 0); and
    text that does not parse (never masked)."""
    checked = criteria.checked_steps
    texts = {s.id: f"Looking at {s.id}." for s in criteria.steps}

    def verdicts_for(label: str) -> dict[str, str]:
        return {s.id: next(iter(sorted(s.expected(label) or {s.verdicts[0]}))) for s in checked}

    right = verdicts_for(gold_label)
    one_wrong = dict(right)
    if checked:
        last = checked[-1]
        one_wrong[last.id] = next(v for v in last.verdicts if v != right[last.id])
    wrong_label = next(label for label in criteria.label_names if label != gold_label)
    return [
        render(criteria, texts, right, gold_label),
        render(criteria, texts, one_wrong, gold_label),
        render(criteria, texts, verdicts_for(wrong_label), wrong_label),
        "I think it is fine.",
    ]
