"""GPU check for the RL stage, offline: a few GRPO + SAM steps with vLLM colocate rollouts on one GPU.

    python bench/gpu_check.py                 # ~3-6 minutes on one H100/H200, no network needed
    python bench/gpu_check.py --steps 2 --completion-tokens 128

What it builds, all locally: a randomly initialised model with Qwen3-0.6B's body (28 layers, hidden
1024, 16 query / 8 key-value heads of 128, MLP 3072, bf16) and genrel's tiny byte-level tokenizer (a
400-token vocabulary instead of Qwen's 151,936, so about 0.44B parameters), saved to a temp folder so
vLLM can load it; synthetic ``esci`` pairs from the catalogue world.

Phase 1 trains ``--steps`` steps with ``use_vllm=True, vllm_mode="colocate"`` and prints step times
(TRL's ``step_time``: generation + scoring + SAM + loss + backward). When vllm is not importable it
says so and runs the same steps with transformers generation instead. A random model writes text that
never parses, so phase 2 trains 2 steps on the GPU with scripted valid completions to exercise SAM's
tensors on CUDA (masked-token share > 0, finite loss). Phase 1 also scores 8 dev pairs at its last
step (``data.dev``, sampled at 0.6 / 0.95): with vLLM through the colocated engine, as docs/training.md
says, so the dev metrics line checks that path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def say(message: str) -> None:
    print(f"[gpu_check] {message}", flush=True)


def main() -> int:
    args = parse_args()
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        say("no CUDA device visible: this check is for a GPU machine (nothing run; --smoke runs it on CPU)")
        return 2
    say(f"device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}, torch {torch.__version__}")
    use_vllm = importlib.util.find_spec("vllm") is not None and not args.smoke
    if use_vllm:
        import vllm

        say(f"vllm {vllm.__version__}: rollouts with vllm_mode=colocate")
    else:
        say("vllm is not importable (pip install 'genrel[gpu]'): phase 1 falls back to transformers generation")
    work = Path(tempfile.mkdtemp(prefix="genrel-gpu-check-"))
    model_dir = build_model(work / "qwen3-0.6b-shaped", small=args.smoke)
    data = build_data(work / "world.jsonl")

    # The scripted phase first: it needs no vLLM, so its result survives a vLLM failure.
    phases = [
        ("phase 2: scripted valid completions (SAM tensors on the device)", dict(use_vllm=False, scripted=True, steps=2)),
        ("phase 1: " + ("vLLM colocate" if use_vllm else "transformers generate (no vLLM)"),
         dict(use_vllm=use_vllm, scripted=False)),
    ]
    results = {}
    for title, kwargs in phases:
        say(f"{title}: starting")
        try:
            results[title] = run_phase(args, model_dir, data, work / title.split(":")[0].replace(" ", ""), **kwargs)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next phase
            import traceback

            traceback.print_exc()
            say(f"{title}: FAILED with {type(exc).__name__}: {exc}")
            results[title] = []
    for title, records in results.items():
        report(records, title)
    scripted_records = results[phases[0][0]]
    ok = all(results.values()) and all(r.get("loss") is not None for rs in results.values() for r in rs
                                       if "eval_accuracy" not in r)
    ok = ok and any("eval_accuracy" in r for r in results[phases[1][0]])  # the dev set was scored
    ok = ok and any((r.get("sam/masked_token_share") or 0) > 0 for r in scripted_records)
    say("OK" if ok else "FAILED: see the records above")
    return 0 if ok else 1


def build_model(path: Path, small: bool = False) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from genrel.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64 if small else 1024, intermediate_size=128 if small else 3072,
        num_hidden_layers=2 if small else 28, num_attention_heads=16, num_key_value_heads=8,
        head_dim=16 if small else 128, max_position_embeddings=4096,
        rope_theta=1_000_000.0, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None, dtype="bfloat16",
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    say(f"random Qwen3-0.6B-shaped model: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")
    return path


def build_data(path: Path) -> Path:
    from genrel.demo.world import WorldConfig, write_world

    return write_world(WorldConfig(seed=0, queries=16, candidates_per_query=4), path)


def run_phase(args, model_dir: Path, data: Path, out: Path, *, use_vllm: bool, scripted: bool,
              steps: int | None = None) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genrel.criteria import load_criteria
    from genrel.train.rl import RLStageConfig, build_rl_dataset, build_trainer, build_validator

    cfg = RLStageConfig.model_validate({
        "model": str(model_dir), "criteria": "esci", "output_dir": str(out),
        "data": {"train": str(data), **({} if scripted else {"dev": str(data)})},
        "validation": {"eval_steps": steps or args.steps, "max_pairs": 8, "max_new_tokens": 64},
        "num_generations": args.generations, "prompts_per_step": args.prompts,
        "max_prompt_length": 1536, "max_completion_length": args.completion_tokens,
        "steps": steps or args.steps, "save_steps": 1000, "lr": 1e-6, "beta": 0.0,
        "sam": {"mode": "hard", "renormalize": True}, "use_vllm": use_vllm, "vllm_mode": "colocate",
        "trl": {
            "bf16": not args.smoke, "save_strategy": "no", "report_to": "none", "disable_tqdm": True,
            "epsilon_high": 0.28, "vllm_gpu_memory_utilization": 0.3, "vllm_max_model_length": 2048,
        },
    })
    criteria = load_criteria("esci")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    dataset = build_rl_dataset(cfg, criteria, tokenizer)
    trainer_class = None
    if scripted:
        from genrel.train.rl_trainer import SAMGRPOTrainer
        from genrel.train.scripted import mixed_completions
        from genrel.train.scripted import scripted as scripted_class

        trainer_class = scripted_class(SAMGRPOTrainer, mixed_completions(criteria, "exact"))
    start = time.perf_counter()
    trainer = build_trainer(cfg, criteria, model, tokenizer, dataset, trainer_class=trainer_class,
                            validator=build_validator(cfg, criteria))
    say(f"{out.name}: trainer ready in {time.perf_counter() - start:.1f} s; training {cfg.steps} steps")
    trainer.train()
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    del trainer, model
    torch.cuda.empty_cache()
    for r in records:
        if "eval_accuracy" in r:
            say(f"  dev at step {r['step']}: accuracy {r['eval_accuracy']}, format errors "
                f"{r['eval_format_error_rate']}, {r['eval_n']:.0f} pairs in {r['eval_runtime']} s")
    return [r for r in records if "loss" in r or "eval_accuracy" in r]


def report(records: list[dict], title: str) -> None:
    say(title)
    for r in (r for r in records if "loss" in r):
        say(
            f"  step {r['step']}: step_time {r.get('step_time', float('nan')):.2f} s, loss {r.get('loss')}, "
            f"mean completion {r.get('completions/mean_length')} tokens, "
            f"masked share {r.get('sam/masked_token_share')}, format errors {r.get('format_error_rate')}"
        )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--prompts", type=int, default=8, help="prompts per step")
    p.add_argument("--generations", type=int, default=8, help="completions per prompt")
    p.add_argument("--completion-tokens", type=int, default=256)
    p.add_argument("--smoke", action="store_true", help="check the script itself on CPU: 2-layer model, no vLLM")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(main())
