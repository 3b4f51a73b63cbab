"""``ServeConfig``: every knob of the HTTP scorer — model, address, request limits, batching, auth.

Loaded like every stage config (YAML plus ``--set key=value``); the CLI's flags override it.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from genrel.config import StageConfig

DEFAULT_TOKEN_ENV = "GENREL_SERVE_TOKEN"


class ServeConfig(StageConfig):
    """Configuration of ``genrel serve``. Limits are per request; batching is across requests."""

    model: str = Field(
        "",
        description="Anything genrel.score.load_scorer accepts (model directory, HF causal LM, bm25, "
        "zero-shot:<model>), or 'py:module:factory' "
        "(developer hook: a zero-argument callable returning a Scorer).",
    )
    backend: Literal["hf", "onnx", "vllm"] = Field("hf", description="Inference backend for a model directory.")
    onnx_file: str = Field(
        "model.onnx", description="With backend onnx: the file to serve, e.g. model.int8.onnx from export --int8."
    )
    criteria: str | None = Field(
        None, description="Criteria preset or YAML path; default: the criteria stored with the model."
    )
    model_name: str | None = Field(None, description="Name reported in responses and metrics; default: the scorer's.")
    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 exposes the scorer on every interface.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    workers: int = Field(
        1, ge=1, description="uvicorn worker processes; each loads its own copy of the model."
    )

    max_documents_per_request: int = Field(100, ge=1, description="More documents in one request: 413.")
    max_chars_per_document: int = Field(
        20_000, ge=1, description="Characters of text + title + field values of one document; more: 413."
    )
    max_query_chars: int = Field(2_000, ge=1, description="Characters of the query; more: 413.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Raw request body cap, checked before JSON parsing; more: 413."
    )

    max_batch_size: int = Field(32, ge=1, description="Most pairs per scorer call, across requests.")
    max_batch_wait_ms: float = Field(
        5.0, ge=0, description="How long the oldest waiting pair may wait for a batch to fill."
    )
    max_queue_pairs: int = Field(
        10_000, ge=1, description="Pairs waiting to be scored; a request that would exceed it gets 503."
    )
    max_queue_wait_s: float | None = Field(
        2.0, gt=0, description="Overload shedding: a request whose pairs would wait longer than this behind the "
        "queue (queued pairs ÷ the measured pairs/s) gets 503 with Retry-After at once; None = only max_queue_pairs.",
    )
    request_timeout_s: float = Field(
        60.0, gt=0, description="Longest a request waits for its scores; then 504 and its waiting pairs are dropped."
    )
    shutdown_grace_s: float | None = Field(
        None, ge=0, description="On SIGTERM, how long in-flight requests may finish; default: request_timeout_s + 5."
    )
    drain_s: float = Field(
        2.0, ge=0, description="On SIGTERM, how long /readyz answers 503 while the listener stays open and requests "
        "are still served, so a load balancer stops sending before connections are refused.",
    )
    mmap_threshold_bytes: int | None = Field(
        256 * 1024, ge=0, le=32 * 1024 * 1024, description="glibc malloc: blocks this large or larger are mmapped and go back to the OS "
        "when freed (per-batch activations), so RSS follows the live data; None = glibc's default (the heap "
        "keeps its peak and fragments under varying batch shapes).",
    )

    auth_token: SecretStr | None = Field(
        None, description="Bearer token required on /v1/* and /metrics; default: the token_env variable, if set."
    )
    token_env: str = Field(DEFAULT_TOKEN_ENV, description="Environment variable holding the bearer token.")

    @model_validator(mode="after")
    def _model_named(self) -> ServeConfig:
        if self.model.startswith("py:") and self.model.count(":") != 2:
            raise ValueError("field 'model': a factory must look like py:module:factory")
        return self

    def token(self) -> str | None:
        """The bearer token in force: ``auth_token``, else the ``token_env`` variable; None = auth off."""
        if self.auth_token is not None and self.auth_token.get_secret_value():
            return self.auth_token.get_secret_value()
        return os.environ.get(self.token_env) or None

    def grace_s(self) -> float:
        return self.shutdown_grace_s if self.shutdown_grace_s is not None else self.request_timeout_s + 5.0
