"""SAM learning benchmark: does Stepwise Advantage Masking make GRPO learn the criteria better, or with
fewer steps, than outcome-only GRPO? The paper's ablation grid plus our variants, on two worlds.

Worlds (query-disjoint 70/10/20 train/dev/test splits, per-step gold verdicts):

- ``catalogue``: :mod:`genrel.demo.world`, ``esci`` criteria (type → specs → complement);
- ``notes``: :mod:`genrel.demo.notes_world`, ``notes-rules`` criteria, the paper's shape: a
  **provisional** grade from general matching, a grade recalibrated by business rules (which change a
  quarter of the grades), then the label, so the provisional rule of SAM's masking table is exercised.

Arms (:data:`ARMS`): ``generic`` (the paper's general-prompt baseline: a system prompt with the labels
only, no steps and no rules, completions that are just ``<label>…</label>``, outcome GRPO), ``off``
(criteria prompt, outcome GRPO), ``hard`` (the paper's SAM), ``hard+renorm`` (the authors' kept-token
aggregation), ``soft``, ``first_error``, ``hard+step`` (ours). Core arms (generic, off, hard) run on
``--seeds``, the others on ``--variant-seeds``.

Per world × seed: a tiny Llama trained FROM SCRATCH (byte-level BPE trained on the train split,
grammar tags as whole tokens); a warm-up SFT of a FIXED number of steps (``--warmup-steps``, calibrated
once so that it ends at 50–75 % held-out label accuracy; the same for every arm, no stop rule) on
verdict-only gold traces, one checkpoint for all criteria arms and one, same steps and data order, on
label-only traces for ``generic``; then from it, per arm, ``--steps`` GRPO steps with
:class:`~genrel.train.rl_trainer.SAMGRPOTrainer`. A seed's arms share the model seed, the data order
(recorded and hashed in each cell) and the step budget. The test split is evaluated at step 0 and every
``--eval-every`` steps: label accuracy (label read at the label position after greedy steps, as
``genrel eval`` does), per-step verdict accuracy (missing verdict = wrong) and label/step consistency.

Prompts: the chat template's system message is the criteria's :func:`genrel.prompt.system_prompt`
(generic: of the criteria without steps and rules) and the user message holds the query and the item's
title (which carries all of an item's facts in both worlds). A model trained from scratch reads nothing
from a system message that is the same for every pair, so the tokenizer holds each arm's whole system
message as ONE added token: the arms' prompts differ as they should, at the cost of one position.

One command, resumable by world × arm × seed: every finished cell is appended at once to
``--out/learning-cells.jsonl`` (a rerun skips finished cells and refuses cells of other settings);
warm-up checkpoints are kept under ``--work``; ``--jobs 2`` runs two processes of one thread each.

    nice python bench/learning.py --jobs 2                       # the full benchmark (about 3 h, 2 cores)
    python bench/learning.py --worlds notes --seeds 0 --arms off,hard --steps 10   # a quick look
    python bench/learning.py --report-only                       # table and plot of what is done

Outputs under ``--out`` (default bench/results): ``learning-cells.jsonl``, ``learning.json`` (settings,
per-world curves, paired differences, efficiency, masked share, warm-up check, timings) and
``learning.png``. This measures the learning dynamics of a toy, not the quality of a real model; the
results and their reading are in docs/learning-benchmark.md.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_report  # noqa: E402  (bench/ is not a package)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CELLS_FILE = "learning-cells.jsonl"


@dataclass(frozen=True)
class Arm:
    """``prompt``: ``criteria`` (the criteria's steps and rules) or ``generic`` (labels only, label-only
    completions); ``rl``: the RLStageConfig fields that differ from plain GRPO."""

    prompt: str
    rl: dict[str, Any]


ARMS: dict[str, Arm] = {
    "generic": Arm("generic", {"sam": {"mode": "off"}}),
    "off": Arm("criteria", {"sam": {"mode": "off"}}),
    "hard": Arm("criteria", {"sam": {"mode": "hard"}}),
    "hard+renorm": Arm("criteria", {"sam": {"mode": "hard", "renormalize": True}}),
    "soft": Arm("criteria", {"sam": {"mode": "soft", "alpha": 0.3}}),
    "first_error": Arm("criteria", {"sam": {"mode": "first_error"}}),
    "hard+step": Arm("criteria", {"sam": {"mode": "hard"}, "rewards": {"step_weight": 0.5}}),
}
CORE_ARMS = ("generic", "off", "hard")
WORLDS = {"catalogue": "esci", "notes": "notes-rules"}  # world -> criteria preset
SPLITS = {"train": 0.7, "dev": 0.1, "test": 0.2}  # shares of queries
# Settings that do not change a cell's result (the rest make its fingerprint).
NOT_FINGERPRINTED = {"seeds", "variant_seeds", "arms", "worlds", "jobs", "groups", "out", "work", "threads",
                     "report_only", "stop_after_s", "warmup_eval_every", "seed_list", "variant_seed_list", "arm_list", "world_list",
                     "warmup_step_map"}

log = logging.getLogger("bench.learning")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worlds", default=",".join(WORLDS), help=f"Worlds, from {', '.join(WORLDS)}.")
    p.add_argument("--arms", default=",".join(ARMS), help=f"Arms, from {', '.join(ARMS)}.")
    p.add_argument("--seeds", default="0,1,2,3,4,5", help="Seeds of the core arms (generic, off, hard).")
    p.add_argument("--variant-seeds", default="0,1,2", help="Seeds of the other arms.")
    p.add_argument("--steps", type=int, default=150, help="GRPO optimizer steps per cell.")
    p.add_argument("--eval-every", type=int, default=25, help="GRPO steps between test evaluations.")
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--queries", type=int, default=1200, help="World queries (8 items each), split 70/10/20.")
    p.add_argument("--eval-pairs", type=int, default=640,
                   help="Evaluate on seeded samples of this many dev and test pairs (0: all of them).")
    p.add_argument("--hidden", type=int, default=128, help="Hidden size of the tiny Llama.")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=1000, help="BPE vocabulary size.")
    p.add_argument("--warmup-steps", default="catalogue=2500,notes=2500",
                   help="Warm-up SFT steps: one number, or world=steps,... (fixed; calibrated once).")
    p.add_argument("--warmup-eval-every", type=int, default=0,
                   help="Also evaluate dev every this many warm-up steps (calibration; 0: at the end only).")
    p.add_argument("--warmup-lr", type=float, default=1e-3)
    p.add_argument("--warmup-batch", type=int, default=16)
    p.add_argument("--prompts", type=int, default=8, help="GRPO prompts per step.")
    p.add_argument("--generations", type=int, default=8, help="GRPO completions per prompt.")
    p.add_argument("--lr", type=float, default=3e-4, help="GRPO learning rate (constant).")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (1 is fastest here).")
    p.add_argument("--jobs", type=int, default=1, help="Processes; each takes whole world × seed groups.")
    p.add_argument("--groups", default=None, help=argparse.SUPPRESS)  # world:seed,... for a --jobs child
    p.add_argument("--stop-after-s", type=float, default=None,
                   help="Start no new cell after this many seconds (finished cells stay; a rerun resumes).")
    p.add_argument("--out", type=Path, default=RESULTS, help="Where the cells, learning.json and learning.png go.")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "learning-bench",
                   help="Warm-up checkpoints, tokenizers, TRL run folders (kept so a run can resume).")
    p.add_argument("--report-only", action="store_true", help="Train nothing: summarise the cells in --out.")
    args = p.parse_args(argv)
    args.world_list = _names(p, args.worlds, WORLDS, "world")
    args.arm_list = _names(p, args.arms, ARMS, "arm")
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.variant_seed_list = [int(s) for s in args.variant_seeds.split(",") if s.strip()]
    args.warmup_step_map = _warmup_steps(p, args.warmup_steps)
    if args.steps < 1 or args.eval_every < 1:
        p.error("--steps and --eval-every must be >= 1")
    return args


def _names(p, text: str, known, what: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in names if x not in known]
    if unknown:
        p.error(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def _warmup_steps(p, text: str) -> dict[str, int]:
    if "=" not in text:
        return dict.fromkeys(WORLDS, int(text))
    steps = {k.strip(): int(v) for k, v in (item.split("=") for item in text.split(",") if item.strip())}
    missing = [w for w in WORLDS if w not in steps]
    if missing:
        p.error(f"--warmup-steps: no steps for world(s) {', '.join(missing)}")
    return steps


def eval_steps(args) -> list[int]:
    return sorted({0, *range(args.eval_every, args.steps + 1, args.eval_every), args.steps})


def fingerprint(args) -> str:
    """What a cell's result depends on besides its world, arm and seed."""
    kept = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in NOT_FINGERPRINTED}
    kept["warmup_steps"] = args.warmup_step_map
    kept["arms"] = {name: vars(arm) for name, arm in ARMS.items()}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def planned_cells(args) -> list[tuple[str, str, int]]:
    """(world, arm, seed) of every cell the arguments ask for."""
    return [(world, arm, seed) for world in args.world_list for arm in args.arm_list
            for seed in (args.seed_list if arm in CORE_ARMS else args.variant_seed_list)]


