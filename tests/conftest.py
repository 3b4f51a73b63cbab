"""Test fixtures: no network (loopback only), hub offline, tiny random models and tokenizers, and one CPU
dtype policy for the whole suite.

The CPU policy: ``dtype="auto"`` follows the CPU's flags (bf16 on avx512_bf16/AMX, else float32), so a
test's numbers would depend on the host. Every test runs with the flag reader
(:func:`genrel.models.load.cpu_flags`) reporting the flag set named by ``GENREL_TEST_CPU``: ``avx2``
(default: no native bf16, so ``auto`` means float32 everywhere), ``bf16`` (avx512_bf16 and AMX: ``auto``
means bfloat16) or ``host`` (the real flags). A test that means a dtype passes it explicitly; running the
suite with ``GENREL_TEST_CPU=bf16`` checks that no test silently depends on the policy.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GENREL_SHARED_DATA", REPO.parent / "shared" / "data"))

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
    ):
        raise RuntimeError(f"tests may only connect to loopback, not {address!r}")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only


CPU_FLAG_SETS = {
    "avx2": frozenset({"sse4_2", "avx", "avx2", "fma"}),
    "bf16": frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
}
CPU_POLICY = os.environ.get("GENREL_TEST_CPU", "avx2")
if CPU_POLICY not in (*CPU_FLAG_SETS, "host"):
    raise pytest.UsageError(f"GENREL_TEST_CPU={CPU_POLICY!r}: use one of {', '.join(CPU_FLAG_SETS)}, host")


@pytest.fixture(scope="session", autouse=True)
def cpu_policy():
    """The CPU flags every test sees (module docstring); yields the policy's name."""
    if CPU_POLICY == "host":
        yield CPU_POLICY
        return
    import genrel.models.load as load

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load, "cpu_flags", lambda: CPU_FLAG_SETS[CPU_POLICY])
        yield CPU_POLICY


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from genrel.models.tiny import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama-architecture model + tokenizer saved like a hub checkpoint."""
    from genrel.models.tiny import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny-llama"))
