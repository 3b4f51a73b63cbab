"""SAM overhead: the same data, model and seed trained N steps with plain GRPO (``trl.GRPOTrainer``) and
with GRPO + SAM (``SAMGRPOTrainer``, mode hard); prints the median step-time ratio (target <= 1.05),
the masked-token share, and the time of SAM's own post-processing per generation batch.

    python bench/sam_overhead.py                          # tiny random model, scripted valid completions
    python bench/sam_overhead.py --completions generated  # real sampling (a random model never parses)
    python bench/sam_overhead.py --model smollm2-135m --completions generated --steps 3

Data: pairs of the synthetic catalogue world (genrel.demo.world, ``esci`` criteria, per-step gold
verdicts). Scripted completions replay rendered, valid step-format texts so SAM has work to do (see
genrel.train.scripted); they keep every other part of the step (rewards, advantages, loss, optimizer).
Runs alternate plain / SAM in ABBA order ``--repeats`` times so drift on shared CPUs hits both alike;
the ratio is of the medians over all timed steps. Process CPU time per step is printed too (with
``--threads 1`` it hardly depends on other jobs sharing the CPU), and the post-processing time (the only work SAM adds
to a step, timed alone) gives a noise-free bound next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    args = parse_args()
    import torch
    from trl import GRPOTrainer

    from genrel.criteria import load_criteria
    from genrel.demo.world import WorldConfig, write_world
    from genrel.train.rl import RLStageConfig, build_rl_dataset
    from genrel.train.rl_trainer import SAMGRPOTrainer

    torch.set_num_threads(args.threads or torch.get_num_threads())
    work = Path(tempfile.mkdtemp(prefix="sam-overhead-"))
    data = write_world(WorldConfig(seed=args.seed, queries=8, candidates_per_query=4), work / "world.jsonl")
    criteria = load_criteria("esci")
    steps = {"plain": [], "sam": []}
    cpu = {"plain": [], "sam": []}
    shares, post_ms = [], []
    for repeat in range(args.repeats):
        order = [("plain", GRPOTrainer), ("sam", SAMGRPOTrainer)]
        for name, cls in order if repeat % 2 == 0 else order[::-1]:  # ABBA: drift hits both alike
            cfg = RLStageConfig.model_validate({
                "model": args.model, "criteria": "esci", "data": {"train": str(data)},
                "output_dir": str(work / f"{name}-{repeat}"), "num_generations": args.generations,
                "prompts_per_step": args.prompts, "max_completion_length": args.max_completion_length,
                "steps": args.steps + 1, "save_steps": 10_000, "lr": 1e-4, "seed": args.seed,
                "sam": {"mode": "hard" if name == "sam" else "off"},
                "trl": {"save_strategy": "no", "disable_tqdm": True},
            })
            model, tokenizer = load(args.model, args.seed)
            dataset = build_rl_dataset(cfg, criteria, tokenizer)
            trainer = make_trainer(cfg, criteria, model, tokenizer, dataset, cls, args.completions)
            clock = StepClock()
            trainer.add_callback(clock)
            trainer.train()
            cpu[name] += clock.cpu_s[1:]
            records = [json.loads(x) for x in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
            records = [r for r in records if "step_time" in r]
            steps[name] += [r["step_time"] for r in records[1:]]  # the first step warms caches up
            if name == "sam":
                shares += [r["sam/masked_token_share"] for r in records]
                post_ms.append(post_processing_ms(trainer, dataset, args.generations))
            print(f"  {name} run {repeat + 1}: step times {[round(r['step_time'], 3) for r in records]}",
                  file=sys.stderr)
    report(args, steps, cpu, shares, post_ms)


class _Clock:
    """Process CPU seconds per optimizer step: unlike wall time, barely moved by other jobs on the machine."""

    def __init__(self):
        self.cpu_s: list[float] = []
        self.start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        self.cpu_s.append(time.process_time() - self.start)


def StepClock():  # noqa: N802 - a TrainerCallback built on first use, so --help does not import transformers
    from transformers import TrainerCallback

    return type("StepClock", (_Clock, TrainerCallback), {})()


def load(name: str, seed: int):
    if name == "tiny":
        from genrel.models.tiny import tiny_causal_lm, tiny_tokenizer

        tokenizer = tiny_tokenizer()
        return tiny_causal_lm(tokenizer, seed=seed), tokenizer
    from genrel.models.load import load_model

    return load_model(name)


def make_trainer(cfg, criteria, model, tokenizer, dataset, cls, completions: str):
    from genrel.train.rl import build_trainer
    from genrel.train.scripted import mixed_completions, scripted

    if completions == "scripted":
        cls = scripted(cls, mixed_completions(criteria, "exact"))
    return build_trainer(cfg, criteria, model, tokenizer, dataset, trainer_class=cls)


def post_processing_ms(trainer, dataset, generations: int, repeats: int = 5) -> float:
    """SAM's own work on one generation batch (decode, parse, verify, align, mask, metrics), timed alone
    on a batch from TRL's hook."""
    from trl import GRPOTrainer

    from genrel.train.rl_trainer import completion_texts, verify_completions

    n_prompts = trainer.args.generation_batch_size // generations
    inputs = [dataset[i] for i in range(n_prompts) for _ in range(generations)]
    out = GRPOTrainer._generate_and_score_completions(trainer, inputs)  # TRL's hook alone, [B] advantages
    start = time.perf_counter()
    for _ in range(repeats):
        batch = verify_completions(trainer.criteria, completion_texts(trainer.processing_class, out), inputs)
        _, masked = trainer._sam_token_advantages(out, batch)
        trainer._log_batch_metrics(out, batch, masked)
    return (time.perf_counter() - start) / repeats * 1000


def report(args, steps: dict[str, list[float]], cpu: dict[str, list[float]], shares: list[float],
           post_ms: list[float]) -> None:
    plain, sam = statistics.median(steps["plain"]), statistics.median(steps["sam"])
    ratio = sam / plain
    cpu_plain, cpu_sam = statistics.median(cpu["plain"]), statistics.median(cpu["sam"])
    share = statistics.mean(shares) if shares else float("nan")
    print(f"model={args.model} completions={args.completions} steps={args.steps}x{args.repeats} "
          f"batch={args.prompts} prompts x {args.generations} samples, max {args.max_completion_length} tokens")
    print(f"median step time: plain GRPO {plain:.3f} s, GRPO+SAM {sam:.3f} s")
    print(f"step-time ratio SAM/plain: {ratio:.3f} (target <= 1.05: {'ok' if ratio <= 1.05 else 'OVER'})")
    print(f"median CPU time per step: plain {cpu_plain:.3f} s, SAM {cpu_sam:.3f} s, ratio {cpu_sam / cpu_plain:.3f}")
    print(f"SAM post-processing: {statistics.median(post_ms):.1f} ms per generation batch "
          f"({statistics.median(post_ms) / 1000 / plain:.1%} of a plain step)")
    print(f"masked-token share: {share:.3f}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", help="tiny (random), smollm2-135m, or an HF id/folder")
    p.add_argument("--completions", choices=["scripted", "generated"], default="scripted")
    p.add_argument("--steps", type=int, default=5, help="timed steps per run (one more runs as warm-up)")
    p.add_argument("--repeats", type=int, default=2, help="alternating plain/SAM runs")
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--generations", type=int, default=4, help="completions per prompt")
    p.add_argument("--max-completion-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


if __name__ == "__main__":
    main()
