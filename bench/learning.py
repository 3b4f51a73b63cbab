"""SAM learning benchmark: does Stepwise Advantage Masking make GRPO learn faster or better?

A controlled comparison on the catalogue world (genrel.demo.world, ``esci`` criteria, per-step gold
verdicts), split query-disjoint 70/10/20 into train/dev/test. Per seed: a tiny Llama (2 layers, hidden
128) trained FROM SCRATCH with a byte-level BPE tokenizer trained in-process on the train split's
prompts and traces (:func:`genrel.models.tiny.tiny_tokenizer`, grammar tags added as whole tokens); a
deliberately partial warm-up SFT (``genrel.train.sft``'s trainer) on verdict-only gold traces
(:func:`genrel.train.teacher.gold_completion`, what ``genrel teacher --from-gold`` writes) that stops
once dev label accuracy reaches ``--warmup-target`` (checked every ``--warmup-eval-every`` steps) or at
``--warmup-max-steps``; then, from that one checkpoint, N GRPO steps per arm with
:class:`~genrel.train.rl_trainer.SAMGRPOTrainer` (``genrel.train.rl.build_trainer``). Arms differ only
in the SAM / reward fields of :data:`ARMS`; data, model, seed, prompt order and step budget are shared.

    python bench/learning.py                                        # 3 seeds x 5 arms x 40 steps
    python bench/learning.py --seeds 0 --steps 10 --arms off,hard   # a quick look (a few minutes)

Evaluation on the test split at steps 0, N/2 and N (``--eval-at``): the model writes its steps greedily
until ``<label>`` and the label is read from its probabilities there (:class:`genrel.score.lm.LMScorer`,
form ``reasoning``, as ``genrel eval`` does). **Label accuracy**: that argmax label against gold.
**Step accuracy**: right verdicts ÷ the verdicts the gold makes checkable (type and complement always,
specs when the type matches); a missing verdict counts as wrong. Mean ± sd over seeds.

The prompt is compact on purpose: the user message of :func:`genrel.prompt.render_messages` for the
query and the product title, without the system message (task, labels, steps, rules, format: the same
for every pair, so a model trained from scratch learns nothing from it) and without the product text and
fields (the title repeated, a per-type blurb, and brand/colour/size, which the title holds). torch runs
on one thread by default: this model is too small for a second one to pay, and on a shared CPU extra
threads make generation many times slower. Outputs: ``bench/results/learning.json`` (settings, per-seed
curves, warm-up history, timings) and ``learning.png``. This measures the learning dynamics of a toy,
not the quality of a real model; the results and their reading are in docs/learning-benchmark.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"
CRITERIA = "esci"
# Arm name -> RLStageConfig fields that differ from plain GRPO. Everything else is shared.
ARMS: dict[str, dict[str, Any]] = {
    "off": {"sam": {"mode": "off"}},
    "hard": {"sam": {"mode": "hard"}},
    "soft": {"sam": {"mode": "soft", "alpha": 0.3}},
    "first_error": {"sam": {"mode": "first_error"}},
    "hard+step": {"sam": {"mode": "hard"}, "rewards": {"step_weight": 0.5}},
}
SPLITS = {"train": 0.7, "dev": 0.1, "test": 0.2}  # shares of queries; dev stops the warm-up, test is reported

log = logging.getLogger("bench.learning")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2", help="Model/RL seeds, comma-separated (the world is fixed).")
    p.add_argument("--arms", default=",".join(ARMS), help=f"Arms, comma-separated, from {', '.join(ARMS)}.")
    p.add_argument("--steps", type=int, default=40, help="GRPO optimizer steps per arm.")
    p.add_argument("--eval-at", default=None, help="Steps to evaluate at (default: 0, steps/2, steps).")
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--queries", type=int, default=400, help="World queries (8 products each), split 70/10/20.")
    p.add_argument("--hidden", type=int, default=128, help="Hidden size of the tiny Llama.")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=1000, help="BPE vocabulary size.")
    p.add_argument("--warmup-target", type=float, default=0.5, help="Stop the warm-up at this dev label accuracy.")
    p.add_argument("--warmup-max-steps", type=int, default=1000)
    p.add_argument("--warmup-eval-every", type=int, default=100, help="Warm-up steps between dev evaluations.")
    p.add_argument("--warmup-lr", type=float, default=1e-3)
    p.add_argument("--warmup-batch", type=int, default=16)
    p.add_argument("--prompts", type=int, default=8, help="GRPO prompts per step.")
    p.add_argument("--generations", type=int, default=8, help="GRPO completions per prompt.")
    p.add_argument("--lr", type=float, default=3e-4, help="GRPO learning rate (constant).")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads. 1 is fastest for this tiny model, most of all on a shared CPU.")
    p.add_argument("--out", type=Path, default=RESULTS, help="Where learning.json and learning.png go.")
    p.add_argument("--work", type=Path, default=None, help="Scratch folder for run folders (default: a temp dir).")
    p.add_argument("--report", type=Path, nargs="+", default=None, metavar="JSON",
                   help="Train nothing: summarise the runs of saved learning.json files again, pooling their "
                   "seeds (same settings otherwise); table, json and plot go under --out.")
    args = p.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.arm_list = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in args.arm_list if a not in ARMS]
    if unknown:
        p.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    at = args.eval_at or f"0,{args.steps // 2},{args.steps}"
    args.eval_steps = sorted({int(s) for s in at.split(",") if s.strip()})
    if not args.eval_steps or args.eval_steps[0] < 0 or args.eval_steps[-1] > args.steps:
        p.error(f"--eval-at must lie within 0..{args.steps}")
    return args


# -- the world, the tokenizer, the prompts ---------------------------------------------------------


def world_splits(queries: int, seed: int, work: Path) -> dict[str, list]:
    """Query-disjoint train/dev/test pairs of the catalogue world."""
    from genrel.criteria import load_criteria
    from genrel.data import load_pairs
    from genrel.data.splits import split_by_query
    from genrel.demo.world import WorldConfig, write_world

    path = write_world(WorldConfig(seed=seed, queries=queries), work / "world.jsonl")
    pairs = load_pairs(path, load_criteria(CRITERIA)).pairs
    return split_by_query(pairs, SPLITS, seed=seed)


def compact_messages(criteria, pair) -> list[dict[str, str]]:
    """The user message of :func:`render_messages` for the pair's query and title only (see the module
    docstring for why): the system message, the text (title + a per-type blurb) and the fields (brand,
    colour, size: all in the title) are left out."""
    from genrel.prompt import render_messages

    bare = pair.model_copy(update={"text": "", "fields": {}})
    return [m for m in render_messages(criteria, bare) if m["role"] != "system"]


def world_tokenizer(criteria, pairs: list, vocab_size: int):
    """BPE trained on the train split's prompts and gold traces (test queries stay unseen), with the
    grammar's tags as whole tokens: byte-level pre-tokenization would split ``<step id="type">`` into
    five, and generation length is what the bench's time goes to."""
    from genrel.grammar import LABEL_CLOSE, LABEL_OPEN, STEP_CLOSE, step_open
    from genrel.models.tiny import tiny_tokenizer
    from genrel.train.teacher import gold_completion

    corpus = [compact_messages(criteria, p)[0]["content"] + "\n" + gold_completion(criteria, p) for p in pairs]
    tokenizer = tiny_tokenizer(vocab_size, corpus=corpus)
    tokenizer.add_tokens([*(step_open(s.id) for s in criteria.steps), STEP_CLOSE, LABEL_OPEN, LABEL_CLOSE])
    return tokenizer


