"""The HTTP scorer end to end: a real ``genrel serve`` process on a loopback port, driven with httpx.

Most tests serve the deterministic keyword-overlap scorer of ``test_serve_support`` through the
``py:module:factory`` developer hook, so results are exact and no model weights are needed; one test
serves a tiny random BERT cross-encoder directory through the real model loader.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import REPO
from genrel.data import Pair

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FACTORY = "py:test_serve_support:keyword_scorer"
LIMITS = [
    "max_documents_per_request=8",
    "max_chars_per_document=300",
    "max_query_chars=100",
    "max_body_bytes=4096",
    "max_batch_size=8",
    "max_batch_wait_ms=10",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(log_path: Path, *args: str, env: dict[str, str] | None = None, ready_timeout_s: float = 60.0):
    """Run ``genrel serve ARGS`` on a free loopback port until /readyz answers 200; yield (url, process)."""
    port = free_port()
    cmd = [sys.executable, "-c", "from genrel.cli import main; main()", "serve", "--port", str(port), *args]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)]), **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {ready_timeout_s} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One keyword-scorer server with auth on and small limits, shared by the module's tests."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    overrides = [a for item in LIMITS for a in ("--set", item)]
    with served(log, "--model", FACTORY, "--token-env", "TEST_SERVE_TOKEN", *overrides,
                env={"TEST_SERVE_TOKEN": TOKEN}) as (url, proc):
        with httpx.Client(base_url=url, headers=AUTH, timeout=30.0) as client:
            yield client


def docs(*texts: str, prefix: str = "d") -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(texts)]


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    text = client.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


# -- scoring ---------------------------------------------------------------------------------------


def test_score_returns_one_result_per_document_in_order(server):
    body = {"query": "flea life span", "documents": docs("nothing here", "flea life span facts", "a flea")}
    r = server.post("/v1/judge", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "keyword-overlap" and out["latency_ms"] >= 0
    assert [x["id"] for x in out["results"]] == ["d0", "d1", "d2"]
    gains = {"irrelevant": 0, "related": 1, "highly": 2, "perfect": 3}
    for x in out["results"]:
        assert math.isclose(sum(x["probabilities"].values()), 1.0, abs_tol=1e-9)
        assert math.isclose(x["score"], sum(gains[k] * p for k, p in x["probabilities"].items()), abs_tol=1e-9)
        assert "explanation" not in x
    labels = [x["label"] for x in out["results"]]
    assert labels == ["irrelevant", "perfect", "related"]


def test_rank_orders_by_score_keeps_ties_stable_and_cuts_top_k(server):
    texts = ["nothing", "flea life span", "flea", "flea", "no match"]
    body = {"query": "flea life span", "documents": docs(*texts)}
    full = server.post("/v1/rank", json=body).json()["results"]
    assert [x["id"] for x in full] == ["d1", "d2", "d3", "d0", "d4"]  # ties d2/d3 and d0/d4 keep order
    assert [x["rank"] for x in full] == [1, 2, 3, 4, 5]
    top = server.post("/v1/rank", json={**body, "top_k": 2}).json()["results"]
    assert [x["id"] for x in top] == ["d1", "d2"]
    assert server.post("/v1/rank", json={**body, "top_k": 0}).status_code == 422


def test_explain_returns_the_reasoning_only_when_asked(server):
    body = {"query": "red shoes", "documents": [{"id": "p", "title": "Red", "text": "shoes", "fields": {"size": 42}}]}
    plain = server.post("/v1/judge", json=body).json()["results"][0]
    explained = server.post("/v1/judge", json={**body, "explain": True}).json()["results"][0]
    assert "explanation" not in plain
    assert explained["explanation"]["reasoning"] == "query words found: red, shoes"
    assert explained["explanation"]["verdicts"] == {"topic": "yes"}
    assert explained["score"] == plain["score"]


def test_empty_document_list_gives_empty_results(server):
    r = server.post("/v1/judge", json={"query": "q", "documents": []})
    assert r.status_code == 200 and r.json()["results"] == []


# -- ops endpoints -----------------------------------------------------------------------------------


def test_health_ready_info_and_openapi(server):
    assert server.get("/healthz", headers={"Authorization": ""}).json() == {"status": "ok"}
    ready = server.get("/readyz", headers={"Authorization": ""})
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = server.get("/v1/info").json()
    assert [lab["name"] for lab in info["labels"]] == ["irrelevant", "related", "highly", "perfect"]
    assert info["limits"]["max_documents_per_request"] == 8
    spec = server.get("/openapi.json").json()
    assert {"/v1/judge", "/v1/rank", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"ScoreRequest", "RankRequest", "ScoreResponse", "RankResponse", "ErrorResponse"} <= set(schemas)
    assert schemas["ScoreRequest"]["examples"][0]["documents"]
    assert set(spec["paths"]["/v1/judge"]["post"]["responses"]) >= {"200", "401", "413", "422", "500"}


def test_metrics_counters_move(server):
    before_requests = metric(server, "genrel_requests_total", endpoint="/v1/judge", status="200")
    before_pairs = metric(server, "genrel_pairs_scored_total")
    before_batches = metric(server, "genrel_batch_size_pairs_count")
    server.post("/v1/judge", json={"query": "a b", "documents": docs("a", "b", "c")})
    assert metric(server, "genrel_requests_total", endpoint="/v1/judge", status="200") == before_requests + 1
    assert metric(server, "genrel_pairs_scored_total") == before_pairs + 3
    assert metric(server, "genrel_batch_size_pairs_count") >= before_batches + 1
    text = server.get("/metrics").text
    for name in ("genrel_request_latency_seconds_bucket", "genrel_queue_depth_pairs", "genrel_model_info"):
        assert name in text


# -- limits and malformed requests ----------------------------------------------------------------


def test_too_many_documents_is_413_naming_the_limit(server):
    r = server.post("/v1/judge", json={"query": "q", "documents": docs(*["x"] * 9)})
    assert r.status_code == 413
    err = r.json()["error"]
    assert (err["code"], err["limit"], err["limit_value"], err["value"]) == ("too_many_documents",
                                                                            "max_documents_per_request", 8, 9)
    assert "max_documents_per_request" in err["message"] and "9" in err["message"]


def test_too_long_document_or_query_is_413(server):
    r = server.post("/v1/judge", json={"query": "q", "documents": [{"id": "big", "text": "x" * 301}]})
    assert r.status_code == 413
    err = r.json()["error"]
    assert (err["code"], err["document_id"], err["value"]) == ("document_too_long", "big", 301)
    r = server.post("/v1/judge", json={"query": "q" * 101, "documents": docs("x")})
    assert r.status_code == 413 and r.json()["error"]["limit"] == "max_query_chars"


def test_body_over_the_byte_cap_is_413_before_parsing(server):
    big = b'{"query": "q", "documents": [' + b" " * 5000 + b"]}"
    r = server.post("/v1/judge", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["limit"] == "max_body_bytes"
    chunked = server.post("/v1/judge", content=iter([big[:3000], big[3000:]]),
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    not_json = b"{" * 5000  # refused for its size, never parsed
    assert server.post("/v1/judge", content=not_json, headers={"Content-Type": "application/json"}).status_code == 413


def test_malformed_requests_are_422_with_field_paths(server):
    bad_json = server.post("/v1/judge", content=b'{"query": "q", ', headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422 and bad_json.json()["error"]["errors"][0]["type"] == "json_invalid"
    missing = server.post("/v1/judge", json={"query": "q", "documents": [{"id": "a"}]})
    assert missing.status_code == 422
    assert missing.json()["error"]["errors"][0]["loc"] == "body.documents.0.text"
    wrong = server.post("/v1/judge", json={"query": "q", "documents": [{"id": "a", "text": 5}], "explain": "maybe"})
    locs = {e["loc"] for e in wrong.json()["error"]["errors"]}
    assert wrong.status_code == 422 and locs == {"body.documents.0.text", "body.explain"}
    extra = server.post("/v1/judge", json={"query": "q", "documents": [], "explian": True})
    assert extra.status_code == 422 and extra.json()["error"]["errors"][0]["loc"] == "body.explian"
    dup = server.post("/v1/judge", json={"query": "q", "documents": docs("a") + docs("b")})
    assert dup.status_code == 422 and "duplicate id 'd0'" in dup.json()["error"]["message"]
    form = server.post("/v1/judge", content=b"query=q", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415


def test_auth_is_required_on_the_api_but_not_on_health(server):
    body = {"query": "q", "documents": docs("x")}
    none = server.post("/v1/judge", json=body, headers={"Authorization": ""})
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    wrong = server.post("/v1/judge", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert server.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert server.get("/healthz", headers={"Authorization": ""}).status_code == 200
    # a wrong token on an oversized body is still 401: auth comes before reading the body
    headers = {"Authorization": "", "Content-Type": "application/json"}
    assert server.post("/v1/judge", content=b"x" * 10000, headers=headers).status_code == 401


# -- failures and concurrency --------------------------------------------------------------------


def test_scorer_exception_fails_only_its_request_and_the_worker_survives(server):
    errors_before = metric(server, "genrel_scorer_errors_total", kind="exception")
    poisoned = server.post("/v1/judge", json={"query": "q", "documents": docs("fine", "POISON pill")})
    assert poisoned.status_code == 500
    assert poisoned.json()["error"]["code"] == "scoring_failed" and "poisoned document d1" in poisoned.text
    assert metric(server, "genrel_scorer_errors_total", kind="exception") > errors_before
    nan = server.post("/v1/judge", json={"query": "q", "documents": docs("NAN")})
    assert nan.status_code == 500 and "not a finite number" in nan.json()["error"]["message"]
    assert metric(server, "genrel_scorer_errors_total", kind="bad_output") >= 1
    ok = server.post("/v1/judge", json={"query": "q", "documents": docs("q")})
    assert ok.status_code == 200 and ok.json()["results"][0]["label"] == "perfect"
    assert server.get("/readyz").status_code == 200


def _client_bodies(n: int) -> list[dict]:
    """Distinct requests: client i sends 1..8 documents with ids unique to it, some poisoned for i % 10 == 7."""
    bodies = []
    for i in range(n):
        texts = [f"word{i} doc{j}" + (" POISON" if i % 10 == 7 and j == 0 else "") for j in range(1 + i % 8)]
        bodies.append({"query": f"word{i}", "documents": docs(*texts, prefix=f"c{i}-")})
    return bodies


def test_fifty_concurrent_clients_get_their_own_results(server):
    bodies = _client_bodies(50)

    async def drive():
        async with httpx.AsyncClient(base_url=str(server.base_url), headers=AUTH, timeout=30.0,
                                     limits=httpx.Limits(max_connections=50)) as client:
            return await asyncio.gather(*(client.post("/v1/judge", json=b) for b in bodies))

    batches_before = metric(server, "genrel_batch_size_pairs_count")
    pairs_before = metric(server, "genrel_pairs_scored_total")
    responses = asyncio.run(drive())
    for i, (body, r) in enumerate(zip(bodies, responses)):
        if i % 10 == 7:  # poisoned: only these fail, and cleanly
            assert r.status_code == 500, r.text
            continue
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["id"] for x in results] == [d["id"] for d in body["documents"]]
        assert all(x["label"] == "perfect" for x in results)  # each document contains its own query word
    clean_pairs = sum(len(b["documents"]) for i, b in enumerate(bodies) if i % 10 != 7)
    assert metric(server, "genrel_pairs_scored_total") - pairs_before >= clean_pairs
    batches = metric(server, "genrel_batch_size_pairs_count") - batches_before
    assert batches < clean_pairs  # pairs of different requests shared scorer calls
    assert server.post("/v1/judge", json={"query": "q", "documents": docs("q")}).status_code == 200


# -- process lifecycle ---------------------------------------------------------------------------


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(tmp_path):
    log = tmp_path / "server.log"
    with served(log, "--model", FACTORY, "--set", "max_batch_size=4", "--set", "max_batch_wait_ms=1",
                env={"GENREL_TEST_SCORER_DELAY_S": "0.5", "GENREL_SERVE_TOKEN": ""}) as (url, proc):

        async def drive():
            async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
                body = {"query": "a", "documents": docs("a", "b")}
                tasks = [asyncio.create_task(client.post("/v1/judge", json=body)) for _ in range(8)]
                # 16 pairs, 4 per 0.5 s call: once 12 wait in the queue, every request is in the server
                queued, deadline = 0.0, time.monotonic() + 5
                while queued < 12 and time.monotonic() < deadline:
                    text = (await client.get("/metrics")).text
                    queued = float(text.split("\ngenrel_queue_depth_pairs ")[1].split()[0])
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGTERM)
                return queued, await asyncio.gather(*tasks, return_exceptions=True)

        queued, responses = asyncio.run(drive())
        assert queued >= 12  # SIGTERM came while requests were queued and a batch was running
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    statuses = [r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in responses]
    assert statuses == [200] * 8, log.read_text()[-3000:]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=1.0)
    assert "Finished server process" in log.read_text()


def test_cli_reports_a_bad_model_in_one_line(tmp_path):
    cmd = [sys.executable, "-c", "from genrel.cli import main; main()", "serve", "--model", "py:no_such_module:f"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 6 and "cannot import module 'no_such_module'" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(cmd[:4] + ["--model", str(tmp_path / "absent")], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 6 and "model directory not found" in r.stderr


# -- a real model directory ------------------------------------------------------------------------


def save_tiny_cross_encoder(out_dir: Path) -> Path:
    """A tiny random BERT classifier + a WordPiece tokenizer trained in-process, as a genrel model dir."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from genrel.criteria import load_criteria
    from genrel.score.cross_encoder import CrossEncoderModel

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    corpus = ["how long do fleas live", "adult fleas live from 20 days to a year", "red running shoes size 42"] * 4
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials,
                                                              show_progress=False))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    criteria = load_criteria("trec-dl")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(criteria.labels))
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    return CrossEncoderModel(model, tokenizer, criteria, max_length=64).save(out_dir, created_by="test_serve")


