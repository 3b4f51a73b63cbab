"""Load-test ``genrel serve`` and set its throughput beside the hardware's limit, measured in the same run.

    python bench/serve_load.py --model runs/ce            # a genrel cross-encoder directory
    python bench/serve_load.py --init-minilm /tmp/ce-mini  # first write an untrained MiniLM cross-encoder there

It starts ``genrel serve`` on a free loopback port, drives it at 1, 8 and 32 concurrent clients (httpx,
async; each level bounded by --requests and --seconds), prints pairs/s and p50/p95/p99 request latency
per level, then stops the server. A level stops sending at --requests or --seconds and ends when its
in-flight requests return. It also measures this machine's peak matmul FLOP/s (a large fp32 GEMM, and
bf16 where torch supports it; before and after the load, the better counts) and divides it by the
model's FLOPs per pair at the requests' token lengths, from the model's config.json (layers, hidden,
intermediate) and tokenizer:

    FLOPs/pair = 2 · T · L · (4·h² + 2·h·i)  +  4 · L · T² · h      (dense layers + attention scores)

The ratio achieved ÷ limit says how far serving overhead, padding, small batches and non-GEMM work
keep the model from the cores' matmul peak. Weights do not affect speed, so an untrained model is fine.
The client shares the CPUs with the server; on a 2-core machine that costs a visible share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

import httpx
from loadgen import free_port, init_minilm, percentiles_ms, request_body, start_server, wait_ready


def main() -> None:
    args = parse_args()
    model = args.model
    if args.init_minilm:
        model = str(init_minilm(Path(args.init_minilm)))
    if not model:
        sys.exit("pass --model DIR (or py:module:factory) or --init-minilm DIR")
    rng = random.Random(args.seed)
    bodies = [request_body(rng, args.docs, args.query_words, args.doc_words, k) for k in range(64)]

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    peaks_before = measure_peaks()  # again after the load levels; the better of the two is the limit
    port = free_port()
    server = start_server(model, args.backend, port, [
        f"max_batch_size={args.max_batch_size}",
        f"max_batch_wait_ms={args.max_batch_wait_ms}",
        f"max_documents_per_request={max(args.docs, 100)}",
        "max_queue_wait_s=null",  # measure the saturated queue, not the overload shedding (soak.py does that)
    ])
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_ready(url, server, args.ready_timeout_s)
        asyncio.run(drive(url, bodies[:4], concurrency=1, max_requests=4, max_seconds=60))  # warm-up
        for level in args.levels:
            before = batch_stats(url)
            stats = asyncio.run(drive(url, bodies, level, args.requests, args.seconds))
            after = batch_stats(url)
            batches = after[0] - before[0]
            stats["mean_batch"] = (after[1] - before[1]) / batches if batches else float("nan")
            rows.append((level, stats))
            print_level(level, stats)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        print(f"server stopped (exit {code})")

    peaks = {k: max(filter(None, (v, peaks_before[k])), default=None) for k, v in measure_peaks().items()}
    print_limit(rows, peaks, model, args, bodies)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="Model directory (or py:module:factory) to serve.")
    p.add_argument("--backend", default="hf", choices=["hf", "onnx", "vllm"])
    p.add_argument("--init-minilm", metavar="DIR", help="Write an untrained MiniLM cross-encoder to DIR and serve it.")
    p.add_argument("--flops-from", metavar="DIR", help="Model dir for the FLOPs count when --model is py:...")
    p.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=200, help="Most requests per level.")
    p.add_argument("--seconds", type=float, default=15.0, help="Most seconds per level.")
    p.add_argument("--docs", type=int, default=10, help="Documents per request.")
    p.add_argument("--query-words", type=int, default=4)
    p.add_argument("--doc-words", type=int, default=60)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-batch-wait-ms", type=float, default=5.0)
    p.add_argument("--ready-timeout-s", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()












async def drive(url: str, bodies: list[dict], concurrency: int, max_requests: int, max_seconds: float) -> dict:
    """``concurrency`` clients send requests back to back until ``max_requests`` or ``max_seconds``."""
    latencies: list[float] = []
    pairs = errors = 0
    sent = 0
    start = time.perf_counter()
    deadline = start + max_seconds

    async def client(c: httpx.AsyncClient, worker: int) -> None:
        nonlocal pairs, errors, sent
        while sent < max_requests and time.perf_counter() < deadline:
            body = bodies[(sent * 7 + worker) % len(bodies)]
            sent += 1
            t0 = time.perf_counter()
            r = await c.post("/v1/judge", json=body)
            latencies.append(time.perf_counter() - t0)
            if r.status_code == 200:
                pairs += len(body["documents"])
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300.0, limits=limits) as c:
        await asyncio.gather(*(client(c, w) for w in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "pairs": pairs, "errors": errors, "seconds": elapsed,
            "pairs_per_s": pairs / elapsed, **percentiles_ms(latencies)}




def batch_stats(url: str) -> tuple[float, float]:
    """(scorer calls, pairs in them) so far, from the server's Prometheus metrics."""
    values = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("genrel_batch_size_pairs_count", "genrel_batch_size_pairs_sum"):
            values[name] = float(value)
    return values.get("genrel_batch_size_pairs_count", 0.0), values.get("genrel_batch_size_pairs_sum", 0.0)