# -- cells on disk ---------------------------------------------------------------------------------


def cell_key(world: str, arm: str, seed: int) -> str:
    return f"{world}/{arm}/seed{seed}"


def read_cells(out: Path) -> list[dict]:
    path = out / CELLS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_cell(out: Path, cell: dict) -> None:
    """One line per finished cell, appended under a lock (``--jobs`` processes share the file)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / CELLS_FILE).open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(cell) + "\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


def finished_cells(args) -> dict[str, dict]:
    """Key -> cell of the cells already in --out; cells of other settings are an error, not a skip."""
    cells = {}
    mine = fingerprint(args)
    for cell in read_cells(args.out):
        if cell["fingerprint"] != mine:
            raise SystemExit(f"{args.out / CELLS_FILE} holds cell {cell['key']} run with other settings "
                             f"({cell['settings']}); use another --out, or move that file away")
        cells[cell["key"]] = cell
    return cells


# -- a world: data, tokenizer, prompts -------------------------------------------------------------


@dataclass
class World:
    """One world's splits and criteria, its tokenizer, and per prompt kind the criteria the prompts and
    completions are rendered from (generic: no steps, no rules)."""

    name: str
    criteria: Any
    splits: dict[str, list]
    tokenizer: Any = None
    prompt_criteria: dict[str, Any] = field(default_factory=dict)

    def messages(self, kind: str, pair) -> list[dict[str, str]]:
        """System message of the prompt kind, then the user message with the query and the title only."""
        from genrel.prompt import render_messages

        bare = pair.model_copy(update={"text": "", "fields": {}})
        return render_messages(self.prompt_criteria[kind], bare)

    def completion(self, kind: str, pair) -> str:
        """The warm-up's gold trace: verdict-only steps (criteria) or the label alone (generic)."""
        from genrel.train.teacher import gold_completion

        return gold_completion(self.prompt_criteria[kind], pair)

    def max_new_tokens(self, kind: str) -> int:
        longest = max(len(self.tokenizer(self.completion(kind, p))["input_ids"]) for p in self.splits["train"])
        return longest + (8 if kind == "criteria" else 2)  # room for a wrong but parseable completion and the end


