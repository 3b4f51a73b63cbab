"""The micro-batcher on its own (no HTTP): batching across requests, order, failure isolation, draining;
and the serve config's token and factory rules."""

from __future__ import annotations

import asyncio
import time

import pytest

from genrel.config import StageConfig
from genrel.data.pair import Pair
from genrel.errors import ConfigError
from genrel.serve.batcher import MicroBatcher, QueueFull, ScoringError, invalid_result
from genrel.serve.config import ServeConfig
from test_serve_support import KeywordScorer


class RecordingScorer(KeywordScorer):
    """Keyword scorer that records each call's pair ids; ``wrong_count`` returns one result too few."""

    def __init__(self, delay_s: float = 0.0, wrong_count: bool = False):
        super().__init__(delay_s)
        self.calls: list[list[str]] = []
        self.wrong_count = wrong_count

    def score_pairs(self, pairs, *, explain=False):
        self.calls.append([p.row_id for p in pairs])
        out = super().score_pairs(pairs, explain=explain)
        return out[:-1] if self.wrong_count else out


def pairs(prefix: str, n: int, text: str = "q") -> list[Pair]:
    return [Pair(row_id=f"{prefix}{i}", query="q", text=text) for i in range(n)]


def run(coro):
    return asyncio.run(coro)


async def with_batcher(scorer, body, **kwargs):
    batcher = MicroBatcher(scorer, **kwargs)
    await batcher.start()
    try:
        return await body(batcher)
    finally:
        await batcher.stop()


def test_concurrent_requests_share_batches_and_keep_their_order():
    scorer = RecordingScorer()

    async def body(b):
        return await asyncio.gather(b.score(pairs("a", 7)), b.score(pairs("b", 2)))

    a, b = run(with_batcher(scorer, body, max_batch_size=4, max_wait_s=0.05))
    assert len(a) == 7 and len(b) == 2
    assert [len(c) for c in scorer.calls] == [4, 4, 1]  # a's pairs split across batches, b's joined a's
    assert sum(scorer.calls, []) == [f"a{i}" for i in range(7)] + ["b0", "b1"]


def test_a_listwise_scorer_sees_each_request_whole_and_alone():
    scorer = RecordingScorer()
    scorer.listwise = True

    async def body(b):
        return await asyncio.gather(b.score(pairs("a", 5)), b.score(pairs("b", 2)), b.score(pairs("c", 1)))

    run(with_batcher(scorer, body, max_batch_size=2, max_wait_s=0.05))
    assert scorer.calls == [[f"a{i}" for i in range(5)], ["b0", "b1"], ["c0"]]


def test_a_failing_request_is_isolated_from_its_batch_mates():
    scorer = RecordingScorer()

    async def body(b):
        return await asyncio.gather(
            b.score(pairs("ok", 2)), b.score(pairs("bad", 2, text="POISON")), return_exceptions=True
        )

    ok, bad = run(with_batcher(scorer, body, max_batch_size=8, max_wait_s=0.05))
    assert len(ok) == 2 and isinstance(bad, ScoringError) and bad.kind == "exception"
    assert scorer.calls[0] == ["ok0", "ok1", "bad0", "bad1"]  # shared batch failed, then each request alone
    assert scorer.calls[1:] == [["ok0", "ok1"], ["bad0", "bad1"]]


def test_wrong_result_count_is_bad_output_and_the_worker_goes_on():
    scorer = RecordingScorer(wrong_count=True)

    async def body(b):
        with pytest.raises(ScoringError, match="returned 1 results for 2 pairs") as info:
            await b.score(pairs("a", 2))
        assert info.value.kind == "bad_output"
        scorer.wrong_count = False
        return await b.score(pairs("b", 2)), b.running

    results, running = run(with_batcher(scorer, body))
    assert len(results) == 2 and running


def test_cancelled_request_pairs_are_skipped():
    scorer = RecordingScorer(delay_s=0.2)

    async def body(b):
        first = asyncio.create_task(b.score(pairs("a", 1)))
        await asyncio.sleep(0.05)  # "a" is being scored; "gone" waits behind it
        gone = asyncio.create_task(b.score(pairs("gone", 3)))
        await asyncio.sleep(0.01)
        gone.cancel()
        await first
        return await b.score(pairs("c", 1))

    run(with_batcher(scorer, body, max_batch_size=8, max_wait_s=0.0))
    assert scorer.calls == [["a0"], ["c0"]]


def test_queue_full_and_drain_on_stop():
    scorer = RecordingScorer(delay_s=0.1)

    async def body():
        b = MicroBatcher(scorer, max_batch_size=2, max_wait_s=0.0, max_queue_pairs=4)
        await b.start()
        waiting = asyncio.create_task(b.score(pairs("a", 4)))
        await asyncio.sleep(0.01)  # the worker holds 2 of them, 2 still wait
        with pytest.raises(QueueFull):
            await b.score(pairs("b", 3))
        started = time.perf_counter()
        await b.stop(timeout_s=5)
        assert not b.running
        return await waiting, time.perf_counter() - started

    results, elapsed = run(body())
    assert len(results) == 4 and elapsed >= 0.15  # queued pairs were scored before the worker ended


def test_invalid_results_are_named():
    good = KeywordScorer().score_pairs(pairs("a", 1))[0]
    assert invalid_result(good) is None
    assert "not a finite number" in invalid_result(good.__class__(label="x", score=float("inf"),
                                                                  probabilities={"x": 1.0}))
    assert "probability of 'x'" in invalid_result(good.__class__(label="x", score=1.0, probabilities={"x": 2.0}))
    assert "expected a Scored" in invalid_result({"label": "x"})


def test_serve_config_token_and_factory_rules(monkeypatch):
    monkeypatch.delenv("GENREL_SERVE_TOKEN", raising=False)
    assert ServeConfig(model="m").token() is None
    monkeypatch.setenv("GENREL_SERVE_TOKEN", "env-token")
    assert ServeConfig(model="m").token() == "env-token"
    assert ServeConfig(model="m", auth_token="explicit").token() == "explicit"
    monkeypatch.setenv("OTHER", "other-token")
    assert ServeConfig(model="m", token_env="OTHER").token() == "other-token"
    assert "explicit" not in str(ServeConfig(model="m", auth_token="explicit").model_dump(mode="json"))
    with pytest.raises(ConfigError, match="py:module:factory"):
        ServeConfig.load(None, ["model=py:nofactory"])
    with pytest.raises(ConfigError, match="max_batch_size"):
        ServeConfig.load(None, ["max_batch_size=0"])
    assert issubclass(ServeConfig, StageConfig)
