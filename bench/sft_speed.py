"""SFT speed and memory on CPU: the same traces through `genrel sft` as it was ("before": batch 1, LoRA
on every layer, TRL's LM head over every position, LoRA dropout 0.05) and with the shipped defaults of
configs/sft/cpu-smollm2.yaml ("after": LM head on the trace positions only, LoRA on the top layers,
no LoRA dropout, batches padded to a multiple of 64 tokens); prints per run tokens/s, s/trace, CPU s/trace and peak RSS.

    nice -n 5 python bench/sft_speed.py                        # 24 verdict-only traces, before and after
    nice -n 5 python bench/sft_speed.py --batch-sizes 1,4,8    # and "after" at other batch sizes
    python bench/sft_speed.py --traces runs/teacher/traces.jsonl --criteria trec-dl --limit 48

Traces: by default verdict-only traces (`genrel teacher --from-gold`) of the catalogue world
(genrel.demo.world, seed 0, `esci` criteria), ~630 SmolLM2 tokens each (a ~450-token system prompt
shared by all); `--traces` takes any trace file instead (its criteria with `--criteria`). Every run
trains one epoch over the same `--limit` traces, 8 traces per optimizer step, in its own subprocess,
so its peak RSS (the child's own ``ru_maxrss``: model load, training and the final save) is its own.
Tokens/s and s/trace time `trainer.train()` alone (prompt + trace tokens, TRL's count); the model
load and the merged save are left out. On shared cores wall time moves with other jobs: runs go in
ABBA order over `--repeats`, and CPU s/trace (process CPU time) is printed next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "sft" / "cpu-smollm2.yaml"
TRACES_PER_STEP = 8
# genrel sft as it was before the speed work, over the shipped config.
BEFORE = {
    "completion_only_logits": False,
    "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
    "batch_size": 1,
    "trl": {"gradient_checkpointing": False, "lr_scheduler_type": "cosine", "warmup_steps": 0.05},
}


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(child_run(json.loads(args.child))), flush=True)
        return
    work = Path(tempfile.mkdtemp(prefix="sft-speed-"))
    traces = Path(args.traces) if args.traces else gold_traces(work, args.limit)
    runs = [("before", BEFORE), ("after", {})]
    runs += [(f"after b{b}", {"batch_size": b}) for b in args.batch_sizes if b != after_batch_size()]
    print(f"traces: {traces} (first {args.limit} accepted), criteria {args.criteria}, model {args.model}, "
          f"threads {args.threads or 'torch default'}; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    results: dict[str, list[dict]] = {name: [] for name, _ in runs}
    for repeat in range(args.repeats):
        for name, over in runs if repeat % 2 == 0 else runs[::-1]:  # ABBA: drift hits every run alike
            spec = {"name": name, "over": over, "traces": str(traces), "limit": args.limit, "model": args.model,
                    "criteria": args.criteria, "threads": args.threads, "out": str(work / f"{name.replace(' ', '-')}-{repeat}")}
            result = run_child(spec)
            results[name].append(result)
            print(f"  {name} run {repeat + 1}: {result['tokens_per_s']:.1f} tokens/s, "
                  f"{result['s_per_trace']:.2f} s/trace, peak RSS {result['peak_rss_gb']:.2f} GB", file=sys.stderr)
    report(results, args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", help="A trace file (default: verdict-only traces of the catalogue world).")
    parser.add_argument("--criteria", default="esci", help="The traces' criteria.")
    parser.add_argument("--limit", type=int, default=24, help="Traces per run (the first accepted ones).")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[],
                        help="Also run the new defaults at these batch sizes (8 traces per step each).")
    parser.add_argument("--repeats", type=int, default=1, help="Runs of each setting (ABBA order).")
    parser.add_argument("--threads", type=int, help="torch threads in each run (default: torch's own).")
    parser.add_argument("--out", help="Also write the results as JSON here.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def gold_traces(work: Path, limit: int) -> Path:
    """Verdict-only traces for ``limit`` pairs of the catalogue world (8 candidates a query)."""
    from genrel.demo.world import WorldConfig, write_world
    from genrel.train.teacher import TeacherConfig, run_teacher

    data = write_world(WorldConfig(seed=0, queries=-(-limit // 8)), work / "world.jsonl")
    out = work / "traces.jsonl"
    run_teacher(TeacherConfig(data=str(data), criteria="esci", from_gold=True, out=str(out)), progress=False)
    return out


def after_batch_size() -> int:
    from genrel.config import read_yaml_mapping

    return read_yaml_mapping(CONFIG)["batch_size"]


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=False, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"{spec['name']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_run(spec: dict) -> dict:
    """One SFT run of one setting over the first ``limit`` traces; its numbers and its own peak RSS."""
    import torch

    from genrel.config import read_yaml_mapping
    from genrel.train.sft import SFTStageConfig, run_sft

    torch.set_num_threads(spec["threads"] or torch.get_num_threads())
    traces = Path(spec["out"]) / "traces.jsonl"
    traces.parent.mkdir(parents=True)
    traces.write_text("".join(first_accepted(Path(spec["traces"]), spec["limit"])), encoding="utf-8")
    values = read_yaml_mapping(CONFIG)
    values.update(spec["over"])
    values.update({
        "model": spec["model"], "criteria": spec["criteria"], "traces": str(traces),
        "output_dir": str(Path(spec["out"]) / "run"), "max_steps": None, "epochs": 1.0, "save_steps": 10_000,
        "grad_accumulation": max(1, TRACES_PER_STEP // values["batch_size"]),
        "trl": {**values.get("trl", {}), "save_strategy": "no"},
    })
    cfg = SFTStageConfig.model_validate(values)
    clock = TrainClock()
    result = run_sft(cfg, callbacks=[clock])
    tokens = [json.loads(line).get("num_tokens") for line in result.metrics_path.read_text().splitlines()]
    tokens = max(t for t in tokens if t is not None)
    return {
        "name": spec["name"], "traces": result.examples, "batch_size": cfg.batch_size, "tokens": tokens,
        "train_s": clock.wall_s, "tokens_per_s": tokens / clock.wall_s, "s_per_trace": clock.wall_s / result.examples,
        "cpu_s_per_trace": clock.cpu_s / result.examples,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,  # kB on Linux
    }


def first_accepted(path: Path, limit: int) -> list[str]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
             if line.strip() and json.loads(line).get("accepted")]
    if len(lines) < limit:
        sys.exit(f"{path}: {len(lines)} accepted traces, fewer than --limit {limit}")
    return lines[:limit]


def TrainClock():  # a TrainerCallback built on first use, so --help does not import transformers
    from transformers import TrainerCallback

    class _TrainClock(TrainerCallback):
        """Wall and process CPU seconds of trainer.train(), from its first step to its end."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = (time.perf_counter(), time.process_time())

        def on_train_end(self, args, state, control, **kwargs):
            self.wall_s = time.perf_counter() - self.start[0]
            self.cpu_s = time.process_time() - self.start[1]

    return _TrainClock()


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    print(f"\nload average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared: wall time moves "
          "with other jobs; CPU s/trace less so)")
    print(f"{'run':<10} {'batch':>5} {'traces':>6} {'tokens/s':>9} {'s/trace':>8} {'CPU s/trace':>11} {'peak RSS GB':>11}")
    best = {name: max(runs, key=lambda r: r["tokens_per_s"]) for name, runs in results.items()}
    for name, r in best.items():
        print(f"{name:<10} {r['batch_size']:>5} {r['traces']:>6} {r['tokens_per_s']:>9.1f} {r['s_per_trace']:>8.2f} "
              f"{r['cpu_s_per_trace']:>11.2f} {r['peak_rss_gb']:>11.2f}")
    before, after = best["before"], best["after"]
    print(f"after / before: {after['tokens_per_s'] / before['tokens_per_s']:.2f}x tokens/s, "
          f"{after['peak_rss_gb'] / before['peak_rss_gb']:.2f}x peak RSS (best of {args.repeats} run(s) each)")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