def load_world(name: str, args, work: Path) -> World:
    """The world's query-disjoint splits and its tokenizer (trained once, then read from ``work``)."""
    from genrel.criteria import load_criteria

    criteria = load_criteria(WORLDS[name])
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as lock:  # --jobs children build a world and its tokenizer once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _load_world(name, criteria, folder, args)


def _load_world(name: str, criteria, folder: Path, args) -> World:
    from transformers import AutoTokenizer

    from genrel.data import load_pairs
    from genrel.data.splits import split_by_query

    path = folder / "world.jsonl"
    if not path.exists():
        if name == "catalogue":
            from genrel.demo.world import WorldConfig, write_world

            write_world(WorldConfig(seed=args.world_seed, queries=args.queries), path)
        else:
            from genrel.demo.notes_world import NotesWorldConfig, write_world

            write_world(NotesWorldConfig(seed=args.world_seed, queries=args.queries), path)
    splits = split_by_query(load_pairs(path, criteria).pairs, SPLITS, seed=args.world_seed)
    world = World(name, criteria, splits, prompt_criteria={
        "criteria": criteria, "generic": criteria.model_copy(update={"steps": [], "rules": []})})
    tok_dir = folder / "tokenizer"
    world.tokenizer = AutoTokenizer.from_pretrained(tok_dir) if tok_dir.exists() else world_tokenizer(world, args.vocab)
    if not tok_dir.exists():
        world.tokenizer.save_pretrained(tok_dir)
    return world


