"""The ``genrel distill`` recipe: read the teacher's labels (and gold pairs), train a student, save it.

``run_distill(cfg)`` loads the criteria, the labels file and the optional gold and dev files, merges
them into one training set (:mod:`genrel.distill.dataset`), saves the resolved config into the output
folder and trains the student the config names:

- ``cross-encoder``: :func:`genrel.distill.cross_encoder_train.train_cross_encoder` with the teacher's
  soft labels (KL) and per-row gold weights; the folder is a genrel cross-encoder;
- ``lm``: :func:`genrel.distill.lm_student.train_lm_student`, a label-first causal LM;
- ``st-cross-encoder`` / ``bi-encoder``: :func:`genrel.distill.st_train.train_student`, a
  sentence-transformers ``CrossEncoder`` / ``SentenceTransformer`` with a calibrated label head.

Either folder loads in ``genrel eval`` and ``genrel serve``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrel.criteria import load_criteria
from genrel.data import load_pairs
from genrel.distill.config import DistillConfig
from genrel.distill.dataset import DistillSet, build_distill_set
from genrel.distill.labels_file import read_labels
from genrel.errors import DataError

log = logging.getLogger(__name__)

CONFIG_FILE = "distill_config.yaml"


@dataclass
class DistillRun:
    """Where the student is, what it learnt from, and the student trainer's own report."""

    out_dir: Path
    data: dict[str, int]
    report: Any


def run_distill(cfg: DistillConfig) -> DistillRun:
    """Train the student ``cfg`` names on the merged teacher + gold set."""
    cfg = cfg.resolved()
    criteria = load_criteria(cfg.criteria)
    data = load_distill_set(cfg)
    dev = load_pairs(cfg.dev, criteria).pairs if cfg.dev else None
    out_dir = Path(cfg.output_dir)
    cfg.save(out_dir / CONFIG_FILE)
    log.info("distilling into a %s student: %s", cfg.student, data.summary())
    if cfg.student == "cross-encoder":
        report = _train_cross_encoder(cfg, data, criteria, dev)
    elif cfg.student in ("st-cross-encoder", "bi-encoder"):
        from genrel.distill.st_train import train_student

        if dev:
            log.info("the %s student selects and calibrates on held-out training queries; --dev is not used",
                     cfg.student)
        report = train_student(data.pairs, criteria, cfg.output_dir, cfg.student_settings(),
                               soft_labels=data.soft_labels, label_weights=data.label_weights)
    else:
        from genrel.distill.lm_student import train_lm_student

        report = train_lm_student(cfg, data, criteria, dev_pairs=dev)
    return DistillRun(out_dir, data.summary(), report)


def load_distill_set(cfg: DistillConfig) -> DistillSet:
    criteria = load_criteria(cfg.criteria)
    teacher = read_labels(cfg.labels, criteria)
    gold = load_pairs(cfg.gold, criteria, cfg.gold_mapping).pairs if cfg.gold else []
    data = build_distill_set(teacher, gold, cfg.gold_weight)
    if not len(data):
        raise DataError("nothing to learn from: the labels file is empty and no gold file was given", where=cfg.labels)
    return data


def _train_cross_encoder(cfg: DistillConfig, data: DistillSet, criteria, dev):
    from genrel.distill.cross_encoder_train import train_cross_encoder

    return train_cross_encoder(
        data.pairs, criteria, cfg.output_dir, base=cfg.base, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
        max_length=cfg.max_length, soft_labels=data.soft_labels, label_weights=data.label_weights, seed=cfg.seed,
        dev_pairs=dev, resume=cfg.resume, device=cfg.device, log_every=cfg.log_every, progress=cfg.progress,
    )