def print_level(level: int, s: dict) -> None:
    print(
        f"clients {level:>3}: {s['requests']:>5} requests, {s['pairs']:>6} pairs in {s['seconds']:6.1f} s "
        f"-> {s['pairs_per_s']:8.1f} pairs/s | latency p50 {s['p50_ms']:8.1f} ms  p95 {s['p95_ms']:8.1f} ms  "
        f"p99 {s['p99_ms']:8.1f} ms | mean batch {s['mean_batch']:5.1f} pairs | errors {s['errors']}",
        flush=True,
    )


# -- the physical limit ----------------------------------------------------------------------------


def peak_matmul_flops(dtype_name: str, n: int = 2048, seconds: float = 2.0) -> float | None:
    """Best FLOP/s of an n×n GEMM over ``seconds`` on this process's torch threads (all cores)."""
    import torch

    dtype = getattr(torch, dtype_name)
    try:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.matmul(a, b)
    except (RuntimeError, TypeError):
        return None
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def model_flops_per_pair(model_dir: Path, bodies: list[dict]) -> tuple[float, float, str] | None:
    """(FLOPs per pair, mean tokens per pair, description) from config.json and the tokenizer."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    layers = config.get("num_hidden_layers")
    hidden = config.get("hidden_size")
    inter = config.get("intermediate_size", 4 * (hidden or 0))
    if not (layers and hidden):
        return None
    max_length = 512
    info = model_dir / "genrel_model.json"
    if info.is_file():
        max_length = json.loads(info.read_text()).get("max_length", max_length)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [
        len(ids)
        for body in bodies
        for ids in tokenizer([body["query"]] * len(body["documents"]), [d["text"] for d in body["documents"]],
                             truncation="longest_first", max_length=max_length)["input_ids"]
    ]
    tokens = statistics.fmean(lengths)
    dense = 2 * tokens * layers * (4 * hidden**2 + 2 * hidden * inter)
    attention = 4 * layers * tokens**2 * hidden
    what = f"{layers} layers, hidden {hidden}, intermediate {inter}, {tokens:.0f} tokens/pair"
    return dense + attention, tokens, what


def measure_peaks() -> dict[str, float | None]:
    """fp32 always; bf16 only where the CPU computes it natively (emulated bf16 runs at well under 1 GFLOP/s
    and would take minutes to time)."""
    from genrel.models.load import bf16_available

    names = ("float32", "bfloat16") if bf16_available("cpu") else ("float32",)
    return {name: peak_matmul_flops(name) for name in names}


def print_limit(rows: list, peaks: dict, model: str, args: argparse.Namespace, bodies: list[dict]) -> None:
    import torch

    model_dir = Path(args.flops_from) if args.flops_from else Path(model)
    counted = model_flops_per_pair(model_dir, bodies) if model_dir.is_dir() else None
    print(f"\nload average now {os.getloadavg()[0]:.1f} (other processes share these CPUs when it exceeds "
          f"{os.cpu_count()})")
    print(f"physical limit on this machine ({os.cpu_count()} CPUs, torch {torch.get_num_threads()} threads; "
          "peak GEMM = best of before and after the load):")
    for name, peak in peaks.items():
        print(f"  peak {name} GEMM 2048^3: " + (f"{peak / 1e9:8.1f} GFLOP/s" if peak else "not supported"))
    if counted is None:
        print("  model FLOPs unknown (no config.json; pass --flops-from DIR for a py: model)")
        return
    flops, _, what = counted
    print(f"  model: {what} -> {flops / 1e9:.3f} GFLOP/pair")
    for name, peak in peaks.items():
        if not peak:
            continue
        limit = peak / flops
        achieved = ", ".join(f"{level} clients {s['pairs_per_s'] / limit:6.1%}" for level, s in rows)
        print(f"  limit at {name} peak: {limit:8.1f} pairs/s; achieved / limit: {achieved}")


if __name__ == "__main__":
    main()
