"""Soak ``genrel serve``: steady load for minutes, bad requests mixed in, then SIGTERM under load.

    python bench/soak.py --model runs/student-ce                      # hf backend, 10 minutes
    python bench/soak.py --model runs/student-onnx --backend onnx --minutes 2
    python bench/soak.py --init-minilm /tmp/ce-mini --minutes 2       # an untrained MiniLM cross-encoder

It starts ``genrel serve`` on a free loopback port and keeps ``--clients`` clients sending back to back
(httpx, async) for ``--minutes``. Good requests carry 1 to ``--max-docs`` documents of 5 to
``--max-doc-words`` words, so batch shapes keep changing; one request in ``--bad-every`` is bad on
purpose and must get its own 4xx: malformed JSON and a wrong type (422), too many documents, a too
long document and a body over ``max_body_bytes`` (413). A shed request (503 ``queue_full``, the
overload bound) is intended too. Anything else is an error: another status, a client timeout, or a
connection reset after it was accepted.

Each minute it prints the requests by outcome, p50/p99 latency of the good ones and the server's RSS
(VmRSS from /proc). At the end it sends SIGTERM while the clients keep sending, polls ``/readyz``,
and reports the drain: every request sent on an accepted connection must be answered (200 or 503);
refused connections (the listener is closed) are fine, resets are not. A client told 503 waits
``Retry-After`` seconds (at most 5) before its next request, as a well-behaved client does. ``/readyz`` must answer 503
before the first refusal. The exit code is 1 when any acceptance check fails:

- no errors other than the intended 4xx and 503,
- RSS growth ≤ ``--max-rss-growth`` from the end of minute ``--baseline-minute`` to the end,
- every accepted request answered on SIGTERM, and ``/readyz`` unready before the listener closed.

Everything runs on 127.0.0.1, and every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from loadgen import WORDS, free_port, init_minilm, percentiles_ms, rss_mb, start_server, wait_ready

MAX_BODY_BYTES = 1024 * 1024
BAD_KINDS = ("malformed_json", "wrong_type", "too_many_documents", "document_too_long", "body_too_large")
EXPECTED = {"malformed_json": 422, "wrong_type": 422, "too_many_documents": 413, "document_too_long": 413,
            "body_too_large": 413}
RESETS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


@dataclass
class Tally:
    """Outcomes of one period: counts by class and the latencies of answered good requests."""

    outcomes: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def main() -> None:
    args = parse_args()
    model = str(init_minilm(Path(args.init_minilm))) if args.init_minilm else args.model
    if not model:
        sys.exit("pass --model DIR or --init-minilm DIR")
    port = free_port()
    settings = [f"max_body_bytes={MAX_BODY_BYTES}", f"drain_s={args.drain_s}", *args.set]
    server = start_server(model, args.backend, port, settings)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, args.ready_timeout_s)
        warm_up(url)
        result = asyncio.run(soak(url, server, args))
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)
    result["exit_code"] = server.returncode
    report(result, args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    sys.exit(0 if result["passed"] else 1)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="Model directory (or py:module:factory) to serve.")
    p.add_argument("--backend", default="hf", choices=["hf", "onnx", "vllm"])
    p.add_argument("--init-minilm", metavar="DIR", help="Write an untrained MiniLM cross-encoder to DIR and serve it.")
    p.add_argument("--minutes", type=float, default=10.0, help="Length of the steady load.")
    p.add_argument("--clients", type=int, default=16, help="Concurrent clients, each sending back to back.")
    p.add_argument("--max-docs", type=int, default=10, help="Most documents in a good request (at least 1).")
    p.add_argument("--max-doc-words", type=int, default=200, help="Most words in a document (at least 5).")
    p.add_argument("--bad-every", type=int, default=20, help="One request in this many is a bad one.")
    p.add_argument("--drain-s", type=float, default=2.0, help="The server's drain_s.")
    p.add_argument("--drain-load-s", type=float, default=60.0, help="Most seconds to wait for the server to exit.")
    p.add_argument("--baseline-minute", type=int, default=2, help="RSS growth is measured from this minute's end.")
    p.add_argument("--max-rss-growth", type=float, default=0.10, help="Largest allowed RSS growth (0.10 = 10%%).")
    p.add_argument("--timeout-s", type=float, default=30.0, help="Client timeout per request.")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="More serve settings.")
    p.add_argument("--ready-timeout-s", type=float, default=300.0)
    p.add_argument("--json", metavar="FILE", help="Also write the result as JSON.")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def warm_up(url: str) -> None:
    """Two requests one at a time: the model's first calls are slow, and they give the server its rate."""
    rng = random.Random(-1)
    for k in range(2):
        body = {"query": "flea life cycle", "documents": [{"id": str(j), "text": " ".join(rng.choices(WORDS, k=100))}
                                                           for j in range(8)]}
        httpx.post(f"{url}/v1/judge", json=body, timeout=120).raise_for_status()


