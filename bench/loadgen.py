"""What the serving benches share: start ``genrel serve`` on a loopback port, wait for it, make request
bodies, read a process's RSS, and summarise latencies. ``serve_load.py`` (throughput) and ``soak.py``
(hours of load) import it; it is a library, not a script.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "flea life cycle adult egg larva pupa host dog cat blood temperature humidity weeks days year treatment "
    "collar spray vacuum carpet shoe running trail size red blue waterproof price brand review battery phone "
    "charger cable fast wireless kitchen knife steel chef sharp recipe pasta sauce tomato garlic basil oven"
).split()


def init_minilm(out: Path) -> Path:
    """An untrained-head MiniLM cross-encoder at ``out`` (made once): speed and memory do not depend on training."""
    if (out / "genrel_model.json").is_file():
        return out
    from genrel.criteria import load_criteria
    from genrel.score.cross_encoder import CrossEncoderModel

    ce = CrossEncoderModel.from_base("minilm", load_criteria("trec-dl"), max_length=256)
    return ce.save(out, created_by="bench (untrained head)")


def request_body(rng: random.Random, docs: int, query_words: int, doc_words: int, k: int) -> dict:
    """One /v1/judge body: a query of ``query_words`` words and ``docs`` documents of ``doc_words`` words."""
    query = " ".join(rng.choice(WORDS) for _ in range(query_words))
    documents = [
        {"id": f"r{k}-d{j}", "text": " ".join(rng.choice(WORDS) for _ in range(doc_words))} for j in range(docs)
    ]
    return {"query": query, "documents": documents}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, backend: str, port: int, settings: Sequence[str] = (), **popen) -> subprocess.Popen:
    """``genrel serve`` on 127.0.0.1:``port`` with auth off; ``settings`` are ``key=value`` overrides."""
    cmd = [sys.executable, "-c", "from genrel.cli import main; main()", "--quiet", "serve",
           "--model", model, "--backend", backend, "--port", str(port)]
    for item in settings:
        cmd += ["--set", item]
    env = {**os.environ, "GENREL_SERVE_TOKEN": ""}
    return subprocess.Popen(cmd, cwd=REPO, env=env, **popen)


def wait_ready(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"the server was not ready after {timeout_s:.0f} s")


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB, from /proc/PID/status (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentiles_ms(latencies: list[float]) -> dict:
    if len(latencies) < 2:
        v = latencies[0] * 1000 if latencies else float("nan")
        return {"p50_ms": v, "p95_ms": v, "p99_ms": v}
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000}
