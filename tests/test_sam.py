"""sam_advantages, masked_tokens and renormalize_kept on hand-built tensors, and against a literal loop."""

from __future__ import annotations

import random

import pytest
import torch

from genrel.sam import RENORMALIZE_LOSS_TYPES
from genrel.sam.masking import masked_tokens, renormalize_kept, sam_advantages

# One completion layout for every case: glue, step 0, glue, step 1, step 2, label, EOS, padding.
STEPS = [-1, 0, 0, -1, 1, 1, 2, 2, -1, -1, -1]
#        glue s0 s0 glue s1 s1 s2 s2 label EOS pad


def _run(a: float, status: list[int], mode: str, alpha: float = 0.0, steps=STEPS) -> list[float]:
    out = sam_advantages(
        torch.tensor([a]), torch.tensor([steps]), torch.tensor([status]), mode=mode, alpha=alpha
    )
    assert out.shape == (1, len(steps))
    return out[0].tolist()


def _tokens(a: float, per_step: dict[int, float]) -> list[float]:
    """A everywhere, except the tokens of the steps in ``per_step``."""
    return [per_step.get(k, a) if k >= 0 else a for k in STEPS]


@pytest.mark.parametrize("mode", ["hard", "soft", "first_error", "off"])
def test_positive_completion_loses_credit_on_wrong_steps(mode):
    # step 0 right, step 1 wrong, step 2 unverifiable
    masked_value = {"hard": 0.0, "first_error": 0.0, "soft": 0.5, "off": 2.0}[mode]
    assert _run(2.0, [1, 0, -1], mode, alpha=0.25) == _tokens(2.0, {1: masked_value})


@pytest.mark.parametrize("mode", ["hard", "soft", "off"])
def test_negative_completion_spares_right_steps(mode):
    masked_value = {"hard": 0.0, "soft": -0.5, "off": -2.0}[mode]
    assert _run(-2.0, [1, 0, 1], mode, alpha=0.25) == _tokens(-2.0, {0: masked_value, 2: masked_value})


@pytest.mark.parametrize("mode", ["hard", "soft", "first_error", "off"])
def test_zero_advantage_stays_zero(mode):
    assert _run(0.0, [1, 0, 1], mode, alpha=0.5) == [0.0] * len(STEPS)


@pytest.mark.parametrize("mode", ["hard", "soft", "first_error", "off"])
@pytest.mark.parametrize("a", [1.5, -1.5])
def test_unparseable_and_unverifiable_keep_the_advantage(mode, a):
    assert _run(a, [-1, -1, -1], mode, alpha=0.3) == [a] * len(STEPS)


def test_first_error_spares_only_right_steps_before_the_first_wrong_one():
    assert _run(-1.0, [1, 0, 1], "first_error") == _tokens(-1.0, {0: 0.0})
    assert _run(-1.0, [0, 1, 1], "first_error") == _tokens(-1.0, {})
    assert _run(-1.0, [1, -1, 1], "first_error") == _tokens(-1.0, {0: 0.0, 2: 0.0})  # no wrong step
    assert _run(-1.0, [-1, 1, 0], "first_error") == _tokens(-1.0, {1: 0.0})
    # The order is the step index k (completion order), whatever order the tokens come in.
    steps = [2, 2, 1, 0, -1]
    assert _run(-1.0, [1, 0, 1], "first_error", steps=steps) == [-1.0, -1.0, -1.0, 0.0, -1.0]


def test_soft_alpha_bounds_and_extremes():
    assert _run(2.0, [0, 0, 0], "soft", alpha=0.0) == _tokens(2.0, {0: 0.0, 1: 0.0, 2: 0.0})
    assert _run(2.0, [0, 0, 0], "soft", alpha=1.0) == [2.0] * len(STEPS)
    with pytest.raises(ValueError, match="alpha"):
        _run(2.0, [0, 0, 0], "soft", alpha=1.5)
    assert _run(2.0, [0, 0, 0], "hard", alpha=7.0) == _tokens(2.0, {0: 0.0, 1: 0.0, 2: 0.0})  # α unused


def test_batch_with_padding_and_masked_tokens():
    adv = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    token_step = torch.tensor([[0, 1, -1, -1], [-1, 0, 1, -1], [-1, -1, -1, -1]], dtype=torch.int32)
    status = torch.tensor([[0, 1], [1, 0], [-1, -1]])
    out = sam_advantages(adv, token_step, status, "hard")
    assert out.dtype == torch.float64
    assert out.tolist() == [[0.0, 1.0, 1.0, 1.0], [-1.0, 0.0, -1.0, -1.0], [0.5] * 4]
    masked = masked_tokens(adv, token_step, status, "hard")
    assert masked.dtype == torch.bool
    assert masked.tolist() == [[True, False, False, False], [False, True, False, False], [False] * 4]
    assert not masked_tokens(adv, token_step, status, "off").any()


