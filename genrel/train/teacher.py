"""Teacher traces for the warm-up SFT: reasoning traces from any OpenAI-compatible chat endpoint (vLLM,
``transformers serve``, llama.cpp server, a hosted API), checked against the gold labels, or verdict-only
traces built from the gold labels themselves (``from_gold``).

``run_teacher(cfg)`` sends each pair's prompt (:func:`genrel.prompt.render_messages`) ``n`` times, one
request per sample (many servers ignore the ``n`` field), with at most ``concurrency`` requests in flight,
a per-request timeout and exponential backoff on 429, 5xx, timeouts and dropped connections. Each
finished (pair, sample) becomes one JSON line, appended, flushed and fsynced as it arrives; a rerun skips
the (row_id, sample) pairs already in the file and cuts off a torn last line left by a crash
(:mod:`genrel.data.resumable`), so nothing is done twice and nothing is lost. A line is ``accepted`` when its label is the gold
label and no verifiable step is wrong (rejection sampling, docs/training.md);
:func:`accepted_traces` reads those back for SFT.

Trace line: ``row_id, qid, docid, sample, model, completion, finish_reason, label, verdicts, error,
error_message, step_status, gold_label, gold_verdicts, accepted, pair`` (the pair as
:func:`genrel.data.pair_record` writes it, so SFT can rebuild the prompt for its own tokenizer).

Verdict-only traces from gold (one per pair, ``sample`` 0, ``model`` "gold"):

- a free step's text is :data:`FREE_STEP_PLACEHOLDER` (in the criteria's language): visibly not
  reasoning, a few tokens, the same everywhere, so the model learns the format and nothing false;
- a checked step's verdict is the pair's own gold verdict when the data has one; else the verdict
  ``expect`` gives for the gold label (the first, in the step's verdict order, when it allows several);
  else, when the step is unverifiable for that label, the verdict expected for the nearest label on the
  scale (ties go to the lower label). Such a step is never graded (status -1), so the choice only has to
  be plausible; data with per-step gold verdicts avoids it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from genrel.config import StageConfig
from genrel.criteria import Criteria, Step, load_criteria
from genrel.data import ColumnMapping, Pair, load_pairs, pair_record
from genrel.data.resumable import append_rows, check_unique_row_ids, open_append, read_rows, resume_rows
from genrel.errors import EndpointError
from genrel.grammar import ParseError, render, try_parse
from genrel.prompt import render_messages
from genrel.verify import WRONG, step_status

logger = logging.getLogger(__name__)

FREE_STEP_PLACEHOLDER = {"en": "(not analysed in this trace)", "zh": "（此轨迹未作分析）"}
GOLD_MODEL = "gold"
API_KEY_ENV = ("GENREL_TEACHER_API_KEY", "OPENAI_API_KEY")
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})  # every later request would fail the same way
_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


class TeacherConfig(StageConfig):
    """``genrel teacher``: sample reasoning traces from an endpoint, or build them from gold labels."""

    data: str = Field(description="Judged pairs: .jsonl/.csv/.tsv/.parquet.")
    mapping: ColumnMapping = Field(default_factory=ColumnMapping, description="Column names, when not detected.")
    on_error: Literal["fail", "skip"] = Field(default="fail", description="Bad data rows: fail, or skip them.")
    criteria: str = Field(default="trec-dl", description="Criteria preset name or YAML path.")
    out: str = Field(default="traces.jsonl", description="Trace file (JSON lines); appended to and resumed.")
    from_gold: bool = Field(default=False, description="No endpoint: verdict-only traces from the gold labels.")
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible API root, e.g. http://localhost:8000/v1 (a bare host gets /v1)."
    )
    model: str | None = Field(default=None, description="Model name for the endpoint; None: the one it serves.")
    api_key: SecretStr | None = Field(
        default=None, exclude=True, description="Bearer key; default $GENREL_TEACHER_API_KEY or $OPENAI_API_KEY."
    )
    n: int = Field(default=2, ge=1, description="Samples per pair.")
    temperature: float = Field(default=0.7, ge=0.0, description="Sampling temperature.")
    max_tokens: int = Field(default=1024, ge=1, description="Completion tokens per sample at most.")
    concurrency: int = Field(default=4, ge=1, description="Requests in flight at most.")
    timeout_s: float = Field(default=120.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(default=5, ge=0, description="Retries of one request on 429/5xx/timeouts.")
    backoff_s: float = Field(default=1.0, ge=0, description="First retry wait; doubles each retry (with jitter).")
    max_backoff_s: float = Field(default=60.0, ge=0, description="Longest wait between retries.")
    max_pairs: int | None = Field(default=None, ge=1, description="Use a seeded random sample of this many pairs.")
    max_document_chars: int | None = Field(default=None, ge=1, description="Cut documents to this many characters.")
    seed: int | None = Field(default=None, description="Sample selection seed; sent per request as seed + sample.")
    strip_think: bool = Field(default=True, description="Drop a leading <think>…</think> block from completions.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="More request fields passed as is (top_p, chat_template_kwargs…)."
    )

    @model_validator(mode="after")
    def _endpoint_or_gold(self) -> TeacherConfig:
        if not self.from_gold and not self.base_url:
            raise ValueError("field 'base_url': needed unless from_gold is true")
        return self


@dataclass
class TeacherResult:
    """What a run did, and per gold label (accepted, total) over the whole trace file."""

    path: Path
    written: int = 0
    skipped: int = 0
    rejected_requests: int = 0
    acceptance: dict[str, tuple[int, int]] = field(default_factory=dict)


def run_teacher(cfg: TeacherConfig, *, progress: bool = True) -> TeacherResult:
    """Write the traces ``cfg`` asks for, resuming ``cfg.out``; return counts and acceptance."""
    criteria = load_criteria(cfg.criteria)
    pairs = select_pairs(cfg, criteria)
    out = Path(cfg.out)
    done = completed_keys(out)
    samples = 1 if cfg.from_gold else cfg.n
    todo = [(pair, s) for pair in pairs for s in range(samples) if (pair.row_id, s) not in done]
    result = TeacherResult(out, skipped=len(pairs) * samples - len(todo))
    if result.skipped:
        logger.info("resuming %s: %d trace(s) already there, %d to go", out, result.skipped, len(todo))
    from genrel.progress import progress_bar

    with TraceWriter(out) as writer, progress_bar(len(todo), "teacher", unit="trace", enabled=progress) as bar:
        if cfg.from_gold:
            for pair, sample in todo:
                writer.write(trace_record(criteria, pair, sample, gold_completion(criteria, pair), GOLD_MODEL))
                bar.update()
        else:
            asyncio.run(_sample_all(cfg, criteria, todo, writer, bar, result))
        result.written = writer.count
    result.acceptance = acceptance_by_label(read_traces(out), criteria)
    return result


def select_pairs(cfg: TeacherConfig, criteria: Criteria) -> list[Pair]:
    """The judged pairs to trace, in file order (a seeded sample when ``max_pairs`` is set)."""
    pairs = load_pairs(cfg.data, criteria, cfg.mapping, on_error=cfg.on_error).pairs
    check_unique_row_ids(pairs)
    if cfg.max_pairs is not None and len(pairs) > cfg.max_pairs:
        keep = set(random.Random(cfg.seed or 0).sample(range(len(pairs)), cfg.max_pairs))
        pairs = [p for i, p in enumerate(pairs) if i in keep]
    return pairs


# -- trace records ---------------------------------------------------------------------------------


def trace_record(
    criteria: Criteria, pair: Pair, sample: int, completion: str, model: str, finish_reason: str | None = None
) -> dict[str, Any]:
    """One trace line: the completion parsed and verified against the pair's gold label."""
    parsed = try_parse(completion, criteria)
    record: dict[str, Any] = {
        "row_id": pair.row_id, "qid": pair.qid, "docid": pair.docid, "sample": sample, "model": model,
        "completion": completion, "finish_reason": finish_reason,
        "label": None, "verdicts": None, "error": None, "error_message": None, "step_status": None,
        "gold_label": pair.label, "gold_verdicts": pair.verdicts, "accepted": False,
    }
    if isinstance(parsed, ParseError):
        record.update(error=parsed.kind.value, error_message=parsed.message)
    else:
        statuses = step_status(criteria, parsed.verdicts, pair.label, pair.verdicts)
        record.update(
            label=parsed.label,
            verdicts=parsed.verdicts,
            step_status=statuses,
            accepted=parsed.label == pair.label and WRONG not in statuses,
        )
    record["pair"] = pair_record(pair)
    return record


