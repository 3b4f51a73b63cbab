"""The rerank dialects of ``genrel serve`` end to end: a live server on loopback, called with the official
``cohere`` SDK (rerank v1 and v2) and with raw bodies in the shapes TEI and vLLM document. Every answer
is checked against the native ``/v1/rank`` ranking of the same documents: same order, same cut, and
``relevance_score`` = expected gain ÷ max gain."""

from __future__ import annotations

import math

import httpx
import pytest

from test_serve import AUTH, FACTORY, TOKEN, metric, served

cohere = pytest.importorskip("cohere")

QUERY = "flea life span"
TEXTS = ["nothing here", "flea life span facts", "a flea", "span of a flea life", "fleas"]
MAX_GAIN = 3.0  # trec-dl, the keyword scorer's criteria


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    log = tmp_path_factory.mktemp("dialects") / "server.log"
    overrides = ["--set", "max_documents_per_request=8", "--set", "max_batch_wait_ms=5"]
    with served(log, "--model", FACTORY, "--token-env", "TEST_SERVE_TOKEN", *overrides,
                env={"TEST_SERVE_TOKEN": TOKEN}) as (base, _):
        yield base


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, headers=AUTH, timeout=30.0) as client:
        yield client


def native(http, top_k=None) -> list[dict]:
    body = {"query": QUERY, "documents": [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)]}
    if top_k:
        body["top_k"] = top_k
    r = http.post("/v1/rank", json=body)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def assert_matches_native(results, expected, score_key="relevance_score"):
    assert [int(r["index"]) for r in results] == [int(e["id"]) for e in expected]
    for r, e in zip(results, expected):
        assert math.isclose(r[score_key], e["score"] / MAX_GAIN, abs_tol=1e-9)
        assert 0.0 <= r[score_key] <= 1.0
        assert r["label"] == e["label"] and r["probabilities"] == pytest.approx(e["probabilities"])


def test_cohere_sdk_v2_rerank_matches_native_ranking_and_top_n(url, http):
    co = cohere.ClientV2(api_key=TOKEN, base_url=url)
    answer = co.rerank(model="genrel", query=QUERY, documents=TEXTS, top_n=3)
    results = [r.model_dump() for r in answer.results]
    assert len(results) == 3
    assert_matches_native(results, native(http, top_k=3))
    assert answer.results[0].label == native(http)[0]["label"]  # genrel's extras are attributes too
    assert "document" not in results[0] or results[0]["document"] is None


def test_cohere_sdk_v1_rerank_with_document_objects_and_return_documents(url, http):
    co = cohere.Client(api_key=TOKEN, base_url=url)
    docs = [{"text": t} for t in TEXTS]
    answer = co.rerank(model="genrel", query=QUERY, documents=docs, return_documents=True)
    results = [r.model_dump() for r in answer.results]
    assert_matches_native(results, native(http))
    assert [r["document"]["text"] for r in results] == [TEXTS[r["index"]] for r in results]
    assert answer.meta.api_version.version == "1"


def test_cohere_sdk_errors_are_cohere_errors(url):
    with pytest.raises(cohere.core.api_error.ApiError) as too_many:
        cohere.ClientV2(api_key=TOKEN, base_url=url).rerank(model="m", query="q", documents=["x"] * 9)
    assert too_many.value.status_code == 413
    assert "max_documents_per_request" in too_many.value.body["message"]
    assert set(too_many.value.body) == {"message"}
    with pytest.raises(cohere.errors.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=url).rerank(model="m", query="q", documents=["x"])


def test_jina_and_vllm_style_v1_rerank_body(http):
    body = {"model": "BAAI/bge-reranker-base", "query": QUERY, "documents": TEXTS, "top_n": 2}
    r = http.post("/v1/rerank", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert_matches_native(results, native(http, top_k=2))
    assert results[0]["document"] == {"text": TEXTS[results[0]["index"]]}


def test_tei_rerank_body(http):
    body = {"query": QUERY, "texts": TEXTS, "raw_scores": False, "return_text": True, "truncate": False,
            "truncation_direction": "Right"}
    r = http.post("/rerank", json=body)
    assert r.status_code == 200, r.text
    results = r.json()
    assert isinstance(results, list)
    assert_matches_native(results, native(http), score_key="score")
    assert [x["text"] for x in results] == [TEXTS[x["index"]] for x in results]
    raw = http.post("/rerank", json={"query": QUERY, "texts": TEXTS, "raw_scores": True}).json()
    assert [x["score"] for x in raw] == pytest.approx([e["score"] for e in native(http)])
    bad = http.post("/rerank", json={"query": QUERY})
    assert bad.status_code == 422 and bad.json()["error_type"] == "Validation" and "texts" in bad.json()["error"]


def test_vllm_score_bodies(http):
    one = http.post("/v1/score", json={"model": "m", "text_1": QUERY, "text_2": TEXTS[1]})
    assert one.status_code == 200, one.text
    assert one.json()["object"] == "list" and [d["index"] for d in one.json()["data"]] == [0]
    many = http.post("/v1/score", json={"model": "m", "text_1": QUERY, "text_2": TEXTS}).json()["data"]
    by_id = {int(e["id"]): e for e in native(http)}
    assert [d["index"] for d in many] == list(range(len(TEXTS)))  # the request's order, not ranked
    for d in many:
        assert d["object"] == "score"
        assert math.isclose(d["score"], by_id[d["index"]]["score"] / MAX_GAIN, abs_tol=1e-9)
    pairwise = http.post("/v1/score", json={"text_1": [QUERY, "nothing"], "text_2": [TEXTS[1], TEXTS[1]]})
    scores = [d["score"] for d in pairwise.json()["data"]]
    assert scores[0] == pytest.approx(many[1]["score"]) and scores[1] < scores[0]
    bad = http.post("/v1/score", json={"text_1": ["a", "b"], "text_2": ["x", "y", "z"]})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "BadRequestError" and bad.json()["error"]["code"] == 400


def test_auth_and_metrics_cover_every_dialect_route(url, http):
    for path, body in [("/rerank", {"query": "q", "texts": ["x"]}), ("/v2/rerank", {"query": "q", "documents": ["x"]}),
                       ("/v1/score", {"text_1": "q", "text_2": "x"})]:
        assert httpx.post(f"{url}{path}", json=body).status_code == 401, path
        before = metric(http, "genrel_requests_total", endpoint=path, status="200")
        assert http.post(path, json=body).status_code == 200
        assert metric(http, "genrel_requests_total", endpoint=path, status="200") == before + 1


def test_native_routes_take_plain_string_documents(http):
    ranked = http.post("/v1/rank", json={"query": QUERY, "documents": TEXTS, "top_k": 2}).json()["results"]
    assert [r["id"] for r in ranked] == [e["id"] for e in native(http, top_k=2)]
    judged = http.post("/v1/judge", json={"query": QUERY, "documents": ["flea", {"id": "x", "text": "y"}]})
    assert [r["id"] for r in judged.json()["results"]] == ["0", "x"]