def test_no_steps_at_all():
    out = sam_advantages(torch.tensor([1.0, -2.0]), torch.full((2, 3), -1), torch.empty(2, 0, dtype=torch.long))
    assert out.tolist() == [[1.0] * 3, [-2.0] * 3]


def test_bfloat16_advantages_keep_their_dtype():
    out = sam_advantages(torch.tensor([1.0], dtype=torch.bfloat16), torch.tensor([[0, -1]]), torch.tensor([[0]]))
    assert out.dtype == torch.bfloat16 and out.tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mode="sometimes"), "mode"),
        (dict(advantages=torch.ones(2, 1)), "advantages"),
        (dict(advantages=torch.ones(2, dtype=torch.long)), "advantages"),
        (dict(token_step=torch.zeros(2, 3)), "token_step"),
        (dict(token_step=torch.zeros(3, 3, dtype=torch.long)), "rows"),
        (dict(step_status=torch.zeros(2, dtype=torch.long)), "step_status"),
        (dict(token_step=torch.full((2, 3), 2)), r"\[0, 2\)"),
        (dict(token_step=torch.full((2, 3), -2)), "token_step"),
        (dict(step_status=torch.full((2, 2), 2)), "step_status"),
    ],
)
def test_invalid_inputs_are_value_errors(kwargs, match):
    args = dict(advantages=torch.ones(2), token_step=torch.zeros(2, 3, dtype=torch.long),
                step_status=torch.zeros(2, 2, dtype=torch.long), mode="hard")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sam_advantages(**args)


def _literal(a: list[float], token_step: list[list[int]], status: list[list[int]], mode: str, alpha: float):
    """The rule as written in docs/design.md, one token at a time."""
    out = []
    for b, row in enumerate(token_step):
        first_wrong = next((k for k, s in enumerate(status[b]) if s == 0), len(status[b]))
        out_row = []
        for k in row:
            s = status[b][k] if k >= 0 else -1
            masked = (a[b] > 0 and s == 0) or (a[b] < 0 and s == 1 and (mode != "first_error" or k < first_wrong))
            if mode == "off" or not masked:
                out_row.append(a[b])
            else:
                out_row.append(alpha * a[b] if mode == "soft" else 0.0)
        out.append(out_row)
    return out


@pytest.mark.parametrize("mode", ["off", "hard", "soft", "first_error"])
def test_vectorised_equals_literal_rule(mode):
    rng = random.Random(0)
    B, T, K = 40, 30, 5
    a = [rng.choice([-1.5, -0.25, 0.0, 0.75, 2.0]) for _ in range(B)]
    token_step = [[rng.randint(-1, K - 1) for _ in range(T)] for _ in range(B)]
    status = [[rng.choice([-1, 0, 1]) for _ in range(K)] for _ in range(B)]
    got = sam_advantages(torch.tensor(a), torch.tensor(token_step), torch.tensor(status), mode, alpha=0.3)
    assert torch.allclose(got, torch.tensor(_literal(a, token_step, status, mode, 0.3)))


# -- renormalize_kept ----------------------------------------------------------------------------------

ADV = torch.tensor([[2.0, 0.0, 2.0, 2.0], [-1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 5.0, 5.0]])
KEEP = torch.tensor([[True, False, True, True], [True, True, False, False], [False, False, True, True]])
COMPLETION = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]])