# -- evaluation ------------------------------------------------------------------------------------


@dataclass
class EvalSet:
    """Rendered chat prompts of held-out pairs, with their gold labels and verdicts."""

    prompts: list[str]
    gold: list[str]
    gold_verdicts: list[dict[str, str]]

    @classmethod
    def build(cls, criteria, pairs: list, tokenizer) -> EvalSet:
        from genrel.prompt import chat_prompt

        prompts = [chat_prompt(tokenizer, compact_messages(criteria, p)) for p in pairs]
        return cls(prompts, [p.label for p in pairs], [p.verdicts or {} for p in pairs])


def evaluate(model, tokenizer, criteria, data: EvalSet, max_new_tokens: int, batch_size: int = 64) -> dict[str, float]:
    """Label accuracy (label read at the label position after greedy steps), step accuracy (missing
    verdict = wrong) and format-error rate."""
    import torch

    from genrel.score.lm import LMScorer
    from genrel.verify import RIGHT, step_status

    scorer = LMScorer(model, tokenizer, criteria, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=False)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        scored = [s for i in range(0, len(data.prompts), batch_size)
                  for s in scorer.score_prompts(data.prompts[i : i + batch_size])]
    model.train(was_training)
    right_steps = checkable = 0
    for s, gold, verdicts in zip(scored, data.gold, data.gold_verdicts, strict=True):
        statuses = step_status(criteria, s.verdicts, gold, verdicts)
        by_id = dict(zip((st.id for st in criteria.steps), statuses))
        checkable += len(verdicts)
        right_steps += sum(by_id[step_id] == RIGHT for step_id in verdicts)
    n = len(scored)
    return {
        "label_accuracy": sum(s.label == g for s, g in zip(scored, data.gold)) / n,
        "step_accuracy": right_steps / checkable if checkable else float("nan"),
        "format_error_rate": sum(s.format_error is not None for s in scored) / n,
    }