def gold_completion(criteria: Criteria, pair: Pair) -> str:
    """The verdict-only completion for the pair's gold label (see the module docstring for the rules)."""
    placeholder = FREE_STEP_PLACEHOLDER[criteria.language]
    texts = {s.id: placeholder for s in criteria.steps if not s.checked}
    verdicts = {s.id: gold_verdict(criteria, s, pair.label, pair.verdicts) for s in criteria.checked_steps}
    return render(criteria, texts, verdicts, pair.label)


def gold_verdict(criteria: Criteria, step: Step, label: str, verdicts: dict[str, str] | None = None) -> str:
    """The gold verdict for ``step`` in ``verdicts``; else the first verdict ``expect`` allows for
    ``label``; else that of the nearest label with an expectation (ties: the lower label)."""
    if verdicts and step.id in verdicts:
        return verdicts[step.id]
    gold = criteria.label_index(label)
    by_distance = sorted(range(len(criteria.labels)), key=lambda i: (abs(i - gold), i))
    for i in by_distance:
        expected = step.expected(criteria.labels[i].name)
        if expected:
            return next(v for v in step.verdicts if v in expected)
    return step.verdicts[0]  # unreachable for valid criteria: a checked step expects something


def acceptance_by_label(records: list[dict[str, Any]], criteria: Criteria) -> dict[str, tuple[int, int]]:
    """Gold label → (accepted, total) traces, labels in scale order (those with no trace left out)."""
    counts = {name: [0, 0] for name in criteria.label_names}
    for record in records:
        gold = record.get("gold_label")
        if gold in counts:
            counts[gold][0] += bool(record.get("accepted"))
            counts[gold][1] += 1
    return {name: (a, t) for name, (a, t) in counts.items() if t}


