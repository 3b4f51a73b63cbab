"""Run folders shared by the training stages: resume rules, the saved config, the metrics file and the
final model directory, so SFT and RL (and any later engine) behave alike. (Prompt fitting is
:func:`genrel.prompt.fitted_messages`, shared with the scorers.)"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria
from genrel.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_FILE, METRICS_FILE, FINAL_DIR, ADAPTER_DIR = "config.yaml", "metrics.jsonl", "final", "adapter"


def prepare_run_dir(run_dir: Path, resume: bool) -> str | None:
    """The checkpoint to resume from (None: a fresh run). A fresh run refuses a folder with checkpoints;
    a resumed one drops metrics logged after its checkpoint, which the resumed run logs again. Only the
    main process (``RANK`` 0) touches the metrics file."""
    from transformers.trainer_utils import get_last_checkpoint

    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = get_last_checkpoint(str(run_dir))
    metrics = run_dir / METRICS_FILE
    main_process = os.environ.get("RANK", "0") == "0"
    if checkpoint is None:
        if resume:
            logger.info("resume: no checkpoint in %s yet, starting from step 0", run_dir)
        if main_process:
            metrics.unlink(missing_ok=True)
        return None
    if not resume:
        raise ConfigError(
            f"already holds {Path(checkpoint).name}",
            where=str(run_dir),
            hint="set resume=true to continue it, or choose another output_dir",
        )
    if main_process and metrics.is_file():
        step = int(Path(checkpoint).name.rsplit("-", 1)[-1])
        metrics.write_text("".join(line + "\n" for line in _lines_up_to(metrics, step)), encoding="utf-8")
    logger.info("resuming from %s", checkpoint)
    return checkpoint


def _lines_up_to(metrics: Path, step: int) -> list[str]:
    """Records of ``metrics.jsonl`` logged at or before ``step``; a line cut short by a kill is dropped."""
    kept = []
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    return kept


def save_config(cfg, run_dir: Path) -> None:
    """Save the resolved config as ``config.yaml``, from the main process (``RANK`` 0) only."""
    if os.environ.get("RANK", "0") == "0":
        cfg.save(run_dir / CONFIG_FILE)


def save_final(trainer, tokenizer, run_dir: Path, criteria: Criteria, *, lora: bool, created_by: str,
               max_length: int, **info: Any) -> Path:
    """Save the trained model to ``final/`` as a genrel model directory (docs/models.md). With LoRA the
    adapter goes to ``adapter/`` and ``final/`` gets it merged into the base model, unless the weights
    are sharded (DeepSpeed, FSDP): then ``final/`` holds the adapter, to merge offline. ``info`` goes
    into ``genrel_model.json``."""
    from genrel.models.model_dir import write_model_info

    final_dir = run_dir / FINAL_DIR
    sharded = trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled
    if not lora or sharded:
        trainer.save_model(str(final_dir))
        if lora:
            logger.warning("LoRA weights are sharded: %s holds the adapter; merge it offline", final_dir)
    else:
        trainer.save_model(str(run_dir / ADAPTER_DIR))
        if trainer.args.should_save:
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(str(final_dir))
    if trainer.args.should_save:
        tokenizer.save_pretrained(str(final_dir))
        write_model_info(final_dir, kind="causal-lm", form="reasoning", criteria=criteria, created_by=created_by,
                         max_length=max_length, **info)
    return final_dir