def world_tokenizer(world: World, vocab_size: int):
    """BPE trained on the train split's user messages and gold traces of both prompt kinds (test
    queries stay unseen), with the grammar's tags and each kind's whole system message as added tokens:
    byte-level pre-tokenization would split ``<step id="type">`` into five, and generation length is
    what the benchmark's time goes to."""
    from genrel.grammar import LABEL_CLOSE, LABEL_OPEN, STEP_CLOSE, step_open
    from genrel.models.tiny import tiny_tokenizer

    train = world.splits["train"]
    corpus = [world.messages("criteria", p)[1]["content"] + "\n" + world.completion(kind, p)
              for p in train for kind in ("criteria", "generic")]
    tokenizer = tiny_tokenizer(vocab_size, corpus=corpus)
    tokenizer.add_tokens([*(step_open(s.id) for s in world.criteria.steps), STEP_CLOSE, LABEL_OPEN, LABEL_CLOSE])
    tokenizer.add_tokens([world.messages(kind, train[0])[0]["content"] for kind in ("criteria", "generic")])
    return tokenizer


# -- evaluation ------------------------------------------------------------------------------------


@dataclass
class EvalSet:
    """Chat prompts of held-out pairs of one prompt kind, with gold labels and verdicts."""

    prompts: list[str]
    gold: list[str]
    gold_verdicts: list[dict[str, str]]

    @classmethod
    def build(cls, world: World, kind: str, pairs: list) -> EvalSet:
        from genrel.prompt import chat_prompt

        prompts = [chat_prompt(world.tokenizer, world.messages(kind, p)) for p in pairs]
        verdicts = [(p.verdicts or {}) if kind == "criteria" else {} for p in pairs]
        return cls(prompts, [p.label for p in pairs], verdicts)


def evaluate(model, tokenizer, criteria, data: EvalSet, max_new_tokens: int, batch_size: int = 64) -> dict[str, Any]:
    """Label accuracy (label read at the label position after greedy steps), per-step verdict accuracy
    against the gold verdicts (missing verdict = wrong; overall and per step), label/step consistency
    (share of outputs with every verdict whose verdicts agree with their label) and format-error rate.
    Step metrics are None for a criteria without checked steps."""
    import torch

    from genrel.score.lm import LMScorer
    from genrel.verify import consistent

    scorer = LMScorer(model, tokenizer, criteria, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=False)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        scored = [s for i in range(0, len(data.prompts), batch_size)
                  for s in scorer.score_prompts(data.prompts[i : i + batch_size])]
    model.train(was_training)
    n = len(scored)
    out: dict[str, Any] = {
        "label_accuracy": sum(s.label == g for s, g in zip(scored, data.gold, strict=True)) / n,
        "format_error_rate": sum(s.format_error is not None for s in scored) / n,
        "step_accuracy": None, "consistency": None, "step_accuracy_by_step": None,
    }
    checked = [s.id for s in criteria.checked_steps]
    if checked:
        right = {k: 0 for k in checked}
        total = {k: 0 for k in checked}
        for s, verdicts in zip(scored, data.gold_verdicts, strict=True):
            for k, gold in verdicts.items():
                total[k] += 1
                right[k] += s.verdicts.get(k) == gold
        whole = [s for s in scored if all(k in s.verdicts for k in checked)]
        out["step_accuracy"] = sum(right.values()) / max(sum(total.values()), 1)
        out["step_accuracy_by_step"] = {k: right[k] / total[k] for k in checked if total[k]}
        out["consistency"] = sum(consistent(criteria, s.verdicts, s.label) for s in whole) / len(whole) if whole else 0.0
    return out