def test_renormalize_grpo_per_completion():
    out = renormalize_kept(ADV, ~torch.tensor([[0, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.bool),
                           COMPLETION, "grpo")
    # row 0: 4 completion tokens, 3 kept -> 4/3; row 1: 3 completion, 2 kept -> 3/2; row 2: none kept -> 1
    assert torch.allclose(out[0], ADV[0] * 4 / 3)
    assert torch.allclose(out[1], ADV[1] * 3 / 2)
    assert torch.equal(out[2], ADV[2])


@pytest.mark.parametrize("loss_type", ["dapo", "bnpo", "dr_grpo"])
def test_renormalize_global_factor(loss_type):
    out = renormalize_kept(ADV, KEEP, COMPLETION, loss_type)
    kept = (KEEP & COMPLETION.bool()).sum().item()  # 3 + 2 + 0 = 5 of 9 completion tokens
    assert kept == 5
    # only kept completion tokens are scaled; masked and padding positions are left as they were
    expected = torch.where(KEEP & COMPLETION.bool(), ADV * 9 / 5, ADV)
    assert torch.allclose(out, expected)
    assert out[2, 2] == ADV[2, 2]


def test_renormalize_nothing_kept_and_nothing_masked():
    assert torch.equal(renormalize_kept(ADV, torch.zeros_like(KEEP), COMPLETION, "dapo"), ADV)
    for loss_type in RENORMALIZE_LOSS_TYPES:
        assert torch.equal(renormalize_kept(ADV, torch.ones_like(KEEP), COMPLETION, loss_type), ADV)


def test_renormalize_rejects_other_loss_types_and_shapes():
    with pytest.raises(ValueError, match="grpo, dapo, bnpo, dr_grpo"):
        renormalize_kept(ADV, KEEP, COMPLETION, "sapo")
    with pytest.raises(ValueError, match="keep_mask"):
        renormalize_kept(ADV, KEEP[:, :2], COMPLETION, "grpo")


def _surrogate(ratio: torch.Tensor, adv: torch.Tensor, low=0.2, high=0.28) -> torch.Tensor:
    """TRL's per-token clipped surrogate loss."""
    return -torch.min(ratio * adv, ratio.clamp(1 - low, 1 + high) * adv)


def test_renormalized_trl_loss_equals_mean_over_kept_tokens():
    """grpo: TRL's per-sequence mean over all completion tokens of the renormalised advantages equals the
    authors' per-sequence mean over kept tokens; bnpo: the same with batch token counts."""
    torch.manual_seed(0)
    B, T = 6, 12
    adv = torch.randn(B)
    token_step = torch.randint(-1, 3, (B, T))
    status = torch.randint(-1, 2, (B, 3))
    completion = torch.ones(B, T)
    completion[:, 9:] = 0
    ratio = torch.exp(0.3 * torch.randn(B, T))
    token_adv = sam_advantages(adv, token_step, status, "hard")
    kept = ~masked_tokens(adv, token_step, status, "hard") & completion.bool()

    loss = _surrogate(ratio, renormalize_kept(token_adv, kept, completion, "grpo"))
    trl_grpo = ((loss * completion).sum(-1) / completion.sum(-1)).mean()
    per_seq = [(_surrogate(ratio[b], token_adv[b])[kept[b]]).mean() if kept[b].any() else torch.tensor(0.0)
               for b in range(B)]
    assert torch.allclose(trl_grpo, torch.stack(per_seq).mean(), atol=1e-6)

    loss = _surrogate(ratio, renormalize_kept(token_adv, kept, completion, "bnpo"))
    trl_bnpo = (loss * completion).sum() / completion.sum()
    assert torch.allclose(trl_bnpo, _surrogate(ratio, token_adv)[kept].mean(), atol=1e-6)


def test_renormalize_soft_leaves_scaled_tokens_alone():
    adv = torch.tensor([1.0])
    token_step = torch.tensor([[0, 0, 1, 1]])
    status = torch.tensor([[0, 1]])  # step 0 wrong in a positive completion: scaled by alpha
    soft = sam_advantages(adv, token_step, status, "soft", alpha=0.5)
    keep = ~masked_tokens(adv, token_step, status, "soft")
    out = renormalize_kept(soft, keep, torch.ones(1, 4), "grpo")
    assert torch.allclose(out, torch.tensor([[0.5, 0.5, 2.0, 2.0]]))  # 4 tokens / 2 kept = 2


def test_clip_advantages_clamps_symmetrically_and_none_leaves_them():
    from genrel.sam.masking import clip_advantages

    adv = torch.tensor([-4.5, -3.0, -0.2, 0.0, 2.9, 3.7])  # [B]
    assert torch.equal(clip_advantages(adv, 3.0), torch.tensor([-3.0, -3.0, -0.2, 0.0, 2.9, 3.0]))
    token = adv[:, None].expand(6, 4)  # [B, T]
    assert torch.equal(clip_advantages(token, 1.0), token.clamp(-1, 1))
    assert clip_advantages(adv, None) is adv
    with pytest.raises(ValueError, match="bound must be > 0"):
        clip_advantages(adv, 0.0)
    # The docstring's bound: one success among G binary rewards, TRL's normalisation (unbiased std).
    for G, binds in ((8, False), (10, False), (11, True)):
        rewards = torch.zeros(G)
        rewards[0] = 1
        top = ((rewards - rewards.mean()) / rewards.std()).max().item()
        assert top == pytest.approx((G - 1) / G**0.5) and (top > 3) is binds