# -- the trace file --------------------------------------------------------------------------------


class TraceWriter:
    """Appends one JSON line per trace, flushed and fsynced, so a crash loses at most the line in flight."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._file = None

    def __enter__(self) -> TraceWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open_append(self.path)
        return self

    def write(self, record: dict[str, Any]) -> None:
        append_rows(self._file, [record], fsync=True)
        self.count += 1

    def __exit__(self, *exc) -> None:
        self._file.close()


def read_traces(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a trace file; a torn last line (a crash mid-write) is ignored."""
    return read_rows(path, what="trace file")


def accepted_traces(path: str | Path) -> list[dict[str, Any]]:
    """The accepted traces of a file (label right, no verifiable step wrong), in file order."""
    return [r for r in read_traces(path) if r.get("accepted")]


def completed_keys(path: Path) -> set[tuple[str, int]]:
    """(row_id, sample) of every complete line, after cutting off a torn last line so appends start clean."""
    return {(str(r["row_id"]), int(r["sample"])) for r in resume_rows(path)}


# -- the endpoint ----------------------------------------------------------------------------------


def chat_url(base_url: str) -> str:
    """``…/chat/completions`` under an OpenAI-style API root; a bare ``http://host:port`` gets ``/v1``."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if re.fullmatch(r"https?://[^/]+", base):
        base += "/v1"
    return base + "/chat/completions"


def api_key(cfg: TeacherConfig) -> str | None:
    if cfg.api_key is not None:
        return cfg.api_key.get_secret_value()
    return next((os.environ[name] for name in API_KEY_ENV if os.environ.get(name)), None)


class ChatClient:
    """Chat completions with retries: 429/5xx/timeouts/connection errors wait ``backoff_s · 2^attempt``
    (capped, with jitter, at least the server's Retry-After) and retry; 401/403/404 stop the run."""

    def __init__(self, http, cfg: TeacherConfig):
        self.http = http
        self.cfg = cfg
        self.url = chat_url(cfg.base_url)

    async def served_model(self) -> str:
        """The one model the endpoint lists under ``/models`` (for ``model: null``)."""
        url = self.url.removesuffix("/chat/completions") + "/models"
        response = await self._request("GET", url, None)
        ids = [m.get("id") for m in response.json().get("data", []) if m.get("id")]
        if len(ids) != 1:
            raise EndpointError(
                f"the endpoint serves {len(ids)} models{': ' + ', '.join(ids[:5]) if ids else ''}",
                where=url, hint="name one with --model",
            )
        return ids[0]

    async def complete(self, model: str, messages: list[dict[str, str]], seed: int | None) -> tuple[str, str | None]:
        """(assistant text, finish_reason) for one sample."""
        body: dict[str, Any] = {
            "model": model, "messages": messages, "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens, **self.cfg.extra_body,
        }
        if seed is not None:
            body["seed"] = seed
        response = await self._request("POST", self.url, body)
        try:
            choice = response.json()["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise EndpointError("the response has no choices[0]", where=self.url) from None
        text = (choice.get("message") or {}).get("content") or ""
        return text, choice.get("finish_reason")

    async def _request(self, method: str, url: str, body: dict | None):
        import httpx

        attempt = 0
        while True:
            problem: str
            retry_after = None
            try:
                response = await self.http.request(method, url, json=body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.cfg.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code in FATAL_STATUS:
                    raise EndpointError(problem, where=url, hint=_fatal_hint(response.status_code))
                if response.status_code not in RETRY_STATUS:
                    raise RequestRejected(problem)
                retry_after = _retry_after_s(response)
            if attempt >= self.cfg.max_retries:
                raise EndpointError(f"{problem} (after {attempt} retries)", where=url,
                                    hint="rerun the same command to resume once the endpoint is back")
            wait = min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                wait = min(max(wait, retry_after), self.cfg.max_backoff_s)
            logger.debug("%s; retry %d in %.2f s", problem, attempt + 1, wait)
            await asyncio.sleep(wait)
            attempt += 1


class RequestRejected(Exception):
    """A 4xx that only this request gets (too long a prompt, a bad field): skipped, the run goes on."""


async def _sample_all(cfg: TeacherConfig, criteria: Criteria, todo: list[tuple[Pair, int]],
                      writer: TraceWriter, bar, result: TeacherResult) -> None:
    import httpx

    if not todo:
        return
    key = api_key(cfg)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s), headers=headers, limits=limits) as http:
        client = ChatClient(http, cfg)
        model = cfg.model or await client.served_model()
        jobs = _jobs(cfg, criteria, todo)

        async def worker() -> None:
            for pair, sample, messages in jobs:  # one shared iterator: each job is taken once
                seed = None if cfg.seed is None else cfg.seed + sample
                try:
                    text, finish = await client.complete(model, messages, seed)
                except RequestRejected as exc:
                    logger.warning("row %s sample %d rejected by the endpoint: %s", pair.row_id, sample, exc)
                    result.rejected_requests += 1
                    continue
                if cfg.strip_think:
                    text = _THINK.sub("", text, count=1)
                writer.write(trace_record(criteria, pair, sample, text, model, finish))
                bar.update()

        await _run_all([asyncio.ensure_future(worker()) for _ in range(min(cfg.concurrency, len(todo)))])


def _jobs(cfg: TeacherConfig, criteria: Criteria, todo: list[tuple[Pair, int]]) -> Iterator:
    for pair, sample in todo:
        yield pair, sample, render_messages(criteria, pair, max_document_chars=cfg.max_document_chars)


async def _run_all(tasks: list[asyncio.Future]) -> None:
    """Wait for every worker; on the first failure cancel the others and raise it."""
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            raise task.exception()


def _retry_after_s(response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _fatal_hint(status: int) -> str:
    if status in (401, 403):
        return f"check the API key (api_key, ${API_KEY_ENV[0]} or ${API_KEY_ENV[1]})"
    return "check base_url (it usually ends in /v1) and the model name"
