"""Teacher traces: a real OpenAI-compatible server on loopback (``transformers serve`` when its extra is
installed, else a small FastAPI server generating with the tiny model), retries against a server that
fails on purpose, resume after a crash, and verdict-only traces from gold labels."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from genrel.criteria import load_criteria, preset_names
from genrel.data import Pair, write_pairs_jsonl
from genrel.errors import ConfigError, EndpointError
from genrel.grammar import Parsed, parse, try_parse
from genrel.train.teacher import (
    FREE_STEP_PLACEHOLDER,
    TeacherConfig,
    accepted_traces,
    chat_url,
    gold_completion,
    read_traces,
    run_teacher,
)
from genrel.verify import step_status

QUERIES = ["how long do fleas live", "average wedding dress alteration cost", "what is a bowline knot",
           "boiling point of water at altitude", "who wrote the iliad", "red running shoes size 42"]


def judged_pairs(count: int = 4) -> list[Pair]:
    labels = ["irrelevant", "related", "highly", "perfect"]
    return [
        Pair(row_id=f"r{i}", qid=f"q{i % 3}", docid=f"d{i}", query=QUERIES[i % len(QUERIES)],
             text=f"Passage {i} about {QUERIES[i % len(QUERIES)]}.", label=labels[i % 4])
        for i in range(count)
    ]


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    return write_pairs_jsonl(judged_pairs(4), tmp_path / "pairs.jsonl")


def keys(path: Path) -> list[tuple[str, int]]:
    return [(r["row_id"], r["sample"]) for r in read_traces(path)]


# -- servers on loopback ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """Runs an ASGI app with uvicorn in a thread on 127.0.0.1."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def scripted_app(script, completion: str = "no steps here", model_id: str = "scripted"):
    """A chat endpoint whose status codes follow ``script(call_number)``; records every request."""
    app = FastAPI()
    app.state.calls = []

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model_id, "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        app.state.calls.append({"body": body, "auth": request.headers.get("authorization")})
        status = script(len(app.state.calls))
        if status != 200:
            return JSONResponse({"error": {"message": f"scripted {status}"}}, status_code=status)
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": completion}}]}

    return app