# -- warm-up SFT -----------------------------------------------------------------------------------


def warm_up(args, seed: int, criteria, tokenizer, train: list, dev: EvalSet, max_new_tokens: int, work: Path):
    """The shared warm-up checkpoint of one seed: (state_dict, steps taken, dev metrics at the stop)."""
    from datasets import Dataset
    from transformers import TrainerCallback

    from genrel.models.tiny import tiny_causal_lm
    from genrel.train.sft import SFTStageConfig, build_sft_trainer
    from genrel.train.teacher import gold_completion

    rows = [{"prompt": compact_messages(criteria, p),
             "completion": [{"role": "assistant", "content": gold_completion(criteria, p)}]} for p in train]
    cfg = SFTStageConfig(
        model="(in memory)", criteria=CRITERIA, traces="(in memory: gold_completion of the train split)",
        output_dir=str(work / f"sft-seed{seed}"), max_length=256, max_steps=args.warmup_max_steps,
        lr=args.warmup_lr, batch_size=args.warmup_batch, save_steps=10**6, seed=seed,
        trl={"save_strategy": "no", "bf16": False, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 20},
    )
    model = tiny_causal_lm(tokenizer, hidden_size=args.hidden, layers=args.layers, seed=seed)
    history: list[dict[str, float]] = []

    class StopAtTarget(TrainerCallback):
        def on_step_end(self, a, state, control, model=None, **kw):
            if state.global_step % args.warmup_eval_every:
                return
            metrics = evaluate(model, tokenizer, criteria, dev, max_new_tokens)
            history.append({"step": state.global_step, **metrics})
            log.info("seed %d warm-up step %d: dev %s", seed, state.global_step, _fmt_metrics(metrics))
            if metrics["label_accuracy"] >= args.warmup_target:
                control.should_training_stop = True

    trainer = build_sft_trainer(cfg, model, tokenizer, Dataset.from_list(rows), callbacks=[StopAtTarget()])
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    return copy.deepcopy(model.state_dict()), trainer.state.global_step, history


# -- GRPO arms -------------------------------------------------------------------------------------


def run_arm(args, arm: str, seed: int, criteria, tokenizer, state, rl_rows: list, test: EvalSet,
            max_new_tokens: int, step0: dict[str, float], work: Path) -> tuple[dict, dict[str, float]]:
    """N GRPO steps from the warm-up checkpoint: test metrics at each of ``args.eval_steps``, and means
    of the training log (:func:`train_log_means`)."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback

    from genrel.models.tiny import tiny_causal_lm
    from genrel.train.rl import RLStageConfig, build_trainer

    cfg = RLStageConfig.model_validate({
        "model": "(in memory)", "criteria": CRITERIA, "data": {"train": "(in memory: train split)"},
        "output_dir": str(work / f"rl-seed{seed}-{arm}"), "num_generations": args.generations,
        "prompts_per_step": args.prompts, "max_completion_length": max_new_tokens, "steps": args.steps,
        "save_steps": 10**6, "lr": args.lr, "temperature": args.temperature, "seed": seed,
        "trl": {"save_strategy": "no", "disable_tqdm": True, "lr_scheduler_type": "constant"},
        **ARMS[arm],
    })
    model = tiny_causal_lm(tokenizer, hidden_size=args.hidden, layers=args.layers, seed=seed)
    model.load_state_dict(state)
    curve = {0: step0} if 0 in args.eval_steps else {}

    class EvalAt(TrainerCallback):
        def on_step_end(self, a, st, control, model=None, **kw):
            if st.global_step in args.eval_steps:
                curve[st.global_step] = evaluate(model, tokenizer, criteria, test, max_new_tokens)
                log.info("seed %d %s step %d: test %s", seed, arm, st.global_step, _fmt_metrics(curve[st.global_step]))

    trainer = build_trainer(cfg, criteria, model, tokenizer, Dataset.from_list(rl_rows), callbacks=[EvalAt()])
    trainer.remove_callback(PrinterCallback)  # metrics.jsonl in the run folder has every step's log
    trainer.train()
    return curve, train_log_means(Path(cfg.output_dir) / "metrics.jsonl")


# -- summary, table, plot --------------------------------------------------------------------------


def summarise(runs: list[dict], arms: list[str], steps: list[int]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """arm -> step -> metric -> [mean, sd, n] over seeds (sd = 0 with one seed)."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for arm in arms:
        out[arm] = {}
        for step in steps:
            values = [r["curves"][arm][str(step)] for r in runs if str(step) in r["curves"].get(arm, {})]
            out[arm][str(step)] = {
                metric: _mean_sd([v[metric] for v in values])
                for metric in ("label_accuracy", "step_accuracy", "format_error_rate")
            }
    return out