# -- warm-up SFT -----------------------------------------------------------------------------------


def warm_up(args, world: World, kind: str, seed: int, dev: EvalSet, test: EvalSet, work: Path) -> dict:
    """The warm-up checkpoint of one world × seed × prompt kind, trained once and kept on disk:
    ``{"path", "sha256", "steps", "dev", "test", "history", "seconds"}``."""
    folder = work / world.name / f"seed{seed}"
    meta_path = folder / f"warmup-{kind}.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text(encoding="utf-8"))
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from genrel.models.tiny import tiny_causal_lm
    from genrel.train.sft import SFTStageConfig, build_sft_trainer

    t0 = time.perf_counter()
    steps = args.warmup_step_map[world.name]
    criteria, max_new = world.prompt_criteria[kind], world.max_new_tokens(kind)
    rows = [{"prompt": world.messages(kind, p), "completion": [{"role": "assistant", "content": world.completion(kind, p)}]}
            for p in world.splits["train"]]
    cfg = SFTStageConfig(
        model="(in memory)", criteria=WORLDS[world.name], traces="(in memory: gold traces of the train split)",
        output_dir=str(folder / f"sft-{kind}"), max_length=256, max_steps=steps, lr=args.warmup_lr,
        batch_size=args.warmup_batch, save_steps=10**6, seed=seed,
        trl={"save_strategy": "no", "bf16": False, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 20},
    )
    model = tiny_causal_lm(world.tokenizer, hidden_size=args.hidden, layers=args.layers, seed=seed)
    history: list[dict] = []

    class DevHistory(TrainerCallback):
        def on_step_end(self, a, state, control, model=None, **kw):
            if args.warmup_eval_every and state.global_step % args.warmup_eval_every == 0 and state.global_step < steps:
                history.append({"step": state.global_step, **evaluate(model, world.tokenizer, criteria, dev, max_new)})
                log.info("%s seed %d warm-up (%s) step %d: dev %s", world.name, seed, kind, state.global_step,
                         _fmt(history[-1]))

    trainer = build_sft_trainer(cfg, model, world.tokenizer, Dataset.from_list(rows), callbacks=[DevHistory()])
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    meta = {"format": kind, "steps": trainer.state.global_step, "history": history,
            "dev": evaluate(model, world.tokenizer, criteria, dev, max_new),
            "test": evaluate(model, world.tokenizer, criteria, test, max_new)}
    history.append({"step": meta["steps"], **meta["dev"]})
    path = folder / f"warmup-{kind}.pt"
    torch.save(model.state_dict(), path)
    meta.update(path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                seconds=round(time.perf_counter() - t0, 1))
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    log.info("%s seed %d warm-up (%s): %d steps in %.0f s; dev %s; test %s", world.name, seed, kind, meta["steps"],
             meta["seconds"], _fmt(meta["dev"]), _fmt(meta["test"]))
    return meta


# -- GRPO cells ------------------------------------------------------------------------------------


