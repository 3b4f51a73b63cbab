"""Train a cross-encoder on gold labels, on a teacher's soft labels, or on a per-row mix of both.

Every row gets a target distribution t = w · onehot(gold) + (1 − w) · q (q: the teacher's soft
label, w: the row's ``label_weights`` entry) and the loss is KL(t ‖ p): cross-entropy on pure gold
rows, KL to the teacher on pure soft rows, and for mixed rows the same gradient as w · CE + (1 − w) · KL.
Defaults: w = 1 where a row has no soft label, 0 where it has one.

Writes a genrel model directory (``docs/models.md``) to ``out_dir``; a checkpoint after every epoch
under ``out_dir/checkpoint`` (model, optimiser, scheduler, state), from which a rerun with the same
arguments resumes; ``metrics.jsonl`` (loss every ``log_every`` steps, one line per epoch, dev metrics)
and ``training_args.json``. With dev pairs, the temperature is fitted on them after training. The
checkpoint is removed once the final model is written (``keep_checkpoint=True`` keeps it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrel.criteria import Criteria, load_criteria
from genrel.data.pair import Pair
from genrel.score.calibration import fit_temperature, nll
from genrel.distill.checkpoint import resume_state
from genrel.distill.targets import target_distributions
from genrel.models.device import resolve_device
from genrel.score.cross_encoder import CrossEncoderModel, CrossEncoderScorer, encode_pairs, quiet_transformers
from genrel.progress import progress_bar

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"


@dataclass
class CrossEncoderRun:
    """What a training run did: where it wrote, how fast, and how the dev split went."""

    out_dir: str
    epochs: int
    steps: int
    train_pairs_per_s: float
    last_loss: float
    temperature: float
    dev: dict[str, float] | None = None


def train_cross_encoder(
    pairs: Sequence[Pair],
    criteria: Criteria | str,
    out_dir: str | Path,
    *,
    base: str = "minilm",
    epochs: int = 1,
    lr: float = 3e-5,
    batch_size: int = 16,
    max_length: int = 256,
    soft_labels: Sequence[dict[str, float] | None] | None = None,
    label_weights: Sequence[float] | None = None,
    seed: int = 0,
    dev_pairs: Sequence[Pair] | None = None,
    warmup_ratio: float = 0.1,
    weight_decay: float = 0.01,
    resume: bool = True,
    keep_checkpoint: bool = False,
    device: str | None = None,
    log_every: int = 20,
    progress: bool = True,
) -> CrossEncoderRun:
    """Fine-tune ``base`` (``minilm`` or an HF encoder) on ``pairs``; see the module docstring."""
    import torch

    criteria = load_criteria(criteria)
    out_dir = Path(out_dir)
    targets = target_distributions(pairs, criteria, soft_labels, label_weights)  # [N, L]
    args = dict(base=base, epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, seed=seed,
                warmup_ratio=warmup_ratio, weight_decay=weight_decay, criteria=criteria.name,
                data=_fingerprint(pairs, targets))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "training_args.json").write_text(json.dumps(args, indent=2) + "\n")

    ce = CrossEncoderModel.from_base(base, criteria, max_length=max_length, seed=seed)
    ce.model.to(resolve_device(device))
    features = encode_pairs(ce.tokenizer, pairs, max_length)  # lists of ids, padded per batch
    steps_per_epoch = math.ceil(len(pairs) / batch_size)
    optimizer, scheduler = _optimizer(ce.model, lr, weight_decay, warmup_ratio, steps_per_epoch * epochs)
    start_epoch = _resume(out_dir / CHECKPOINT, args, ce, optimizer, scheduler) if resume else 0
    step, loss_value, seen, elapsed = start_epoch * steps_per_epoch, float("nan"), 0, 0.0
    with (out_dir / "metrics.jsonl").open("a" if start_epoch else "w", encoding="utf-8") as metrics:
        for epoch in range(start_epoch, epochs):
            started = time.perf_counter()
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
            with progress_bar(len(pairs), f"epoch {epoch + 1}/{epochs}", enabled=progress) as bar:
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    loss_value = _train_step(ce, features, targets, idx, optimizer, scheduler)
                    step += 1
                    bar.update(len(idx))
                    bar.set_postfix(loss=f"{loss_value:.4f}")
                    if step % log_every == 0:
                        lr_now = scheduler.get_last_lr()[0]
                        record = {"step": step, "epoch": epoch + 1, "train/loss": loss_value, "train/lr": lr_now}
                        _write(metrics, record)
            epoch_s = time.perf_counter() - started
            elapsed, seen = elapsed + epoch_s, seen + len(pairs)
            rate = len(pairs) / epoch_s
            _write(metrics, {"step": step, "epoch": epoch + 1, "train/loss": loss_value, "train/pairs_per_s": rate})
            _save_checkpoint(out_dir / CHECKPOINT, args, epoch + 1, ce, optimizer, scheduler)
        ce.model.eval()
        dev = evaluate_dev(ce, dev_pairs) if dev_pairs else None
        if dev is not None:
            ce.temperature = dev["temperature"]
            _write(metrics, {"step": step, **{f"dev/{k}": v for k, v in dev.items()}})
    ce.save(out_dir, created_by=f"genrel train cross-encoder (base={base}, epochs={epochs})")
    if not keep_checkpoint:
        shutil.rmtree(out_dir / CHECKPOINT, ignore_errors=True)
    rate = seen / elapsed if elapsed else 0.0
    return CrossEncoderRun(str(out_dir), epochs, step, rate, loss_value, ce.temperature, dev)


def _train_step(ce: CrossEncoderModel, features, targets: np.ndarray, idx: list[int], optimizer, scheduler) -> float:
    """One optimiser step on the rows ``idx``; returns the batch loss."""
    import torch

    ce.model.train()
    loss = _loss(ce, features, targets, idx)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(ce.model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _loss(ce: CrossEncoderModel, features, targets: np.ndarray, idx: list[int]):
    """Mean KL(t ‖ p) over a batch."""
    import torch

    batch = ce.tokenizer.pad({k: [features[k][i] for i in idx] for k in features}, return_tensors="pt")
    logits = ce.model(**batch.to(ce.model.device)).logits.float()  # [B, L]
    target = torch.as_tensor(targets[idx], dtype=torch.float32, device=logits.device)  # [B, L]
    return torch.nn.functional.kl_div(logits.log_softmax(-1), target, reduction="batchmean")


def evaluate_dev(ce: CrossEncoderModel, dev_pairs: Sequence[Pair], *, batch_size: int = 64) -> dict[str, float]:
    """Accuracy and NLL on judged dev pairs, before and after fitting the temperature (which it returns)."""
    judged = [p for p in dev_pairs if p.label is not None]
    if not judged:
        return {"temperature": 1.0}
    scorer = CrossEncoderScorer(ce, batch_size=batch_size, progress=False)
    logits = scorer.logits(judged)  # [N, L]
    gold = [ce.criteria.label_index(p.label) for p in judged]
    temperature = fit_temperature(logits, gold)
    return {
        "pairs": float(len(judged)),
        "accuracy": float(np.mean(logits.argmax(1) == np.array(gold))),
        "nll": nll(logits, gold),
        "nll_calibrated": nll(logits, gold, temperature),
        "temperature": temperature,
    }


def _optimizer(model, lr: float, weight_decay: float, warmup_ratio: float, total_steps: int):
    import torch
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), max(total_steps, 1))
    return optimizer, scheduler


def _save_checkpoint(path: Path, args: dict, epochs_done: int, ce: CrossEncoderModel, optimizer, scheduler) -> None:
    """Write the checkpoint to a temporary folder, then swap it in, so a crash never leaves half of one."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_transformers():
        ce.model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"epochs_done": epochs_done, "args": args}, indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _resume(path: Path, args: dict, ce: CrossEncoderModel, optimizer, scheduler) -> int:
    """Load the checkpoint at ``path`` if there is one; returns the number of epochs already done."""
    import torch
    from safetensors.torch import load_file

    state = resume_state(path, args, hint="use another --out, or --no-resume to start over")
    if state is None:
        return 0
    ce.model.load_state_dict(load_file(str(path / "model.safetensors")))
    saved = torch.load(path / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    log.info("resuming from %s after epoch %d", path, state["epochs_done"])
    return int(state["epochs_done"])


def _fingerprint(pairs: Sequence[Pair], targets: np.ndarray) -> str:
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(f"{pair.row_id}\x00{pair.query}\x00{len(pair.text)}\x01".encode())
    digest.update(np.round(targets, 6).tobytes())
    return digest.hexdigest()[:16]


def _write(handle, record: dict[str, Any]) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()
