"""Temperature calibration: one scalar T that makes softmax(log_scores / T) honest on held-out data.

T is fitted by minimising the negative log-likelihood of the gold labels on a dev split (L-BFGS over
log T, so T stays positive); it never changes the argmax label or a ranking within one label
distribution's order, only how sure the probabilities are. Scorers store T in ``genrel_model.json``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_T, MAX_T = 1e-2, 1e2


def fit_temperature(logits_or_logprobs, gold: Sequence[int], *, max_iter: int = 100) -> float:
    """The temperature minimising NLL of ``gold`` (label indices) under softmax(logits / T).

    ``logits_or_logprobs``: [N, L] array-like of logits or log-probabilities (softmax is shift
    invariant per row, so either works; -inf entries are allowed). Returns 1.0 for empty input."""
    import torch

    scores = torch.as_tensor(np.asarray(logits_or_logprobs, dtype=np.float64))  # [N, L]
    target = torch.as_tensor(np.asarray(gold, dtype=np.int64))  # [N]
    if scores.ndim != 2 or target.shape != (scores.shape[0],):
        raise ValueError(f"expected scores [N, L] and gold [N], got {tuple(scores.shape)} and {tuple(target.shape)}")
    if scores.shape[0] == 0:
        return 1.0
    scores = torch.nan_to_num(scores, neginf=-1e4)  # keep -inf labels at p≈0 without NaN gradients
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(scores / log_t.exp(), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(np.clip(np.exp(log_t.item()), MIN_T, MAX_T))


def nll(logits_or_logprobs, gold: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``gold`` under softmax(scores / temperature)."""
    scores = np.asarray(logits_or_logprobs, dtype=np.float64) / temperature  # [N, L]
    top = scores.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
    return float(np.mean(log_z - scores[np.arange(len(scores)), np.asarray(gold)]))


def calibrate(scorer, pairs) -> float:
    """Fit ``scorer.temperature`` on judged ``pairs`` (dev split) and set it; returns T.

    Works for any scorer whose probabilities are softmax(log_scores / T): it scores at T = 1 and uses
    log p as the log-scores."""
    judged = [p for p in pairs if p.label is not None]
    if not judged:
        raise ValueError("calibration needs judged pairs (with a label)")
    saved, scorer.temperature = scorer.temperature, 1.0
    try:
        scored = scorer.score_pairs(judged)
    except BaseException:
        scorer.temperature = saved
        raise
    names = scorer.criteria.label_names
    log_p = np.log(np.clip([[s.probabilities[n] for n in names] for s in scored], 1e-300, None))  # [N, L]
    scorer.temperature = fit_temperature(log_p, [names.index(p.label) for p in judged])
    return scorer.temperature