def run_cell(args, world: World, arm: str, seed: int, warmup: dict, test: EvalSet, work: Path) -> dict:
    """GRPO steps of one arm from the warm-up checkpoint: the test curve at :func:`eval_steps`, every
    step's training log (reward, SAM's masked-token share, step metrics), the data order, timings."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from genrel.models.tiny import tiny_causal_lm
    from genrel.train.rl import build_trainer, rl_example
    from genrel.train.rl_config import RLStageConfig
    from genrel.train.rl_trainer import SAMGRPOTrainer

    kind = ARMS[arm].prompt
    criteria, max_new = world.prompt_criteria[kind], world.max_new_tokens(kind)
    run_dir = work / world.name / f"seed{seed}" / f"rl-{arm}"
    if (run_dir / "metrics.jsonl").exists():
        (run_dir / "metrics.jsonl").unlink()  # an interrupted attempt: this one starts over
    cfg = RLStageConfig.model_validate({
        "model": "(in memory)", "criteria": WORLDS[world.name], "data": {"train": "(in memory: train split)"},
        "output_dir": str(run_dir), "num_generations": args.generations, "prompts_per_step": args.prompts,
        "max_completion_length": max_new, "steps": args.steps, "save_steps": 10**6, "lr": args.lr,
        "temperature": args.temperature, "seed": seed,
        # fp32 pinned, as in the warm-up: the result must not depend on the host's bf16 support
        "trl": {"save_strategy": "no", "disable_tqdm": True, "lr_scheduler_type": "constant", "bf16": False},
        **copy.deepcopy(ARMS[arm].rl),
    })
    rows = [rl_example(p if kind == "criteria" else p.model_copy(update={"verdicts": None}), world.messages(kind, p))
            for p in world.splits["train"]]
    model = tiny_causal_lm(world.tokenizer, hidden_size=args.hidden, layers=args.layers, seed=seed)
    model.load_state_dict(torch.load(warmup["path"], weights_only=True))
    curve = {"0": warmup["test"]}
    timing = {"eval": 0.0}
    order: list[list[str]] = []

    class EvalAt(TrainerCallback):
        def on_step_end(self, a, st, control, model=None, **kw):
            if st.global_step in eval_steps(args) and st.global_step:
                t = time.perf_counter()
                curve[str(st.global_step)] = evaluate(model, world.tokenizer, criteria, test, max_new)
                timing["eval"] += time.perf_counter() - t
                log.info("%s seed %d %s step %d: test %s", world.name, seed, arm, st.global_step,
                         _fmt(curve[str(st.global_step)]))

    class RecordingTrainer(SAMGRPOTrainer):
        """Records which training rows each generation batch drew: the arms' data order."""

        def _generate_and_score_completions(self, inputs):
            order.append([row["row_id"] for row in inputs])
            return super()._generate_and_score_completions(inputs)

    trainer = build_trainer(cfg, criteria, model, world.tokenizer, Dataset.from_list(rows), callbacks=[EvalAt()],
                            trainer_class=RecordingTrainer)
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    return {
        "key": cell_key(world.name, arm, seed), "world": world.name, "arm": arm, "seed": seed,
        "prompt": kind, "curve": curve, "train": train_series(run_dir / "metrics.jsonl"),
        "warmup": {k: warmup[k] for k in ("format", "steps", "sha256", "dev", "test", "seconds")},
        "data_order_sha256": hashlib.sha256(json.dumps(order).encode()).hexdigest(),
        "data_order_head": order[:2],
        "prompt_example": trainer.processing_class.apply_chat_template(rows[0]["prompt"], tokenize=False),
        "max_completion_tokens": max_new,
        "bf16": bool(trainer.args.bf16), "commit": _git_commit(),  # what ran, to spot a changed checkout
        "seconds": {"grpo_and_eval": round(total, 1), "eval": round(timing["eval"], 1),
                    "per_grpo_step": round((total - timing["eval"]) / args.steps, 3)},
    }


TRAIN_SERIES = ("reward", "frac_reward_zero_std", "sam/masked_token_share", "steps/label_consistency",
                "eval/label_accuracy", "format_error_rate", "entropy", "step_time")


def train_series(metrics_path: Path) -> dict[str, list]:
    """Per GRPO step, what TRL and SAMGRPOTrainer logged (``metrics.jsonl``), for the keys present."""
    records = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines()]
    records = [r for r in records if "reward" in r]
    keys = [k for k in TRAIN_SERIES if any(k in r for r in records)]
    keys += sorted({k for r in records for k in r if k.startswith("steps/") and k.endswith("_accuracy")})
    return {k: [r.get(k) for r in records] for k in keys}