def good_body(rng: random.Random, args: argparse.Namespace, k: int) -> dict:
    query = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
    docs = [{"id": f"r{k}-d{j}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, args.max_doc_words)))}
            for j in range(rng.randint(1, args.max_docs))]
    return {"query": query, "documents": docs}


def bad_request(kind: str) -> dict:
    """httpx.post keyword arguments for a request the server must refuse with EXPECTED[kind]."""
    if kind == "malformed_json":
        return {"content": b'{"query": "q", "documents": [', "headers": {"Content-Type": "application/json"}}
    if kind == "wrong_type":
        return {"json": {"query": "q", "documents": [{"id": "a", "text": 5}]}}
    if kind == "too_many_documents":
        return {"json": {"query": "q", "documents": [{"id": str(i), "text": "x"} for i in range(101)]}}
    if kind == "document_too_long":
        return {"json": {"query": "q", "documents": [{"id": "long", "text": "flea " * 5000}]}}
    return {"content": b'{"query": "q", "documents": [' + b" " * (MAX_BODY_BYTES + 1) + b"]}",
            "headers": {"Content-Type": "application/json"}}


async def soak(url: str, server, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    minutes = max(1, round(args.minutes))
    start = time.monotonic()
    steady_end = start + args.minutes * 60
    periods: list[Tally] = [Tally() for _ in range(minutes)]
    drain = Tally()
    state = {"sigterm_at": None, "stop": False, "sent": 0, "in_flight": 0}

    def tally() -> Tally:
        """Where an outcome counts: its minute, or the drain once SIGTERM has been sent."""
        if state["sigterm_at"] is not None:
            return drain
        return periods[min(int((time.monotonic() - start) // 60), minutes - 1)]

    async def one(client: httpx.AsyncClient) -> None:
        k = state["sent"]
        state["sent"] += 1
        bad = BAD_KINDS[(k // args.bad_every) % len(BAD_KINDS)] if k % args.bad_every == args.bad_every - 1 else None
        kwargs = bad_request(bad) if bad else {"json": good_body(rng, args, k)}
        t0 = time.monotonic()
        state["in_flight"] += 1
        try:
            r = await client.post("/v1/judge", **kwargs)
        except httpx.ConnectError:
            tally().outcomes["refused (not accepted)"] += 1
            await asyncio.sleep(0.05)
            return
        except httpx.TimeoutException:
            tally().outcomes["ERROR timeout"] += 1
            return
        except RESETS as exc:
            tally().outcomes[f"ERROR reset ({type(exc).__name__})"] += 1
            return
        finally:
            state["in_flight"] -= 1
        t = tally()
        t.outcomes[classify(r, bad)] += 1
        if r.status_code == 200:
            t.latencies.append(time.monotonic() - t0)
        elif r.status_code == 503:  # a well-behaved client backs off as told
            await asyncio.sleep(min(float(r.headers.get("retry-after", 1)), 5.0))

    async def client_loop() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=args.timeout_s, limits=limits) as client:
            while not state["stop"]:
                await one(client)

    rss: list[tuple[float, float]] = [(0.0, rss_mb(server.pid))]

    async def monitor() -> None:
        for minute in range(1, minutes + 1):
            await asyncio.sleep(max(0.0, min(start + minute * 60, steady_end) - time.monotonic()))
            rss.append((minute, rss_mb(server.pid)))
            print_minute(minute, periods[minute - 1], rss[-1][1])

    clients = [asyncio.create_task(client_loop()) for _ in range(args.clients)]
    await monitor()
    await asyncio.sleep(max(0.0, steady_end - time.monotonic()))
    drain_report = await sigterm_under_load(url, server, state, args)
    state["stop"] = True
    await asyncio.wait(clients, timeout=args.timeout_s + 5)
    return summarise(periods, drain, rss, drain_report, args)


async def sigterm_under_load(url: str, server, state: dict, args: argparse.Namespace) -> dict:
    """SIGTERM with the clients still sending; poll /readyz until the server refuses connections."""
    queued = queue_depth(url)
    state["sigterm_at"] = time.monotonic()
    in_flight = state["in_flight"]
    server.send_signal(signal.SIGTERM)
    first_unready = first_refused = None
    deadline = state["sigterm_at"] + args.drain_load_s
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as probe:
        while time.monotonic() < deadline and server.poll() is None:
            now = time.monotonic() - state["sigterm_at"]
            try:
                r = await probe.get("/readyz", headers={"Connection": "close"})
                if r.status_code == 503 and first_unready is None:
                    first_unready = now
            except httpx.TransportError:
                if first_refused is None:
                    first_refused = now
            await asyncio.sleep(0.05)
    while server.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return {"queued_pairs_at_sigterm": queued, "requests_in_flight_at_sigterm": in_flight, "readyz_503_after_s": first_unready,
            "refused_after_s": first_refused, "exited_after_s": time.monotonic() - state["sigterm_at"],
            "exit_code": server.poll()}


def queue_depth(url: str) -> float | None:
    try:
        for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
            if line.startswith("genrel_queue_depth_pairs "):
                return float(line.split()[1])
    except httpx.HTTPError:
        pass
    return None


def classify(r: httpx.Response, bad: str | None) -> str:
    if bad is not None:
        return f"{r.status_code} {bad} (intended)" if r.status_code == EXPECTED[bad] else f"ERROR {r.status_code} for {bad}"
    if r.status_code == 200:
        return "200"
    if r.status_code == 503:
        code = r.json().get("error", {}).get("code", "?")
        retry = "with" if r.headers.get("retry-after") else "WITHOUT"
        return f"503 {code} {retry} Retry-After" + (" (intended)" if retry == "with" else "")
    return f"ERROR {r.status_code}"


def print_minute(minute: int, t: Tally, rss: float) -> None:
    q = percentiles_ms(t.latencies)
    shed = sum(n for k, n in t.outcomes.items() if k.startswith("503"))
    bad = sum(n for k, n in t.outcomes.items() if k.startswith(("413", "422")))
    errors = sum(n for k, n in t.outcomes.items() if k.startswith("ERROR"))
    print(f"minute {minute:>3}: {t.outcomes['200']:>6} ok  {bad:>4} 4xx  {shed:>5} 503  {errors:>3} errors | "
          f"p50 {q['p50_ms']:7.0f} ms  p99 {q['p99_ms']:7.0f} ms | RSS {rss:7.1f} MiB", flush=True)


def summarise(periods: list[Tally], drain: Tally, rss: list, drain_report: dict, args) -> dict:
    total = Counter()
    for t in periods:
        total.update(t.outcomes)
    errors = {k: n for k, n in total.items() if k.startswith("ERROR")}
    drain_errors = {k: n for k, n in drain.outcomes.items() if k.startswith("ERROR")}
    by_minute = {int(m): v for m, v in rss}
    base_minute = min(args.baseline_minute, max(1, len(rss) - 2))
    base, last = by_minute.get(base_minute), rss[-1][1]
    growth = (last - base) / base if base else float("nan")
    unready, refused = drain_report["readyz_503_after_s"], drain_report["refused_after_s"]
    checks = {
        "no errors other than intended 4xx/503": not errors,
        f"RSS growth minute {base_minute}->{rss[-1][0]:.0f} <= {args.max_rss_growth:.0%}": growth <= args.max_rss_growth,
        "every accepted request answered on SIGTERM": not drain_errors and drain.outcomes["200"] > 0,
        "/readyz 503 before the listener closed": unready is not None and (refused is None or unready < refused),
        "server exited 0": drain_report["exit_code"] == 0,
    }
    minutes = []
    for i, t in enumerate(periods, start=1):
        q = percentiles_ms(t.latencies)
        minutes.append({"minute": i, "outcomes": dict(t.outcomes), "p50_ms": q["p50_ms"], "p99_ms": q["p99_ms"],
                        "rss_mib": by_minute.get(i)})
    return {"total": dict(total), "errors": errors, "minutes": minutes, "rss_start_mib": rss[0][1],
            "rss_growth": growth, "rss_baseline_minute": base_minute, "drain": {**drain_report,
            "outcomes": dict(drain.outcomes)}, "checks": checks, "passed": all(checks.values())}


def report(result: dict, args: argparse.Namespace) -> None:
    print(f"\nrequests by outcome over {args.minutes:g} min ({args.clients} clients, backend {args.backend}):")
    for k, n in sorted(result["total"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:>7}  {k}")
    print(f"RSS {result['rss_start_mib']:.0f} MiB at the start (model loaded); growth from minute {result['rss_baseline_minute']} "
          f"to the end: {result['rss_growth']:+.1%}")
    d = result["drain"]
    print(f"SIGTERM with {d['requests_in_flight_at_sigterm']} requests in flight, {d['queued_pairs_at_sigterm']} "
          f"pairs queued: /readyz 503 after "
          f"{_s(d['readyz_503_after_s'])}, connections refused after {_s(d['refused_after_s'])}, exit "
          f"{d['exit_code']} after {d['exited_after_s']:.1f} s")
    for k, n in sorted(d["outcomes"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:>7}  {k}")
    for name, ok in result["checks"].items():
        print(f"[{'PASS' if ok else 'FAIL'}] {name}")


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:.2f} s"


if __name__ == "__main__":
    main()