def _mean_sd(xs: list[float]) -> list[float]:
    if not xs:
        return [float("nan"), float("nan"), 0]
    return [statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs)]


def paired_deltas(runs: list[dict], arms: list[str], step: int, baseline: str = "off") -> dict[str, dict]:
    """arm -> metric -> [mean, sd, n] over seeds of (arm - baseline) at ``step``: both arms of a seed
    start from the same checkpoint and see the same prompts, so this difference carries less seed noise
    than the arms' separate means."""
    out: dict[str, dict[str, list[float]]] = {}
    for arm in arms:
        if arm == baseline:
            continue
        pairs = [(r["curves"][arm][str(step)], r["curves"][baseline][str(step)]) for r in runs
                 if str(step) in r["curves"].get(arm, {}) and str(step) in r["curves"].get(baseline, {})]
        out[arm] = {m: _mean_sd([a[m] - b[m] for a, b in pairs]) for m in ("label_accuracy", "step_accuracy")}
    return out


def train_log_means(metrics_path: Path) -> dict[str, float]:
    """Means over the GRPO steps of what TRL and SAMGRPOTrainer logged (``metrics.jsonl``)."""
    keys = ("reward", "frac_reward_zero_std", "sam/masked_token_share", "steps/label_consistency",
            "format_error_rate", "entropy")
    records = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines()]
    records = [r for r in records if "reward" in r]
    means = {}
    for key in keys:
        values = [r[key] for r in records if r.get(key) is not None]
        means[key] = statistics.fmean(values) if values else float("nan")
    return means


