"""LM scoring speed on CPU: the embedded SmolLM2-135M judges catalogue pairs (``esci`` criteria) in
label-first and reasoning form, with and without the shared-prefix KV cache (``LMScorer(prefix_cache=…)``);
prints pairs/s, prompt and prefix token counts, how far the two paths' outputs are apart, and where the
time goes (multi-token passes: prefix, prefill, label context; one-token decode steps; the rest).

    nice -n 5 python bench/lm_scoring_speed.py                              # batch 8, 32 + 16 pairs
    nice -n 5 python bench/lm_scoring_speed.py --forms reasoning --batch-size 16

Pairs come from the catalogue world (genrel.demo.world, ``--seed``); the first run of each form warms
up (weights, allocator) on one batch and is not counted. Each form runs the plain path first, then the
prefix cache; on shared CPUs other jobs hit both, so compare within one run and look at the time split.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="auto", help="auto: bf16 where the CPU has native bf16, else float32")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=32, help="Pairs scored in label-first form.")
    parser.add_argument("--reasoning-pairs", type=int, default=16, help="Pairs scored in reasoning form.")
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--forms", default="label-first,reasoning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()

    import torch

    from genrel.criteria import load_criteria
    from genrel.models.load import load_model
    from genrel.score.lm import LMScorer

    if args.threads:
        torch.set_num_threads(args.threads)
    criteria = load_criteria("esci")
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    counts = {"label-first": args.pairs, "reasoning": args.reasoning_pairs}
    pairs = catalogue_pairs(max(counts.values()), args.seed)
    print(f"{args.model} ({model.dtype}), {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"max_new_tokens {args.max_new_tokens}")
    timer = ForwardTimer(model)
    for form in args.forms.split(","):
        subset = pairs[: counts[form]]
        runs = {}
        for prefix_cache in (False, True):
            scorer = LMScorer(model, tokenizer, criteria, form=form, batch_size=args.batch_size,
                              max_new_tokens=args.max_new_tokens, progress=False, prefix_cache=prefix_cache)
            if not runs:
                scorer.score_pairs(subset[: args.batch_size])  # warm-up, not counted
                print_tokens(scorer, tokenizer, subset)
            timer.reset()
            started, cpu_started = time.perf_counter(), time.process_time()
            scored = scorer.score_pairs(subset)
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
            runs[prefix_cache] = (scored, seconds, cpu_s, timer.split())
            if prefix_cache:
                print(f"  shared prefix: {scorer.prefix_tokens} tokens, computed {scorer._prefix.passes}x")
        for prefix_cache, (scored, seconds, cpu_s, split) in runs.items():
            name = "prefix cache" if prefix_cache else "plain"
            print(f"{form:12s} {name:13s} {len(scored) / seconds:6.2f} pairs/s  ({len(scored)} pairs, "
                  f"{seconds:.1f} s, CPU {cpu_s:.1f} s: {split.describe(seconds)})")
        print("  " + agreement([r[0] for r in runs.values()]))


def catalogue_pairs(n: int, seed: int):
    """``n`` pairs of the catalogue world, as many queries as they take."""
    from genrel.data import Pair
    from genrel.demo.world import WorldConfig, generate

    rows = list(generate(WorldConfig(seed=seed, queries=max(1, -(-n // 8)))))[:n]
    return [Pair(row_id=f"{r['qid']}-{r['docid']}", **r) for r in rows]


def print_tokens(scorer, tokenizer, pairs) -> None:
    lengths = [len(ids) for ids in tokenizer([scorer.prompt_text(p) for p in pairs], add_special_tokens=False)["input_ids"]]
    print(f"{scorer.form}: prompts {min(lengths)}–{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f})")


def agreement(runs) -> str:
    """How far the prefix-cache outputs are from the plain path's (bf16 rounds differently per layout)."""
    plain, cached = runs
    gap = max(abs(a.probabilities[k] - b.probabilities[k]) for a, b in zip(plain, cached) for k in a.probabilities)
    same_label = sum(a.label == b.label for a, b in zip(plain, cached))
    same_text = sum(a.reasoning == b.reasoning for a, b in zip(plain, cached))
    tokens = sum(s.reasoning_tokens or 0 for s in cached) / len(cached)
    return (f"max |Δp| {gap:.2g}, same label {same_label}/{len(plain)}, same text {same_text}/{len(plain)}, "
            f"{tokens:.0f} generated tokens per pair")


class ForwardTimer:
    """Wall time inside the model's forward passes, split by how many new tokens each pass runs."""

    def __init__(self, model):
        self.reset()
        model.register_forward_pre_hook(self._start, with_kwargs=True)
        model.register_forward_hook(self._stop, with_kwargs=True)

    def reset(self) -> None:
        self.multi_s = self.decode_s = 0.0
        self.multi_n = self.decode_n = 0
        self._tokens = 0

    def split(self) -> Split:
        return Split(self.multi_s, self.multi_n, self.decode_s, self.decode_n)

    def _start(self, module, args, kwargs):
        ids = kwargs.get("input_ids") if "input_ids" in kwargs else args[0]
        self._tokens, self._t0 = ids.shape[-1], time.perf_counter()

    def _stop(self, module, args, kwargs, output):
        elapsed = time.perf_counter() - self._t0
        if self._tokens == 1:
            self.decode_s, self.decode_n = self.decode_s + elapsed, self.decode_n + 1
        else:
            self.multi_s, self.multi_n = self.multi_s + elapsed, self.multi_n + 1


@dataclass
class Split:
    multi_s: float
    multi_n: int
    decode_s: float
    decode_n: int

    def describe(self, total_s: float) -> str:
        decode = (f", {self.decode_n} decode steps {self.decode_s:.1f} s "
                  f"({1000 * self.decode_s / self.decode_n:.0f} ms/step)" if self.decode_n else "")
        rest = total_s - self.multi_s - self.decode_s
        return f"{self.multi_n} multi-token passes {self.multi_s:.1f} s{decode}, rest {rest:.1f} s"


if __name__ == "__main__":
    main()
