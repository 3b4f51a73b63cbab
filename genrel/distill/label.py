"""Teacher labelling: a reasoning model (the RL model, any GRM, the embedded SmolLM2) labels an
unlabelled pool with a soft label distribution per pair, for students to learn.

Each pair gets ``samples`` sampled reasoning completions (temperature ``temperature``). The teacher is
the scorer :func:`genrel.score.load_scorer` gives for the model (transformers or vLLM backend), an
:class:`~genrel.score.lm.LMScorer` in ``reasoning`` form with sampling switched on through its
``generation_kwargs``: every sample's reasoning is generated until ``<label>`` and the label
distribution is read at that position, exactly as at scoring time. Per pair:

- ``probabilities`` = mean over the samples of those distributions; ``soft_label`` = ``probabilities``
  (the teaching target: defined for every pair, even when the reasoning is malformed);
- ``votes`` = shares over the samples whose completion parses strictly (the label of a sample is the
  argmax of its distribution, the label its reasoning leads to); unparseable samples are counted in
  ``n_unparseable`` and their error kinds in ``format_errors``;
- ``reasoning`` = the first sample that parses and whose label is the majority vote (ties: higher
  mean probability, then the worse label), else null.

The output is written row by row (:mod:`genrel.distill.labels_file`); a rerun with the same ``out``
skips the pairs already there. The resolved config is saved next to it (``<out stem>.config.yaml``)
and a rerun with another teacher or sampling refuses to append to the same file.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from genrel.config import StageConfig, read_yaml_mapping
from genrel.criteria import Criteria
from genrel.data import ColumnMapping, Pair, load_pairs
from genrel.data.resumable import check_unique_row_ids
from genrel.errors import ConfigError, ModelError
from genrel.models.model_dir import read_model_info
from genrel.progress import progress_bar
from genrel.score.base import Scored, argmax_label

log = logging.getLogger(__name__)

# Fields that decide what the labels mean: a resumed run must keep them.
LABEL_DEFINING = ("model", "criteria", "samples", "temperature", "top_p", "max_new_tokens", "max_length")


class LabelConfig(StageConfig):
    """``genrel label``: a teacher labels a pool of pairs with soft labels (see ``docs/distillation.md``)."""

    model: str = Field(
        default="smollm2-135m", description="Teacher: a GRM / genrel model folder, smollm2-135m, HF id or folder."
    )
    data: str = Field(description="The pool: .jsonl/.csv/.tsv/.parquet; labels in it are kept as 'gold', not taught.")
    mapping: ColumnMapping = Field(default_factory=ColumnMapping, description="Column names, when not detected.")
    on_error: Literal["fail", "skip"] = Field(default="fail", description="Bad rows of the pool: fail, or skip them.")
    criteria: str | None = Field(default=None, description="Criteria preset or YAML; default: the teacher folder's.")
    out: str = Field(description="Labels file (.jsonl), appended to and resumed.")
    samples: int = Field(default=4, ge=1, description="Sampled reasoning completions per pair.")
    temperature: float = Field(default=0.8, gt=0, description="Sampling temperature of the reasoning.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling of the reasoning.")
    max_new_tokens: int = Field(default=512, ge=1, description="Reasoning tokens per sample at most.")
    max_length: int | None = Field(default=None, ge=32, description="Prompt tokens; the document is cut to fit.")
    limit: int | None = Field(default=None, ge=1, description="Label only the first N pairs of the pool.")
    backend: Literal["hf", "vllm"] = Field(default="hf", description="hf: transformers; vllm: offline batch inference.")
    batch_size: int = Field(default=4, ge=1, description="Pairs per generation call (each with all its samples).")
    dtype: str = Field(default="auto", description="Teacher weights dtype: auto, bfloat16, float32…")
    seed: int = 0
    progress: bool = Field(default=True, description="Show a progress bar (hidden anyway off a terminal).")


@dataclass(frozen=True)
class LabelRun:
    """What a labelling run did."""

    out: Path
    labelled: int
    skipped: int
    pairs_per_s: float
    parse_rate: float | None


def run_label(cfg: LabelConfig) -> LabelRun:
    """Label ``cfg.data`` with the teacher into ``cfg.out``: load, resume, sample, aggregate, append."""
    from genrel.distill.labels_file import append_records, label_record, labelled_ids

    out = Path(cfg.out)
    _check_resumable(cfg, config_path(out))
    scorer = teacher_scorer(cfg)
    pairs = load_pool(cfg, scorer.criteria)
    done = labelled_ids(out)
    cfg.save(config_path(out))
    todo = [p for p in pairs if p.row_id not in done]
    log.info("labelling %d pairs (%d already in %s), %d samples each", len(todo), len(done), out, cfg.samples)

    import torch

    torch.manual_seed(cfg.seed)
    parsed = total = 0
    started = time.perf_counter()
    with progress_bar(len(todo), "labelling", enabled=cfg.progress) as bar:
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start : start + cfg.batch_size]
            samples = sample_batch(scorer, batch, cfg.samples)
            records = [label_record(pair, teacher_fields(s, scorer.criteria)) for pair, s in zip(batch, samples)]
            append_records(out, records)
            parsed += sum(r["n_samples"] - r["n_unparseable"] for r in records)
            total += sum(r["n_samples"] for r in records)
            bar.update(len(batch))
    elapsed = time.perf_counter() - started
    return LabelRun(
        out, len(todo), len(pairs) - len(todo), len(todo) / elapsed if elapsed else 0.0, parsed / total if total else None
    )


def config_path(out: Path) -> Path:
    """Where the resolved config of a labels file lives: ``labels.jsonl`` → ``labels.config.yaml``."""
    return out.with_name(out.stem + ".config.yaml")


def _check_resumable(cfg: LabelConfig, path: Path) -> None:
    if not path.is_file() or not Path(cfg.out).is_file() or Path(cfg.out).stat().st_size == 0:
        return
    before = read_yaml_mapping(path)
    now = cfg.model_dump(mode="json")
    changed = [k for k in LABEL_DEFINING if before.get(k) != now.get(k)]
    if changed:
        raise ConfigError(
            f"{cfg.out} was labelled with other settings ({', '.join(f'{k}: {before.get(k)!r}' for k in changed)})",
            where=str(path),
            hint="use another --out, or delete the file to start over",
        )


def load_pool(cfg: LabelConfig, criteria: Criteria) -> list[Pair]:
    """The pool's pairs (labels optional), the first ``limit`` of them; row ids must be unique."""
    pairs = load_pairs(cfg.data, criteria, cfg.mapping, on_error=cfg.on_error, require_label=False).pairs
    pairs = pairs[: cfg.limit] if cfg.limit else pairs
    check_unique_row_ids(pairs)
    return pairs