def table(summary: dict, steps: list[int]) -> str:
    header = ["arm"] + [f"step {s}: label acc" for s in steps] + [f"step {s}: step acc" for s in steps]
    rows = []
    for arm, by_step in summary.items():
        cells = {m: [_pm(by_step[str(s)][m]) for s in steps] for m in ("label_accuracy", "step_accuracy")}
        rows.append([arm, *cells["label_accuracy"], *cells["step_accuracy"]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def plot(summary: dict, steps: list[int], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=120, layout="constrained")
    panels = [("label_accuracy", "test label accuracy"), ("step_accuracy", "test step accuracy")]
    for i, (metric, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        for arm, by_step in summary.items():
            mean = [by_step[str(s)][metric][0] for s in steps]
            sd = [by_step[str(s)][metric][1] for s in steps]
            ax.errorbar(steps, mean, yerr=sd, marker="o", capsize=3, label=arm)
        ax.set_xlabel("GRPO step")
        ax.set_title(f"{title} (mean ± sd over seeds)")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _pm(mean_sd_n: list[float]) -> str:
    return f"{mean_sd_n[0]:.3f} ± {mean_sd_n[1]:.3f}"


def _fmt_metrics(m: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in m.items())


# -- the recipe ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.report is not None:
        return report(pooled([json.loads(path.read_text(encoding="utf-8")) for path in args.report]), args.out)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("transformers", "trl", "datasets", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import datasets
    import torch

    from genrel.criteria import load_criteria
    from genrel.train.rl import rl_example
    from genrel.train.teacher import gold_completion

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="genrel-learning-"))
    criteria = load_criteria(CRITERIA)
    splits = world_splits(args.queries, args.world_seed, work)
    tokenizer = world_tokenizer(criteria, splits["train"], args.vocab)
    dev, test = (EvalSet.build(criteria, splits[name], tokenizer) for name in ("dev", "test"))
    longest = max(len(tokenizer(gold_completion(criteria, p))["input_ids"]) for p in splits["train"])
    max_new_tokens = longest + 8  # room for a wrong but parseable completion, and the end token
    rl_rows = [rl_example(p, compact_messages(criteria, p)) for p in splits["train"]]
    log.info("world: %s pairs; vocab %d; completions <= %d tokens",
             {k: len(v) for k, v in splits.items()}, len(tokenizer), max_new_tokens)

    runs = []
    for seed in args.seed_list:
        t0 = time.perf_counter()
        state, sft_steps, history = warm_up(args, seed, criteria, tokenizer, splits["train"], dev, max_new_tokens, work)
        step0 = evaluate_state(args, seed, tokenizer, criteria, state, test, max_new_tokens)
        run = {"seed": seed, "warmup_steps": sft_steps, "warmup_dev": history, "curves": {}, "train": {}, "seconds": {}}
        run["seconds"]["warmup"] = round(time.perf_counter() - t0, 1)
        for arm in args.arm_list:
            t0 = time.perf_counter()
            curve, run["train"][arm] = run_arm(args, arm, seed, criteria, tokenizer, state, rl_rows, test,
                                               max_new_tokens, step0, work)
            run["curves"][arm] = {str(k): v for k, v in sorted(curve.items())}
            run["seconds"][arm] = round(time.perf_counter() - t0, 1)
        runs.append(run)
        log.info("seed %d done: %s", seed, run["seconds"])

    result = {
        "command": "python bench/learning.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("out", "work", "report", "seed_list", "arm_list")},
        "arms": {arm: ARMS[arm] for arm in args.arm_list},
        "world": {k: len(v) for k, v in splits.items()},
        "vocab_size": len(tokenizer),
        "max_completion_tokens": max_new_tokens,
        "runs": runs,
        "total_seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    return report(result, args.out)


def pooled(results: list[dict]) -> dict:
    """One result holding the runs of several, which must differ in nothing but their seeds."""
    def comparable(r: dict) -> dict:
        return {k: v for k, v in r["settings"].items() if k != "seeds"} | {"arms": r["arms"]}

    first = results[0]
    for other in results[1:]:
        if comparable(other) != comparable(first):
            diff = sorted(k for k, v in comparable(other).items() if comparable(first).get(k) != v)
            raise SystemExit(f"cannot pool results whose settings differ in: {', '.join(diff)}")
    seeds = [r["seed"] for result in results for r in result["runs"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"cannot pool results that share a seed: {seeds}")
    merged = dict(first)
    commands = [[r["command"]] if isinstance(r["command"], str) else r["command"] for r in results]
    merged["command"] = [c for group in commands for c in group]
    merged["settings"] = {**first["settings"], "seeds": ",".join(str(s) for s in seeds)}
    merged["runs"] = [run for r in results for run in r["runs"]]
    merged["total_seconds"] = round(sum(r["total_seconds"] for r in results), 1)
    return merged


def report(result: dict, out: Path) -> dict:
    """Summarise the runs of ``result`` (mean ± sd per arm and step, paired differences from ``off`` at
    the last step), save learning.json and learning.png under ``out``, print the table."""
    arms, steps = list(result["arms"]), result["settings"]["eval_steps"]
    result["summary"] = summarise(result["runs"], arms, steps)
    if "off" in arms:
        result["paired_vs_off"] = {"step": steps[-1], **paired_deltas(result["runs"], arms, steps[-1])}
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    plot(result["summary"], steps, out / "learning.png")
    print(table(result["summary"], steps))
    if "paired_vs_off" in result:
        print(f"\narm - off at step {steps[-1]}, paired by seed (mean ± sd):")
        for arm, d in result["paired_vs_off"].items():
            if arm != "step":
                print(f"  {arm:12s} label acc {d['label_accuracy'][0]:+.3f} ± {d['label_accuracy'][1]:.3f}   "
                      f"step acc {d['step_accuracy'][0]:+.3f} ± {d['step_accuracy'][1]:.3f}")
    print(f"\n{len(result['runs'])} seed(s), {result['settings']['steps']} GRPO steps per arm, "
          f"{result['total_seconds']:.0f} s; saved {out / 'learning.json'} and learning.png")
    return result


def evaluate_state(args, seed, tokenizer, criteria, state, data: EvalSet, max_new_tokens: int) -> dict[str, float]:
    from genrel.models.tiny import tiny_causal_lm

    model = tiny_causal_lm(tokenizer, hidden_size=args.hidden, layers=args.layers, seed=seed)
    model.load_state_dict(state)
    return evaluate(model, tokenizer, criteria, data, max_new_tokens)


if __name__ == "__main__":
    main()
