"""Train the sentence-transformers students: a ``CrossEncoder`` reranker or a ``SentenceTransformer``
bi-encoder, on gold labels, a teacher's soft labels, or a per-row mix (target t = w · onehot(gold) +
(1 − w) · q, :func:`target_distributions`).

Both train through sentence-transformers' trainers (``CrossEncoderTrainer`` /
``SentenceTransformerTrainer``, i.e. ``transformers.Trainer``: bf16, gradient accumulation,
``report_to``, ``accelerate launch`` and checkpoint resume come with it). The per-pair training value
is y = E_t[gain] / max gain ∈ [0, 1], the target's expected gain on the criteria's scale.

- **cross-encoder** (one output): each training row is one query with up to ``docs_per_query`` of its
  candidates; the loss is a ranking loss over them (ListNet: cross-entropy between softmax of the
  scores and softmax of ``rank_scale · y``) plus ``distill_weight`` × the soft-label distillation
  loss (binary cross-entropy of sigmoid(score) against y), both from one forward pass
  (:func:`rank_distill_loss`).
- **bi-encoder**: CoSENT, a pairwise ranking loss on cosine similarity that orders every two pairs of
  a batch by their y (within and across queries, so one cosine means one thing everywhere, which the
  label head needs).

Held out: ``holdout`` of the *training* queries (seeded, query-disjoint) never train the encoder. On
them the label head (:class:`~genrel.score.label_head.LabelHead`) is fitted, and for the bi-encoder the
**guard** compares trec_eval nDCG@10 of the fine-tuned and the untrained embedder: the fine-tuned
weights are kept only if they rank the held-out queries strictly better, else the untrained weights
are saved (so the student never ranks worse than where it started, by the only evidence it may use).
No dev or test data is looked at. The run's decisions go to ``student_run.json``.

``extend_vocab``: characters of the training text that the base tokenizer maps to ``[UNK]`` (most
Chinese characters for the English MiniLM) and that occur at least ``min_char_count`` times become
new tokens with fresh embeddings; otherwise every such character is the same token and no model can
tell a title that shares the query's words from one that does not.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genrel.criteria import Criteria, load_criteria
from genrel.data import split_by_query
from genrel.data.pair import Pair
from genrel.distill.st_config import StudentSettings
from genrel.errors import DataError, MissingExtraError
from genrel.score.base import document_text
from genrel.distill.targets import target_distributions
from genrel.models.device import resolve_device
from genrel.score.cross_encoder import base_path
from genrel.score.label_head import LabelHead
from genrel.score.st_students import BI_KIND, CROSS_KIND, BiEncoderScorer, STCrossEncoderScorer, save_student

log = logging.getLogger(__name__)

RUN_FILE = "student_run.json"


@dataclass
class StudentRun:
    """What a student run did: pairs used, speed, the guard's decision and held-out nDCG@10."""

    out_dir: str
    kind: str
    train_pairs: int
    holdout_pairs: int
    train_pairs_per_s: float | None
    added_tokens: int
    holdout_ndcg10: dict[str, float] = field(default_factory=dict)
    kept: str = "fine-tuned"


def train_student(
    pairs: Sequence[Pair],
    criteria: Criteria | str,
    out_dir: str | Path,
    settings: StudentSettings,
    *,
    soft_labels: Sequence[dict[str, float] | None] | None = None,
    label_weights: Sequence[float] | None = None,
) -> StudentRun:
    """Train the student ``settings.kind`` names on ``pairs`` into ``out_dir`` (module docstring)."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise MissingExtraError("sentence-transformers", "train") from None
    criteria = load_criteria(criteria)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = target_distributions(pairs, criteria, soft_labels, label_weights)  # [N, L]
    gains = np.asarray(criteria.gains, dtype=np.float64)
    y = targets @ gains / (gains.max() or 1.0)  # [N] expected gain on [0, 1]
    train_idx, held_idx = _split(pairs, settings)
    train_idx = _cap(pairs, train_idx, settings.max_train_pairs, settings.seed)
    if not train_idx or not held_idx:
        raise DataError(f"{len(pairs)} pairs are too few to hold out {settings.holdout:.0%} of the queries",
                        hint="give more training queries")
    log.info("%s student: %d training pairs, %d held-out pairs", settings.kind, len(train_idx), len(held_idx))
    train_pairs, held = [pairs[i] for i in train_idx], [pairs[i] for i in held_idx]
    if settings.kind == CROSS_KIND:
        model, added, rate = _train_cross_encoder(train_pairs, y[train_idx], settings, out_dir)
        scorer = STCrossEncoderScorer(model, criteria, _flat_head(criteria), batch_size=64)
        run = StudentRun(str(out_dir), settings.kind, len(train_idx), len(held_idx), rate, added)
    else:
        model, added, rate = _train_bi_encoder(train_pairs, y[train_idx], settings, out_dir)
        scorer = BiEncoderScorer(model, criteria, _flat_head(criteria), batch_size=64)
        run = StudentRun(str(out_dir), settings.kind, len(train_idx), len(held_idx), rate, added)
        scorer, raw = _guard(scorer, held, criteria, settings, run)
    if run.kind == CROSS_KIND:
        raw = scorer.raw_scores(held)
        run.holdout_ndcg10["fine-tuned"] = _ndcg10(held, raw, criteria)
    head = LabelHead.fit(raw, targets[held_idx])
    created = f"genrel distill (student={settings.kind}, base={settings.base}, kept={run.kept})"
    save_student(scorer.model, out_dir, kind=settings.kind, criteria=criteria, head=head,
                 max_length=settings.max_length, created_by=created, student_run=asdict(run))
    (out_dir / RUN_FILE).write_text(json.dumps(asdict(run), indent=2) + "\n", encoding="utf-8")
    log.info("student saved to %s (%s; held-out nDCG@10 %s)", out_dir, run.kept, run.holdout_ndcg10)
    return run


# -- BM25 fusion -------------------------------------------------------------------------------------------
FUSION_GRID = tuple(i / 20 for i in range(21))  # β = 0, 0.05, …, 1


def fit_bm25_fusion(student_dir: str | Path, pairs: Sequence[Pair], criteria: Criteria | str, out_dir: str | Path,
                    settings: StudentSettings) -> dict[str, Any]:
    """A copy of the student at ``student_dir`` in ``out_dir`` that ranks by (1 − β) · its score + β · BM25
    share, β chosen on the *same held-out training queries* as the head (the split of ``settings``,
    so ``pairs`` must be the student's training pairs): the β of :data:`FUSION_GRID` with the best
    trec_eval nDCG@10 there (ties: the smaller β, the student alone when BM25 adds nothing); the head
    is refitted on the fused score. Returns {bm25_weight, holdout_ndcg10 per β}."""
    import shutil

    from genrel.score.load import load_scorer
    from genrel.score.st_students import bm25_share, fuse

    criteria = load_criteria(criteria)
    _, held_idx = _split(pairs, settings)
    held = [pairs[i] for i in held_idx]
    scorer = load_scorer(str(student_dir))
    own, lexical = scorer.raw_scores(held), bm25_share(held, criteria)
    by_weight = {w: _ndcg10(held, fuse(own, lexical, w), criteria) for w in FUSION_GRID}
    best = max(FUSION_GRID, key=lambda w: (round(by_weight[w], 12), -w))
    targets = target_distributions(held, criteria, None, None)
    head = LabelHead.fit(fuse(own, lexical, best), targets)
    out_dir = Path(out_dir)
    if out_dir.resolve() != Path(student_dir).resolve():
        shutil.copytree(student_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("trainer"))
    info_path = out_dir / "genrel_model.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    fusion = {"bm25_weight": best, "holdout_ndcg10": {str(w): v for w, v in by_weight.items()}}
    info.update(head=head.to_dict(), fusion=fusion)
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("BM25 fusion weight %.2f (held-out nDCG@10 %.4f; student alone %.4f)", best, by_weight[best],
             by_weight[0.0])
    return fusion


# -- data --------------------------------------------------------------------------------------------------
def _split(pairs: Sequence[Pair], settings: StudentSettings) -> tuple[list[int], list[int]]:
    """Row indices of the training and held-out queries (query-disjoint, seeded)."""
    index = {id(p): i for i, p in enumerate(pairs)}
    parts = split_by_query(list(pairs), {"train": 1 - settings.holdout, "holdout": settings.holdout},
                           seed=settings.seed)
    return sorted(index[id(p)] for p in parts["train"]), sorted(index[id(p)] for p in parts["holdout"])


def _cap(pairs: Sequence[Pair], idx: list[int], cap: int | None, seed: int) -> list[int]:
    """Whole queries in a seeded order until ``cap`` pairs (None: all)."""
    if cap is None or len(idx) <= cap:
        return idx
    groups: dict[str, list[int]] = {}
    for i in idx:
        groups.setdefault(pairs[i].query_key, []).append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    out: list[int] = []
    for key in keys:
        if len(out) >= cap:
            break
        out.extend(groups[key])
    return sorted(out)


def _listwise_rows(pairs: Sequence[Pair], y: np.ndarray, docs_per_query: int, seed: int) -> dict[str, list]:
    """One row per query chunk: {query, docs, labels}, each query's candidates shuffled (seeded) and
    cut into chunks of at most ``docs_per_query``."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(p.query_key, []).append(i)
    rng = random.Random(seed)
    rows: dict[str, list] = {"query": [], "docs": [], "labels": []}
    for members in groups.values():
        members = members[:]
        rng.shuffle(members)
        n_chunks = math.ceil(len(members) / docs_per_query)
        for c in range(n_chunks):
            chunk = members[c::n_chunks]  # even chunks, each a mix of the query's grades
            rows["query"].append(pairs[chunk[0]].query)
            rows["docs"].append([document_text(pairs[i]) for i in chunk])
            rows["labels"].append([float(y[i]) for i in chunk])
    return rows


# -- vocabulary ------------------------------------------------------------------------------------------
def extend_vocabulary(tokenizer: Any, hf_model: Any, texts: Sequence[str], min_count: int) -> int:
    """Add the characters of ``texts`` that ``tokenizer`` maps to its unknown token and that occur at
    least ``min_count`` times; resize the model's embeddings. Returns how many were added."""
    unk = tokenizer.unk_token_id
    counts: Counter[str] = Counter(ch for text in texts for ch in text if not ch.isspace())
    candidates = sorted(ch for ch, n in counts.items() if n >= min_count)
    if unk is None or not candidates:
        return 0
    ids = tokenizer(candidates, add_special_tokens=False)["input_ids"]
    unknown = [ch for ch, tok in zip(candidates, ids) if tok == [unk]]
    if not unknown:
        return 0
    added = tokenizer.add_tokens(unknown)
    hf_model.resize_token_embeddings(len(tokenizer))  # new rows drawn around the old embeddings' mean
    log.info("added %d characters the base tokenizer did not know", added)
    return added


# -- cross-encoder -----------------------------------------------------------------------------------------
def rank_distill_loss(model: Any, *, distill_weight: float, rank_scale: float):
    """The cross-encoder loss of the module docstring, as a module ``CrossEncoderTrainer`` accepts."""
    import torch
    from sentence_transformers.util import batch_to_device

    class _Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, inputs, labels, prompt=None, task=None):
            queries, docs_list = inputs
            sizes = [len(d) for d in docs_list]
            texts = [(q, d) for q, docs in zip(queries, docs_list) for d in docs]
            tokens = batch_to_device(self.model.preprocess(texts), self.model.device)
            logits = self.model(tokens)["scores"].view(-1).float()  # [P]
            target = torch.cat([torch.as_tensor(t, dtype=torch.float32) for t in labels]).to(logits.device)  # [P]
            rank = logits.new_zeros(())
            for part_logits, part_y in zip(logits.split(sizes), target.split(sizes)):
                rank = rank - (torch.softmax(rank_scale * part_y, 0) * torch.log_softmax(part_logits, 0)).sum()
            rank = rank / len(sizes)
            distill = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            return rank + distill_weight * distill

        def get_config_dict(self):
            return {"distill_weight": distill_weight, "rank_scale": rank_scale}

    return _Loss()


def _train_cross_encoder(pairs: Sequence[Pair], y: np.ndarray, s: StudentSettings, out_dir: Path):
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments

    model = CrossEncoder(base_path(s.base), num_labels=1, max_length=s.max_length, device=resolve_device(s.device))
    added = _maybe_extend(model, pairs, s)
    rows = _listwise_rows(pairs, y, s.docs_per_query, s.seed)
    args = CrossEncoderTrainingArguments(**_trainer_args(s, out_dir, s.batch_size))
    loss = rank_distill_loss(model, distill_weight=s.distill_weight, rank_scale=s.rank_scale)
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_dict(rows), loss=loss)
    rate = _fit(trainer, len(pairs), out_dir)
    return model, added, rate


# -- bi-encoder --------------------------------------------------------------------------------------------
def _train_bi_encoder(pairs: Sequence[Pair], y: np.ndarray, s: StudentSettings, out_dir: Path):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.losses import CoSENTLoss
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    model = SentenceTransformer(base_path(s.base), device=resolve_device(s.device))
    model.max_seq_length = s.max_length
    added = _maybe_extend(model, pairs, s)
    order = list(range(len(pairs)))
    random.Random(s.seed).shuffle(order)
    rows = {"anchor": [pairs[i].query for i in order], "positive": [document_text(pairs[i]) for i in order],
            "score": [float(y[i]) for i in order]}
    args = SentenceTransformerTrainingArguments(**_trainer_args(s, out_dir, s.batch_size))
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(rows),
                                         loss=CoSENTLoss(model))
    rate = _fit(trainer, len(pairs), out_dir)
    return model, added, rate


def _guard(trained: BiEncoderScorer, held: Sequence[Pair], criteria: Criteria, s: StudentSettings,
           run: StudentRun) -> tuple[BiEncoderScorer, np.ndarray]:
    """Keep the fine-tuned embedder only if its held-out nDCG@10 beats the untrained one's; returns
    the kept scorer and its held-out scores."""
    untrained = BiEncoderScorer(BiEncoderScorer.load_model(base_path(s.base)), criteria, trained.head, batch_size=64)
    before, after = untrained.raw_scores(held), trained.raw_scores(held)
    run.holdout_ndcg10 = {"untrained": _ndcg10(held, before, criteria), "fine-tuned": _ndcg10(held, after, criteria)}
    if run.holdout_ndcg10["fine-tuned"] > run.holdout_ndcg10["untrained"]:
        run.kept = "fine-tuned"
        return trained, after
    run.kept = "untrained (fine-tuning did not rank the held-out training queries better)"
    log.info("guard: keeping the untrained embedder (held-out nDCG@10 %s)", run.holdout_ndcg10)
    return untrained, before


# -- shared ----------------------------------------------------------------------------------------------
def _maybe_extend(model: Any, pairs: Sequence[Pair], s: StudentSettings) -> int:
    if not s.extend_vocab:
        return 0
    texts = [p.query for p in pairs] + [document_text(p) for p in pairs]
    return extend_vocabulary(model.tokenizer, model[0].auto_model, texts, s.min_char_count)


def _trainer_args(s: StudentSettings, out_dir: Path, batch_size: int) -> dict[str, Any]:
    import torch

    return dict(
        output_dir=str(out_dir / "trainer"), num_train_epochs=s.epochs, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps, learning_rate=s.lr,
        warmup_steps=s.warmup_ratio,  # a float below 1 is a share of the steps in transformers 5
        weight_decay=s.weight_decay, seed=s.seed, data_seed=s.seed, logging_steps=s.log_every, save_strategy="epoch",
        save_total_limit=1, report_to=s.report_to, use_cpu=not torch.cuda.is_available() or s.device == "cpu",
        bf16=s.bf16, disable_tqdm=not s.progress, dataloader_drop_last=False,
    )


def _fit(trainer: Any, n_pairs: int, out_dir: Path) -> float:
    """Train (resuming from the last epoch checkpoint in ``out_dir/trainer``); pairs per second."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out_dir / "trainer"
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    elapsed = time.perf_counter() - started
    epochs = trainer.args.num_train_epochs
    return n_pairs * epochs / elapsed if elapsed > 0 and last is None else None


def _flat_head(criteria: Criteria) -> LabelHead:
    n = len(criteria.labels)
    return LabelHead(np.zeros(n), np.zeros(n), 0.0, 1.0)


def _ndcg10(pairs: Sequence[Pair], scores: np.ndarray, criteria: Criteria) -> float:
    """trec_eval nDCG@10 over judged ``pairs`` (the measure reports use, :mod:`genrel.eval.ranking`)."""
    from genrel.eval import ranking, threshold_index

    queries = [p.query_key for p in pairs]
    rows = [{"row_id": p.row_id, "docid": p.docid} for p in pairs]
    gold = [criteria.label_index(p.label) for p in pairs]
    per_query = ranking.per_query_measures(queries, ranking.doc_ids(rows, queries), gold, list(scores),
                                           criteria.gains, threshold_index(criteria, None))
    return ranking.mean_measures(per_query)["ndcg@10"]
