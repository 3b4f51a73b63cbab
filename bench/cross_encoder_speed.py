"""Cross-encoder scoring speed on CPU: torch vs ONNX (fp32, and int8 when exported), same pairs, same
batching; prints pairs/s for each and how far ONNX's probabilities are from torch's.

    genrel train cross-encoder --data ../shared/data/trec-dl20/train.jsonl --criteria trec-dl --out /tmp/ce
    python bench/cross_encoder_speed.py /tmp/ce --data ../shared/data/trec-dl20/dev.jsonl --limit 400

The model directory is exported to ONNX into a temporary folder first (with int8). Each backend scores
the pairs ``--repeats`` times, alternating, and the best run counts, so load from other processes on a
shared machine hits all backends alike. Threads: torch's default, onnxruntime = usable cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--data", required=True, help="Pairs to score (any genrel data file).")
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    from genrel.data import load_pairs
    from genrel.score.cross_encoder import CrossEncoderScorer
    from genrel.models.model_dir import require_model_info
    from genrel.score.onnx_backend import OnnxCrossEncoderScorer, cpu_cores
    from genrel.score.onnx_export import export_onnx

    criteria = require_model_info(args.model_dir, "cross-encoder").criteria_model()
    pairs = load_pairs(args.data, criteria).pairs[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        report = export_onnx(args.model_dir, tmp, int8=True)
        scorers = {
            "torch": CrossEncoderScorer.from_dir(args.model_dir, device="cpu", batch_size=args.batch_size, progress=False),
            "onnx": OnnxCrossEncoderScorer.from_dir(tmp, batch_size=args.batch_size, progress=False),
            "onnx-int8": OnnxCrossEncoderScorer.from_dir(
                tmp, onnx_file="model.int8.onnx", batch_size=args.batch_size, progress=False
            ),
        }
        best = {name: float("inf") for name in scorers}
        logits = {}
        for _ in range(args.repeats):
            for name, scorer in scorers.items():
                started = time.perf_counter()
                logits[name] = scorer.logits(pairs)
                best[name] = min(best[name], time.perf_counter() - started)
    probs = {k: torch.tensor(v).softmax(-1).numpy() for k, v in logits.items()}
    print(f"{len(pairs)} pairs, max_length {scorers['torch'].max_length}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, onnxruntime threads {cpu_cores()}")
    print(f"export: max |Δ logit| fp32 {report.max_abs_diff:.2e}, int8 {report.int8_max_abs_diff:.2e}")
    for name in scorers:
        diff = np.abs(probs[name] - probs["torch"]).max()
        agree = (logits[name].argmax(1) == logits["torch"].argmax(1)).mean()
        print(f"{name:>10}: {len(pairs) / best[name]:7.1f} pairs/s   max |Δp| vs torch {diff:.2e}   "
              f"same label {agree:.1%}")


if __name__ == "__main__":
    main()