# -- the recipe ------------------------------------------------------------------------------------


def run_groups(args, groups: list[tuple[str, int]], done: dict[str, dict], started: float) -> None:
    """Train every missing cell of the given world × seed groups, appending each as it finishes."""
    import datasets
    import torch

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    worlds: dict[str, World] = {}
    for world_name, seed in groups:
        arms = [a for a in args.arm_list if (world_name, a, seed) in set(planned_cells(args))
                and cell_key(world_name, a, seed) not in done]
        if not arms:
            continue
        if world_name not in worlds:
            worlds[world_name] = load_world(world_name, args, args.work)
        world = worlds[world_name]
        dev_pairs, test_pairs = (eval_sample(world.splits[name], args) for name in ("dev", "test"))
        for arm in arms:
            if args.stop_after_s is not None and time.perf_counter() - started > args.stop_after_s:
                log.info("--stop-after-s reached: no new cell started (a rerun resumes)")
                return
            kind = ARMS[arm].prompt
            dev = EvalSet.build(world, kind, dev_pairs)
            test = EvalSet.build(world, kind, test_pairs)
            warmup = warm_up(args, world, kind, seed, dev, test, args.work)
            t0 = time.perf_counter()
            cell = run_cell(args, world, arm, seed, warmup, test, args.work)
            cell.update(fingerprint=fingerprint(args), settings=settings(args),
                        seconds={**cell["seconds"], "cell": round(time.perf_counter() - t0, 1)})
            append_cell(args.out, cell)
            log.info("cell %s done in %.0f s (%.2f s per GRPO step)", cell["key"], cell["seconds"]["cell"],
                     cell["seconds"]["per_grpo_step"])


def eval_sample(pairs: list, args) -> list:
    """A seeded sample of ``--eval-pairs`` pairs, in their order (all when there are fewer)."""
    import random

    if not args.eval_pairs or len(pairs) <= args.eval_pairs:
        return pairs
    keep = set(random.Random(args.world_seed).sample(range(len(pairs)), args.eval_pairs))
    return [p for i, p in enumerate(pairs) if i in keep]


def settings(args) -> dict:
    kept = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in NOT_FINGERPRINTED}
    return {**kept, "warmup_steps": args.warmup_step_map}


