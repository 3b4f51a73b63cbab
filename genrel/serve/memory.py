"""Keep a long-running scorer's memory at its live size: the glibc malloc setting the server ships with.

Why (measured on the MiniLM student, ``hf`` backend, batches of 1–32 pairs of 10–260 tokens): the
live heap stays at ~150 MB and the count of live Python objects is constant, yet RSS climbs from
~500 MB to over 1 GB, because glibc keeps what the model frees. Its mmap threshold is dynamic: after
the first large block is freed it rises to that block's size (up to 32 MiB), so from then on every
per-batch activation tensor is carved out of the heap instead of mmapped; a batch of another shape
does not fit the holes the last one left, the heap grows, and only its top can be given back.
``malloc_trim(0)`` drops RSS from 936 to 489 MB at once, which shows the memory is free, not leaked.

Pinning the threshold (``mallopt(M_MMAP_THRESHOLD, n)``, which also switches the dynamic rule off)
makes every block of ``n`` bytes or more an mmap of its own that goes back to the OS on ``free``; the
heap then holds only small objects. The cost is fresh zeroed pages (page faults) for each large
allocation, small beside a batch's matrix multiplies. onnxruntime allocates through the same
malloc once its own arena is off (:func:`genrel.score.onnx_backend.onnx_session`).

Only glibc is handled; on other C libraries (musl, macOS) this is a logged no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>


def pin_mmap_threshold(threshold_bytes: int | None) -> bool:
    """Set glibc's mmap threshold to ``threshold_bytes`` for this process; True when it took effect."""
    if threshold_bytes is None:
        return False
    libc = _glibc()
    if libc is None:
        log.info("not glibc: the malloc mmap threshold is left as it is")
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    if ok:
        log.debug("malloc mmap threshold pinned at %d bytes", threshold_bytes)
    else:
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) was refused", threshold_bytes)
    return ok


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc
