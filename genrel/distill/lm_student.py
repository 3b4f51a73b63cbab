"""Train the label-first LM student: a compact AdamW loop over :mod:`genrel.distill.label_first`.

``train_lm_student(cfg, data, criteria)`` loads the base (optionally wrapped in a LoRA adapter),
tokenizes the pairs once, trains ``cfg.epochs`` epochs with a linear warm-up/decay schedule and
gradient clipping, and writes into ``cfg.output_dir``:

- the student as a genrel model folder (``genrel_model.json``: kind ``causal-lm``, form ``label-first``,
  the prompt variant, the criteria, the temperature fitted on ``cfg.dev`` when given), LoRA merged;
- ``metrics.jsonl`` (loss, KL, explanation CE every ``log_every`` steps; one line per epoch; dev);
- ``checkpoint/`` after every epoch (trainable weights, optimizer, scheduler, the arguments), from
  which a rerun with the same settings resumes; removed once the final model is saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrel.criteria import Criteria
from genrel.distill.checkpoint import resume_state
from genrel.distill.config import DistillConfig
from genrel.distill.dataset import DistillSet
from genrel.errors import ModelError
from genrel.models.lora import lora_config

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"


@dataclass
class LMStudentRun:
    """What a run did: where it wrote, how fast, its last losses and the dev split's metrics."""

    out_dir: str
    epochs: int
    steps: int
    train_pairs_per_s: float
    last_loss: float
    last_kl: float
    temperature: float
    dev: dict[str, float] | None = None


def train_lm_student(cfg: DistillConfig, data: DistillSet, criteria: Criteria, *, dev_pairs=None) -> LMStudentRun:
    """Distil ``data`` into a label-first causal LM as ``cfg`` (resolved) says; see the module docstring."""
    import torch

    from genrel.distill.label_first import encode_examples
    from genrel.models.device import resolve_device
    from genrel.distill.targets import target_distributions
    from genrel.score.load import load_causal_lm
    from genrel.progress import progress_bar

    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = target_distributions(data.pairs, criteria, data.soft_labels, data.label_weights)  # [N, L]
    model, tokenizer = load_causal_lm(cfg.base, dtype=cfg.lm.dtype)
    model.to(resolve_device(cfg.device))
    scorer = _student_scorer(model, tokenizer, criteria, cfg)
    examples = encode_examples(scorer, data, targets, cfg.lm.max_explanation_tokens)
    torch.manual_seed(cfg.seed)
    model = _with_lora(model, cfg)
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    optimizer, scheduler = _optimizer(model, cfg, steps_per_epoch * cfg.epochs)
    args = _run_args(cfg, data, targets)
    start_epoch = _resume(out_dir / CHECKPOINT, args, model, optimizer, scheduler) if cfg.resume else 0
    metrics = (out_dir / "metrics.jsonl").open("a" if start_epoch else "w", encoding="utf-8")
    step, loss_value, kl_value, seen, elapsed = start_epoch * steps_per_epoch, math.nan, math.nan, 0, 0.0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        started = time.perf_counter()
        with progress_bar(len(examples), f"epoch {epoch + 1}/{cfg.epochs}", enabled=cfg.progress) as bar:
            for start in range(0, len(order), cfg.batch_size):
                batch = [examples[i] for i in order[start : start + cfg.batch_size]]
                loss, kl, ce = _train_step(model, batch, scorer.pad_id, cfg.lm.explanation_weight, optimizer, scheduler)
                step, loss_value, kl_value = step + 1, loss.item(), kl.item()
                bar.update(len(batch))
                bar.set_postfix(loss=f"{loss_value:.4f}", kl=f"{kl_value:.4f}")
                if step % cfg.log_every == 0:
                    _write(metrics, {"step": step, "epoch": epoch + 1, "train/loss": loss_value, "train/kl": kl_value,
                                     "train/explanation_ce": ce.item(), "train/lr": scheduler.get_last_lr()[0]})
        elapsed += time.perf_counter() - started
        seen += len(examples)
        _write(metrics, {"step": step, "epoch": epoch + 1, "train/loss": loss_value, "train/kl": kl_value,
                         "train/pairs_per_s": len(examples) / max(elapsed, 1e-9)})
        _save_checkpoint(out_dir / CHECKPOINT, args, epoch + 1, model, optimizer, scheduler)

    model = model.merge_and_unload() if cfg.lm.lora is not None else model
    model.eval()
    scorer.model = model
    dev = evaluate_dev(scorer, dev_pairs) if dev_pairs else None
    if dev is not None:
        scorer.temperature = dev["temperature"]
        _write(metrics, {"step": step, **{f"dev/{k}": v for k, v in dev.items()}})
    metrics.close()
    save_student(scorer, out_dir, cfg)
    shutil.rmtree(out_dir / CHECKPOINT, ignore_errors=True)
    return LMStudentRun(str(out_dir), cfg.epochs, step, seen / elapsed if elapsed else 0.0, loss_value, kl_value,
                        scorer.temperature, dev)


def _train_step(model, batch, pad_id: int, explanation_weight: float, optimizer, scheduler):
    """One optimizer step on ``batch``; returns (loss, kl, explanation CE) as tensors."""
    import torch

    from genrel.distill import label_first

    scores, nll, n_tokens = label_first.student_log_scores(model, batch, pad_id)  # [B, L]
    target = torch.as_tensor(np.stack([ex.target for ex in batch]), dtype=torch.float32, device=scores.device)  # [B, L]
    loss, kl, ce = label_first.distillation_loss(scores, target, nll, n_tokens, explanation_weight)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach(), kl.detach(), ce.detach()


def _student_scorer(model, tokenizer, criteria: Criteria, cfg: DistillConfig):
    """The scorer the saved student will be read with: it renders the training prompts too."""
    from genrel.score.lm import LMScorer

    return LMScorer(model, tokenizer, criteria, form="label-first", prompt=cfg.lm.prompt, max_length=cfg.max_length,
                    batch_size=cfg.batch_size, progress=cfg.progress, name="lm-student")


def save_student(scorer, out_dir: Path, cfg: DistillConfig) -> Path:
    """The genrel model folder: weights, tokenizer and ``genrel_model.json`` (label-first)."""
    from genrel.models.model_dir import write_model_info

    scorer.model.save_pretrained(out_dir)
    scorer.tokenizer.save_pretrained(out_dir)
    write_model_info(
        out_dir, kind="causal-lm", form="label-first", prompt=cfg.lm.prompt, criteria=scorer.criteria,
        created_by=f"genrel distill --student lm (base={cfg.base}, labels={cfg.labels}, epochs={cfg.epochs})",
        max_length=cfg.max_length, temperature=scorer.temperature,
    )
    return out_dir


def evaluate_dev(scorer, dev_pairs) -> dict[str, float]:
    """Accuracy and NLL on judged dev pairs before/after fitting the temperature (returned as well)."""
    from genrel.score.calibration import fit_temperature, nll

    judged = [p for p in dev_pairs if p.label is not None]
    if not judged:
        return {"temperature": 1.0}
    saved, scorer.temperature = scorer.temperature, 1.0
    names = scorer.criteria.label_names
    scored = scorer.score_pairs(judged)
    scorer.temperature = saved
    log_p = np.log(np.clip([[s.probabilities[n] for n in names] for s in scored], 1e-12, None))  # [N, L]
    gold = [names.index(p.label) for p in judged]
    temperature = fit_temperature(log_p, gold)
    return {
        "pairs": float(len(judged)),
        "accuracy": float(np.mean(log_p.argmax(1) == np.array(gold))),
        "nll": nll(log_p, gold),
        "nll_calibrated": nll(log_p, gold, temperature),
        "temperature": temperature,
    }


def _with_lora(model, cfg: DistillConfig):
    if cfg.lm.lora is None:
        return model
    try:
        from peft import get_peft_model
    except ImportError:
        from genrel.errors import MissingExtraError

        raise MissingExtraError("peft", "train") from None
    return get_peft_model(model, lora_config(cfg.lm.lora, model))


def _optimizer(model, cfg: DistillConfig, total_steps: int):
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.lm.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.lm.warmup_ratio * total_steps), max(total_steps, 1))
    return optimizer, scheduler


def _run_args(cfg: DistillConfig, data: DistillSet, targets: np.ndarray) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: the settings that shape training and the data."""
    digest = hashlib.sha256()
    for pair, explanation in zip(data.pairs, data.explanations):
        digest.update(f"{pair.row_id}\x00{pair.query}\x00{len(pair.text)}\x00{explanation or ''}\x01".encode())
    digest.update(np.round(targets, 6).tobytes())
    shaping = {"base", "epochs", "lr", "batch_size", "max_length", "seed", "lm", "criteria"}
    settings = cfg.model_dump(mode="json", include=shaping)
    return {**settings, "data": digest.hexdigest()[:16]}


def _save_checkpoint(path: Path, args: dict, epochs_done: int, model, optimizer, scheduler) -> None:
    """Write to a temporary folder, then swap it in, so a crash never leaves half a checkpoint."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    state = {"weights": weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save(state, tmp / "state.pt")
    (tmp / "state.json").write_text(json.dumps({"epochs_done": epochs_done, "args": args}, indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _resume(path: Path, args: dict, model, optimizer, scheduler) -> int:
    """Load the checkpoint at ``path`` if there is one; returns the number of epochs it had done."""
    import torch

    state = resume_state(path, args, hint="use another output_dir, or --set resume=false to start over")
    if state is None:
        return 0
    saved = torch.load(path / "state.pt", weights_only=False)
    missing = set(saved["weights"]) - {n for n, _ in model.named_parameters()}
    if missing:
        raise ModelError(f"the checkpoint has weights this model lacks ({sorted(missing)[:3]}…)", where=str(path))
    model.load_state_dict(saved["weights"], strict=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    log.info("resuming from %s after epoch %d", path, state["epochs_done"])
    return int(state["epochs_done"])


def _write(handle, record: dict[str, Any]) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()