def shard(groups: list[tuple[str, int]], costs: dict[tuple[str, int], int], jobs: int) -> list[list[tuple[str, int]]]:
    """Greedy longest-first split of the groups over ``jobs`` processes by their count of missing cells."""
    shards: list[list[tuple[str, int]]] = [[] for _ in range(jobs)]
    load = [0] * jobs
    for group in sorted(groups, key=lambda g: -costs[g]):
        i = load.index(min(load))
        shards[i].append(group)
        load[i] += costs[group]
    return [s for s in shards if s]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("transformers", "trl", "datasets", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.perf_counter()
    args.work = args.work / fingerprint(args)  # other settings, other warm-ups
    if not args.report_only:
        done = finished_cells(args)
        missing = [c for c in planned_cells(args) if cell_key(*c) not in done]
        costs: dict[tuple[str, int], int] = {}
        for world, _arm, seed in missing:
            costs[(world, seed)] = costs.get((world, seed), 0) + 1
        groups = list(costs)
        if args.groups is not None:
            wanted = {(g.split(":")[0], int(g.split(":")[1])) for g in args.groups.split(",") if g}
            groups = [g for g in groups if g in wanted]
        log.info("%d of %d planned cells done; %d to run in %d world × seed group(s)",
                 len(planned_cells(args)) - len(missing), len(planned_cells(args)), len(missing), len(groups))
        if args.jobs > 1 and args.groups is None and groups:
            run_children(argv if argv is not None else sys.argv[1:], shard(groups, costs, args.jobs))
        else:
            run_groups(args, groups, done, started)
        if args.groups is not None:
            return {}
    return report(args, time.perf_counter() - started)


def run_children(argv: list[str], shards: list[list[tuple[str, int]]]) -> None:
    """One child process per shard, each running its groups; this process waits for all of them."""
    children = []
    for i, groups in enumerate(shards):
        spec = ",".join(f"{w}:{s}" for w, s in groups)
        cmd = [sys.executable, str(Path(__file__).resolve()), *_without_jobs(argv), "--jobs", "1", "--groups", spec]
        log.info("job %d: %s", i, spec)
        children.append(subprocess.Popen(cmd))
    failed = [c.args for c in children if c.wait() != 0]
    if failed:
        raise SystemExit(f"{len(failed)} job(s) failed; finished cells are saved, a rerun resumes")


def _without_jobs(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--jobs":
            skip = True
        elif not a.startswith("--jobs="):
            out.append(a)
    return out


def report(args, seconds: float) -> dict:
    """Summarise every cell in --out of these settings: learning.json, learning.png, the printed tables."""
    cells = list(finished_cells(args).values())
    if not cells:
        print(f"no finished cells in {args.out / CELLS_FILE}")
        return {}
    summary = learning_report.summarise(cells)
    planned = planned_cells(args)
    result = {
        "command": "python bench/learning.py " + " ".join(sys.argv[1:]),
        "commit": _git_commit(),
        "settings": settings(args),
        "arms": {name: vars(arm) for name, arm in ARMS.items()},
        "eval_steps": eval_steps(args),
        "cells": {"done": len(cells), "planned": len(planned),
                  "missing": [cell_key(*c) for c in planned if cell_key(*c) not in {x["key"] for x in cells}]},
        "summary": summary,
        "timing": timing(cells),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    learning_report.plot(cells, summary, args.arm_list, args.out / "learning.png")
    shown = [s for s in eval_steps(args) if s in (0, args.steps // 2, args.steps)]
    for world, ws in summary.items():
        print(f"\n## {world} ({WORLDS[world]})\n")
        print(learning_report.table(ws, args.arm_list, shown))
    print()
    for line in learning_report.warmup_lines(summary):
        print(line)
    t = result["timing"]
    missing = result["cells"]["missing"]
    warmups_left = len({(w, int(s[4:]), ARMS[a].prompt) for w, a, s in (k.split("/") for k in missing)}
                       - {(c["world"], c["seed"], c["warmup"]["format"]) for c in cells})
    left_s = (len(missing) * t["cell_s"] + warmups_left * t["warmup_s"]) / max(args.jobs, 1)
    result["timing"]["estimated_left_s"] = round(left_s) if missing else 0
    print(f"\n{len(cells)} of {len(planned)} planned cells; {t['per_grpo_step_s']:.2f} s per GRPO step, "
          f"{t['cell_s']:.0f} s per cell, {t['warmup_s']:.0f} s per warm-up (medians); "
          + (f"{len(missing)} cells and {warmups_left} warm-ups left: about {left_s / 3600:.1f} h at "
             f"--jobs {args.jobs}; " if missing else "")
          + f"saved {args.out / 'learning.json'} and learning.png")
    (args.out / "learning.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def timing(cells: list[dict]) -> dict[str, float]:
    import statistics

    def median(xs):
        return statistics.median(xs) if xs else float("nan")

    warmups = {(c["world"], c["seed"], c["warmup"]["format"]): c["warmup"]["seconds"] for c in cells}
    return {"per_grpo_step_s": median([c["seconds"]["per_grpo_step"] for c in cells]),
            "cell_s": median([c["seconds"]["cell"] for c in cells]),
            "eval_s_per_cell": median([c["seconds"]["eval"] for c in cells]),
            "warmup_s": median(list(warmups.values())),
            "cells_s_total": round(sum(c["seconds"]["cell"] for c in cells), 1),
            "warmups_s_total": round(sum(warmups.values()), 1)}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _fmt(m: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in m.items() if isinstance(v, float))


if __name__ == "__main__":
    main()
