"""Stepwise Advantage Masking (SAM): per-token GRPO advantages from per-step verdict statuses.

GRPO gives every token of completion b the same advantage A_b. SAM zeroes (or scales) it on the tokens of
steps that disagree with the sign of A_b: in a completion with A_b > 0 the steps whose verdict is wrong,
in one with A_b < 0 the steps whose verdict is right. Everything else keeps A_b: unverifiable steps,
glue, the label, end-of-sequence, padding, and every token of an unparseable completion.

Letters used in shape comments:

- ``B``: completions in the batch (prompts × samples per prompt).
- ``T``: completion tokens per row, padded (TRL's ``completion_ids`` width).
- ``K``: steps per completion (the criteria's steps, in completion order; ``token_step`` indexes them).
- ``N``: valid (unpadded) tokens of one completion, inside :func:`~genrel.sam.alignment.token_step_index`.

What differs from the paper (arXiv 2512.00968) and the authors' training code:

- The authors mask fixed segments (provisional grade, rule-recalibrated grade, final grade) found in
  the text; here any criteria step with a verifier status can be masked, and the provisional rule lives
  in :func:`genrel.verify.step_status` (a wrong provisional step corrected by a later right step is
  unverifiable), so ``hard`` with provisional steps reproduces their table.
- The authors drop masked tokens from each sequence's policy-gradient mean; inside TRL we zero their
  advantage instead and, optionally, rescale the kept tokens with :func:`~genrel.sam.masking.renormalize_kept`, which gives
  the same loss for the ``grpo`` loss type.
- ``soft`` (masked tokens scaled by α) and ``first_error`` (a negative completion is spared only before
  its first wrong step) are our variants.

The package is split by job: :mod:`genrel.sam.masking` is the masking maths (pure torch),
:mod:`genrel.sam.alignment` maps the steps' character spans to completion tokens. This module holds
what configs need without importing torch: the modes and the loss types SAM supports. The rule itself,
with the paper's masking table, is in docs/design.md ("SAM").
"""

from __future__ import annotations

from typing import Literal, get_args

SamMode = Literal["off", "hard", "soft", "first_error"]
MODES: tuple[str, ...] = get_args(SamMode)
# TRL loss types that take [B, T] advantages, and so the ones SAM (and its renormalisation) supports.
RENORMALIZE_LOSS_TYPES = ("grpo", "dapo", "bnpo", "dr_grpo")