def test_serves_a_tiny_cross_encoder_directory(tmp_path):
    pytest.importorskip("genrel.score.load", reason="genrel.score.load_scorer is not in this tree yet")
    model_dir = save_tiny_cross_encoder(tmp_path / "ce")
    with served(tmp_path / "server.log", "--model", str(model_dir), "--backend", "hf",
                env={"GENREL_SERVE_TOKEN": ""}) as (url, _):
        body = {"query": "how long do fleas live", "documents": docs("fleas live 20 days", "red shoes")}
        r = httpx.post(f"{url}/v1/rank", json=body, timeout=30.0)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert sorted(x["id"] for x in results) == ["d0", "d1"]
        for x in results:
            assert set(x["probabilities"]) == {"irrelevant", "related", "highly", "perfect"}
            assert math.isclose(sum(x["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert results[0]["score"] >= results[1]["score"]
        explained = httpx.post(f"{url}/v1/judge", json={**body, "explain": True}, timeout=30.0).json()
        assert explained["results"][0]["explanation"] == {"reasoning": None, "verdicts": {}, "format_error": None}
        assert json.loads(httpx.get(f"{url}/v1/info").text)["criteria"] == "trec-dl"


def test_onnx_backend_serves_the_chosen_export_file(tmp_path):
    pytest.importorskip("onnxruntime")
    from genrel.errors import ModelError
    from genrel.score.onnx_export import export_onnx
    from genrel.serve import ServeConfig
    from genrel.serve.loading import load_serving_scorer

    model_dir = save_tiny_cross_encoder(tmp_path / "ce")
    export_onnx(model_dir, tmp_path / "onnx", int8=True)
    pairs = [Pair(row_id="0", query="how long do fleas live", text="fleas live 20 days")]
    scored = {}
    for name in ("model.onnx", "model.int8.onnx"):
        scorer = load_serving_scorer(ServeConfig(model=str(tmp_path / "onnx"), backend="onnx", onnx_file=name))
        assert Path(scorer.session._model_path).name == name
        scored[name] = scorer.score_pairs(pairs)[0].probabilities
    assert set(scored["model.int8.onnx"]) == set(scored["model.onnx"])
    with pytest.raises(ModelError, match="no model.fp16.onnx here"):
        load_serving_scorer(ServeConfig(model=str(tmp_path / "onnx"), backend="onnx", onnx_file="model.fp16.onnx"))


# -- in-process (no server): timeouts and back-pressure ----------------------------------------------


def test_slow_scoring_is_504_and_a_full_queue_is_503():
    from genrel.serve import ServeConfig, create_app
    from test_serve_support import KeywordScorer

    cfg = ServeConfig(model="py:test_serve_support:keyword_scorer", request_timeout_s=0.2, max_queue_pairs=3,
                      max_batch_size=1, max_batch_wait_ms=0)
    app = create_app(KeywordScorer(delay_s=0.5), cfg)

    async def drive():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                slow = asyncio.create_task(client.post("/v1/judge", json={"query": "q", "documents": docs("a", "b")}))
                await asyncio.sleep(0.05)  # "a" is being scored, "b" waits: 1 of 3 queue places taken
                full = await client.post("/v1/judge", json={"query": "q", "documents": docs("x", "y", "z")})
                return await slow, full

    slow, full = asyncio.run(drive())
    assert slow.status_code == 504 and slow.json()["error"]["code"] == "timeout"
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert full.json()["error"]["code"] == "queue_full"