def teacher_scorer(cfg: LabelConfig):
    """The teacher as a reasoning-form LM scorer (:func:`genrel.score.load_scorer`, so every model form and
    backend the scorers know works here) whose reasoning is sampled instead of greedy."""
    from genrel.score import load_scorer

    info = read_model_info(cfg.model) if Path(cfg.model).is_dir() else None
    kind = (f"{info.form} {info.kind}" if info.form else info.kind) if info else None
    if cfg.model == "bm25" or cfg.model.startswith("zero-shot-nosteps:"):
        kind = cfg.model.split(":")[0]
    if kind is not None and kind != "reasoning causal-lm":
        raise ModelError(
            f"a {kind} model does not reason before its label, so sampling it gives nothing new",
            where=cfg.model,
            hint="label with a reasoning model (the RL model); score with `genrel eval` instead",
        )
    options: dict[str, Any] = {
        "max_new_tokens": cfg.max_new_tokens, "dtype": cfg.dtype, "progress": False, "name": "teacher",
        "generation_kwargs": {"do_sample": True, "temperature": cfg.temperature, "top_p": cfg.top_p},
    }
    if cfg.max_length is not None:
        options["max_length"] = cfg.max_length
    return load_scorer(cfg.model, backend=cfg.backend, criteria=cfg.criteria, **options)


def sample_batch(scorer, pairs: Sequence[Pair], samples: int) -> list[list[Scored]]:
    """``samples`` scored reasoning completions per pair, from one generation call for the batch."""
    import torch

    prompts = [scorer.prompt_text(p) for p in pairs]
    with torch.inference_mode():
        scored = scorer.score_prompts([p for p in prompts for _ in range(samples)])
    return [scored[i * samples : (i + 1) * samples] for i in range(len(pairs))]


def teacher_fields(samples: Sequence[Scored], criteria: Criteria) -> dict[str, Any]:
    """Aggregate one pair's samples into the labels-file fields (see the module docstring)."""
    names = criteria.label_names
    probabilities = np.mean([[s.probabilities[n] for n in names] for s in samples], axis=0)  # [L]
    probabilities = probabilities / probabilities.sum()
    mean = dict(zip(names, probabilities.tolist()))
    good = [s for s in samples if s.format_error is None]
    counts = Counter(s.label for s in good)
    votes = {n: counts[n] / len(good) for n in names} if good else None
    majority = max(names, key=lambda n: (counts[n], mean[n], -criteria.label_index(n))) if good else None
    kept = next((s for s in good if s.label == majority), None)
    return {
        "votes": votes,
        "probabilities": mean,
        "soft_label": dict(mean),
        "teacher_label": argmax_label(mean, criteria),
        "reasoning": kept.reasoning if kept else None,
        "reasoning_label": majority if kept else None,
        "n_samples": len(samples),
        "n_unparseable": len(samples) - len(good),
        "format_errors": dict(Counter(s.format_error for s in samples if s.format_error is not None)),
    }