def tiny_model_app(model_dir: Path):
    """An OpenAI-style chat endpoint that samples from a tiny random model with transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": str(model_dir), "object": "model"}]}

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        ids = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with lock, torch.no_grad():
            out = model.generate(**ids, do_sample=True, temperature=body.get("temperature") or 1.0,
                                 max_new_tokens=body.get("max_tokens", 16), pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": text}}]}

    return app


@pytest.fixture(scope="module")
def transformers_serve(tiny_model_dir):
    """A real ``transformers serve`` process on loopback serving the tiny model."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs its extra: pip install 'transformers[serving]' (the openai package)")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cli = [sys.executable, "-c", "from transformers.cli.transformers import main; main()"]
    proc = subprocess.Popen(
        [*cli, "serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not answer /health within 120 s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def endpoint_config(tmp_path: Path, data: Path, base_url: str, **over) -> TeacherConfig:
    values = dict(data=str(data), criteria="trec-dl", out=str(tmp_path / "traces.jsonl"), base_url=base_url,
                  n=2, concurrency=2, max_tokens=16, timeout_s=60, backoff_s=0.01, max_backoff_s=0.05)
    values.update(over)
    return TeacherConfig.model_validate(values)


# -- end to end against a real model ---------------------------------------------------------------


def check_garbage_run_and_resume(tmp_path: Path, base_url: str, model: str | None) -> None:
    """Subset first, then the full file: n × pairs lines in the end, none repeated, the first ones kept."""
    pairs = judged_pairs(4)
    subset = write_pairs_jsonl(pairs[:2], tmp_path / "subset.jsonl")
    full = write_pairs_jsonl(pairs, tmp_path / "full.jsonl")
    out = tmp_path / "traces.jsonl"

    first = run_teacher(endpoint_config(tmp_path, subset, base_url, model=model), progress=False)
    assert first.written == 4 and first.skipped == 0
    before = out.read_bytes()

    second = run_teacher(endpoint_config(tmp_path, full, base_url, model=model), progress=False)
    assert second.skipped == 4 and second.written == 4
    assert out.read_bytes().startswith(before)
    got = keys(out)
    assert sorted(got) == sorted((p.row_id, s) for p in pairs for s in range(2))
    records = read_traces(out)
    # A tiny random model writes garbage: every line records a parse error, nothing is accepted.
    assert all(r["error"] and not r["accepted"] and r["label"] is None for r in records)
    assert {r["gold_label"] for r in records} == {p.label for p in pairs}
    assert all(r["pair"]["query"] for r in records)
    assert sum(a for a, _ in second.acceptance.values()) == 0
    assert sum(t for _, t in second.acceptance.values()) == 8
    assert accepted_traces(out) == []


@pytest.mark.slow  # about 45 s on 2 busy cores: the server's start-up dominates
def test_teacher_against_transformers_serve(tmp_path, transformers_serve):
    base_url, model = transformers_serve
    check_garbage_run_and_resume(tmp_path, base_url, model)


def test_teacher_against_tiny_model_server(tmp_path, tiny_model_dir):
    with LoopbackServer(tiny_model_app(tiny_model_dir)) as server:
        check_garbage_run_and_resume(tmp_path, server.base_url, None)  # model name read from /v1/models


# -- retries, failures, resume ---------------------------------------------------------------------


def test_retries_500_then_succeeds(tmp_path, pairs_file):
    with LoopbackServer(scripted_app(lambda call: 500 if call <= 2 else 200)) as server:
        result = run_teacher(endpoint_config(tmp_path, pairs_file, server.base_url, concurrency=1), progress=False)
        calls = server.server.config.app.state.calls
    assert result.written == 8
    assert len(calls) == 8 + 2  # the two failed calls were retried, nothing else repeated
    assert len(set(keys(tmp_path / "traces.jsonl"))) == 8


def test_retries_exhausted_stop_the_run_and_rerun_resumes(tmp_path, pairs_file):
    state = {"down": True}

    def script(call: int) -> int:
        return 503 if state["down"] and call > 3 else 200

    app = scripted_app(script, completion=gold_completion(load_criteria("trec-dl"), judged_pairs(1)[0]))
    out = tmp_path / "traces.jsonl"
    with LoopbackServer(app) as server:
        cfg = endpoint_config(tmp_path, pairs_file, server.base_url, concurrency=1, max_retries=2)
        with pytest.raises(EndpointError, match="503"):
            run_teacher(cfg, progress=False)
        assert len(keys(out)) == 3  # the three answered samples are on disk
        before = out.read_bytes()
        state["down"] = False
        result = run_teacher(cfg, progress=False)
    assert result.skipped == 3 and result.written == 5
    assert out.read_bytes().startswith(before)
    assert sorted(keys(out)) == sorted((f"r{i}", s) for i in range(4) for s in range(2))
    # The scripted completion is the gold trace of r0 (irrelevant): accepted exactly for r0's label.
    assert result.acceptance["irrelevant"] == (2, 2)
    assert result.acceptance["related"] == (0, 2)


def test_partial_last_line_is_ignored_and_redone(tmp_path, pairs_file):
    out = tmp_path / "traces.jsonl"
    with LoopbackServer(scripted_app(lambda call: 200)) as server:
        cfg = endpoint_config(tmp_path, pairs_file, server.base_url, n=1)
        run_teacher(cfg, progress=False)
        lines = out.read_bytes().splitlines(keepends=True)
        out.write_bytes(b"".join(lines[:2]) + lines[2][:25])  # a crash in the middle of the third line
        assert len(read_traces(out)) == 2
        result = run_teacher(cfg, progress=False)
    assert result.skipped == 2 and result.written == 2
    assert sorted(keys(out)) == [(f"r{i}", 0) for i in range(4)]


def test_fatal_status_stops_without_retrying(tmp_path, pairs_file):
    with LoopbackServer(scripted_app(lambda call: 401)) as server:
        with pytest.raises(EndpointError, match="API key"):
            run_teacher(endpoint_config(tmp_path, pairs_file, server.base_url, concurrency=1), progress=False)
        assert len(server.server.config.app.state.calls) == 1


def test_rejected_request_is_skipped_and_retried_on_rerun(tmp_path, pairs_file):
    with LoopbackServer(scripted_app(lambda call: 400 if call == 1 else 200)) as server:
        cfg = endpoint_config(tmp_path, pairs_file, server.base_url, concurrency=1)
        first = run_teacher(cfg, progress=False)
        second = run_teacher(cfg, progress=False)
    assert first.rejected_requests == 1 and first.written == 7
    assert second.written == 1 and len(set(keys(tmp_path / "traces.jsonl"))) == 8


def test_request_fields_and_api_key(tmp_path, pairs_file, monkeypatch):
    monkeypatch.setenv("GENREL_TEACHER_API_KEY", "sk-test")
    with LoopbackServer(scripted_app(lambda call: 200, model_id="served")) as server:
        cfg = endpoint_config(tmp_path, pairs_file, server.base_url, n=1, seed=7, temperature=0.5,
                              extra_body={"top_p": 0.9})
        run_teacher(cfg, progress=False)
        calls = server.server.config.app.state.calls
    assert {c["auth"] for c in calls} == {"Bearer sk-test"}
    body = calls[0]["body"]
    assert body["model"] == "served" and body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["seed"] == 7 and body["max_tokens"] == 16
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "n" not in body  # one request per sample: many servers ignore n


def test_think_block_is_stripped(tmp_path, pairs_file):
    completion = "<think>\nlet me see\n</think>\n" + gold_completion(load_criteria("trec-dl"), judged_pairs(1)[0])
    with LoopbackServer(scripted_app(lambda call: 200, completion=completion)) as server:
        run_teacher(endpoint_config(tmp_path, pairs_file, server.base_url, n=1), progress=False)
    first = read_traces(tmp_path / "traces.jsonl")[0]
    assert first["completion"].lstrip().startswith("<step") and first["accepted"]


def test_chat_url():
    assert chat_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1/chat/completions"
    assert chat_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_url("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1/chat/completions"
    assert chat_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_config_needs_endpoint_unless_from_gold(tmp_path):
    with pytest.raises(ConfigError, match="base_url"):
        TeacherConfig.load(overrides=[f"data={tmp_path / 'x.jsonl'}"])
    cfg = TeacherConfig.load(overrides=[f"data={tmp_path / 'x.jsonl'}", "from_gold=true", "api_key=secret"])
    assert "api_key" not in cfg.model_dump()  # never written into a saved config


# -- verdict-only traces from gold -----------------------------------------------------------------


@pytest.mark.parametrize("preset", preset_names())
def test_gold_traces_parse_and_verify_for_every_label(preset):
    criteria = load_criteria(preset)
    for label in criteria.label_names:
        pair = Pair(row_id="1", query="q", text="t", label=label)
        parsed = parse(gold_completion(criteria, pair), criteria)
        assert parsed.label == label
        assert 0 not in step_status(criteria, parsed.verdicts, label)
        free = [s for s in parsed.steps if s.verdict is None]
        assert all(s.text == FREE_STEP_PLACEHOLDER[criteria.language] for s in free)


def test_gold_traces_use_per_pair_gold_verdicts():
    criteria = load_criteria("esci")
    # 'specs' is unverifiable for 'irrelevant': the nearest label with an expectation (substitute) decides.
    plain = parse(gold_completion(criteria, Pair(row_id="1", query="q", text="t", label="irrelevant")), criteria)
    assert plain.verdicts["specs"] == "no"
    pair = Pair(row_id="1", query="q", text="t", label="irrelevant", verdicts={"specs": "yes"})
    parsed = parse(gold_completion(criteria, pair), criteria)
    assert parsed.verdicts["specs"] == "yes"
    assert step_status(criteria, parsed.verdicts, "irrelevant", pair.verdicts)[criteria.step_index("specs")] == 1


def test_from_gold_run_accepts_everything(tmp_path):
    pairs = judged_pairs(6) + [Pair(row_id="v", query="q", text="t", label="highly", verdicts={"exact": "no"})]
    data = write_pairs_jsonl(pairs, tmp_path / "pairs.jsonl")
    cfg = TeacherConfig(data=str(data), criteria="trec-dl", out=str(tmp_path / "gold.jsonl"), from_gold=True, n=3)
    result = run_teacher(cfg, progress=False)
    assert result.written == len(pairs)  # one deterministic trace per pair, whatever n says
    assert all(a == t for a, t in result.acceptance.values())
    traces = accepted_traces(tmp_path / "gold.jsonl")
    assert len(traces) == len(pairs)
    assert all(isinstance(try_parse(t["completion"], load_criteria("trec-dl")), Parsed) for t in traces)
    assert run_teacher(cfg, progress=False).written == 0


def test_cli_from_gold(tmp_path, pairs_file):
    from typer.testing import CliRunner

    from genrel.cli import app

    out = tmp_path / "gold.jsonl"
    res = CliRunner().invoke(app, ["teacher", "--data", str(pairs_file), "--criteria", "trec-dl",
                                   "--out", str(out), "--from-gold"])
    assert res.exit_code == 0, res.output
    assert "100.0%" in res.output and "4 trace(s) written" in res.output
    assert len(json.loads(out.read_text().splitlines()[0])["completion"]) > 0
