"""Character spans → completion tokens: which criteria step each completion token belongs to.

The parser (:mod:`genrel.grammar`) gives each step a character span in the decoded completion; SAM masks
tokens. :func:`token_step_index` bridges the two for any Hugging Face tokenizer (duck-typed:
``decode``, optionally ``batch_decode``, ``convert_ids_to_tokens``, ``all_special_ids``,
``pad_token_id``, ``backend_tokenizer``), byte-exactly where the tokenizer's pieces give bytes
(byte-level BPE, byte fallback) and by prefix decoding otherwise. Shape letters are those of
:mod:`genrel.sam`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence

import torch

from genrel.sam.masking import INT_DTYPES, describe_tensor

# --------------------------------------------------------------------------------------------------
# Character spans → completion tokens
# --------------------------------------------------------------------------------------------------


def token_step_index(
    completion_ids: torch.Tensor | Sequence[Sequence[int]],
    spans: Sequence[Sequence[tuple[int, int] | None]],
    tokenizer,
    completion_mask: torch.Tensor | Sequence[Sequence[int]] | None = None,
) -> torch.Tensor:
    """LongTensor [B, T]: the step each completion token belongs to, -1 outside any step.

    ``spans[b][k]`` is the character span ``[start, end)`` of step k in the text
    ``tokenizer.decode(valid ids of row b, skip_special_tokens=True)``, or None when the step is absent.
    Valid ids are those where ``completion_mask`` is non-zero or, without a mask, all but the row's
    trailing ``pad_token_id`` run. A token belongs to step k when the first byte it contributes, in the
    UTF-8 encoding of that text, lies in step k's byte span; so a byte-level token holding the middle of
    a CJK character or emoji belongs to the step holding that character. Tokens that contribute nothing
    (special tokens, padding, a leading space the decoder strips) get -1.

    Fast path: each token's bytes come from its vocabulary piece (byte-level BPE: GPT-2's byte↔unicode
    map; SentencePiece style: ``▁`` → space, ``<0xNN>`` → that byte, a leading space the decoder strips),
    and are used only when their concatenation equals the decoded text's bytes exactly (64 × 512 tokens
    take ~30 ms). Otherwise (invalid UTF-8, WordPiece, clean-up of spaces, unknown decoders) the row falls
    back to decoding every prefix, O(N²) (~40 ms per 512-token row): a token then belongs to the first
    character the tokens before it have not finished, which is the same rule wherever the text is valid
    UTF-8, and a defined one where it is not.
    """
    rows, B, T, device = _valid_rows(completion_ids, completion_mask, tokenizer)
    if len(spans) != B:
        raise ValueError(f"spans has {len(spans)} rows but completion_ids has B={B}")
    texts = _decode_all(tokenizer, [ids for _, ids in rows])
    pieces = _PieceBytes.of(tokenizer)
    positions: list[list[int]] = []  # per row, per valid token: first byte/char offset or -1
    bounds: list[list[tuple[int, int]]] = []  # per row, per step: span in the same unit
    for b, ((_, ids), text) in enumerate(zip(rows, texts)):
        char_spans = _checked_spans(spans[b], len(text), b)
        starts = pieces.byte_starts(tokenizer, ids, text)
        if starts is not None:
            to_bytes = _char_to_byte(text)
            bounds.append([(to_bytes(s), to_bytes(e)) for s, e in char_spans])
        else:
            starts = _char_starts_by_prefix_decoding(tokenizer, ids, text, pieces.skipped)
            bounds.append(char_spans)
        positions.append(starts)
    return _assign_steps(rows, positions, bounds, B, T, device)


def _valid_rows(completion_ids, completion_mask, tokenizer):
    """[(positions of valid tokens, their ids)] per row, with B, T and the output device."""
    if isinstance(completion_ids, torch.Tensor):
        if completion_ids.dim() != 2 or completion_ids.dtype not in INT_DTYPES:
            raise ValueError(f"completion_ids must be an integer [B, T] tensor, got {describe_tensor(completion_ids)}")
        ids_rows, device = completion_ids.tolist(), completion_ids.device
    else:
        ids_rows, device = [list(map(int, row)) for row in completion_ids], torch.device("cpu")
    B, T = len(ids_rows), max((len(row) for row in ids_rows), default=0)
    if completion_mask is not None:
        mask_rows = completion_mask.tolist() if isinstance(completion_mask, torch.Tensor) else completion_mask
        if len(mask_rows) != B or any(len(m) != len(r) for m, r in zip(mask_rows, ids_rows)):
            raise ValueError("completion_mask must have the same shape as completion_ids")
        keep = [[m != 0 for m in row] for row in mask_rows]
    else:
        pad = getattr(tokenizer, "pad_token_id", None)
        keep = []
        for row in ids_rows:
            n = len(row)
            while pad is not None and n > 0 and row[n - 1] == pad:
                n -= 1
            keep.append([t < n for t in range(len(row))])
    rows = []
    for ids, kept in zip(ids_rows, keep):
        where = [t for t, k in enumerate(kept) if k]
        rows.append((where, [ids[t] for t in where]))
    return rows, B, T, device


def _decode_all(tokenizer, id_rows: list[list[int]]) -> list[str]:
    if hasattr(tokenizer, "batch_decode"):
        return list(tokenizer.batch_decode(id_rows, skip_special_tokens=True))
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in id_rows]


def _checked_spans(row_spans, n_chars: int, b: int) -> list[tuple[int, int]]:
    """Spans as (start, end) pairs, an absent step as the empty span (0, 0); overlaps are errors."""
    out = []
    for k, span in enumerate(row_spans):
        if span is None:
            out.append((0, 0))
            continue
        start, end = int(span[0]), int(span[1])
        if not 0 <= start <= end <= n_chars:
            raise ValueError(
                f"spans[{b}][{k}] = {tuple(span)} is not inside the decoded completion ({n_chars} characters)"
            )
        out.append((start, end))
    present = sorted(s for s in out if s[1] > s[0])
    for (_, end), (start, _) in zip(present, present[1:]):
        if start < end:
            raise ValueError(f"spans[{b}] overlap: steps must be disjoint, got {list(row_spans)}")
    return out


def _char_to_byte(text: str):
    def offset(i: int) -> int:
        return len(text[:i].encode("utf-8", errors="surrogatepass"))

    return offset


def _assign_steps(rows, positions, bounds, B: int, T: int, device) -> torch.Tensor:
    K = max((len(row) for row in bounds), default=0)
    pos = torch.full((B, T), -1, dtype=torch.long)  # [B, T]
    for b, ((where, _), starts) in enumerate(zip(rows, positions)):
        pos[b, where] = torch.tensor(starts, dtype=torch.long)
    # One extra empty span (0, 0) keeps the step dimension non-empty; it contains no position.
    span = torch.zeros((B, K + 1, 2), dtype=torch.long)  # [B, K+1, 2]
    for b, row in enumerate(bounds):
        if row:
            span[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    inside = (pos[:, :, None] >= span[:, None, :, 0]) & (pos[:, :, None] < span[:, None, :, 1])  # [B, T, K+1]
    inside &= (pos >= 0)[:, :, None]  # [B, T, K+1]
    step = inside.long().argmax(dim=2)  # [B, T]
    return torch.where(inside.any(dim=2), step, -1).to(device)  # [B, T]


def _char_starts_by_prefix_decoding(tokenizer, ids: list[int], text: str, skipped: frozenset[int]) -> list[int]:
    """Exact for any tokenizer: token t starts at the first character that ids[:t] has not finished.

    When decode(ids[:t]) is a prefix of ``text`` (a clean boundary), that is its length. Otherwise a
    character is pending and decodes as U+FFFD, so the characters finished are the common prefix with
    ``text``, never fewer than at the last clean boundary (a byte-fallback decoder turns a whole run of
    byte tokens into U+FFFD while its last character is incomplete).
    """
    prefixes = _decode_all(tokenizer, [ids[:t] for t in range(len(ids) + 1)])
    starts, finished = [], 0
    for t, token in enumerate(ids):
        clean = text.startswith(prefixes[t])
        finished = len(prefixes[t]) if clean else max(finished, _common_prefix_len(prefixes[t], text))
        nothing = token in skipped or (clean and prefixes[t + 1] == prefixes[t])
        starts.append(-1 if nothing else finished)
    return starts


def _common_prefix_len(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    lo, hi = 0, min(len(a), len(b))  # binary search on startswith keeps the work in C
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if b.startswith(a[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map, used by every ByteLevel tokenizer."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


_UNICODE_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class _PieceBytes:
    """The bytes each token id contributes to decoded text, per tokenizer, cached as ids are seen."""

    _cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, tokenizer):
        self.size = _vocab_size(tokenizer)
        self.schemes = _piece_schemes(tokenizer)
        self.skipped = frozenset(_skipped_ids(tokenizer))
        self.table: dict[tuple[str, int], bytes | None] = {}

    @classmethod
    def of(cls, tokenizer) -> _PieceBytes:
        try:
            cached = cls._cache.get(tokenizer)
            if cached is None or cached.size != _vocab_size(tokenizer):
                cached = cls._cache[tokenizer] = cls(tokenizer)
            return cached
        except TypeError:  # not weak-referenceable or unhashable: no caching
            return cls(tokenizer)

    def byte_starts(self, tokenizer, ids: list[int], text: str) -> list[int] | None:
        """First byte offset of each token in ``text`` (-1: contributes nothing), or None if unverified."""
        target = text.encode("utf-8", errors="surrogatepass")
        for scheme in self.schemes:
            pieces = self._pieces(tokenizer, scheme, ids)
            if pieces is None:
                continue
            joined = b"".join(pieces)
            cut = len(joined) - len(target)  # leading spaces the decoder strips (SentencePiece style)
            if cut < 0 or joined[cut:] != target or joined[:cut].strip(b" "):
                continue
            starts, pos = [], -cut
            for piece in pieces:
                end = pos + len(piece)
                starts.append(max(pos, 0) if end > 0 else -1)
                pos = end
            return starts
        return None

    def _pieces(self, tokenizer, scheme: str, ids: list[int]) -> list[bytes] | None:
        missing = sorted({i for i in ids if (scheme, i) not in self.table})
        if missing:
            for i, piece in zip(missing, _id_pieces(tokenizer, missing)):
                self.table[scheme, i] = b"" if i in self.skipped else _piece_bytes(scheme, piece)
        pieces = [self.table[scheme, i] for i in ids]
        return None if any(p is None for p in pieces) else pieces


def _id_pieces(tokenizer, ids: list[int]) -> list[str | None]:
    try:
        pieces = tokenizer.convert_ids_to_tokens(ids)
    except Exception:  # noqa: BLE001 - out-of-vocabulary ids or no piece access: use the exact fallback
        return [None] * len(ids)
    return list(pieces) if isinstance(pieces, list) else [None] * len(ids)


def _piece_bytes(scheme: str, piece: str | None) -> bytes | None:
    if not isinstance(piece, str):
        return None
    if scheme == "byte_level":
        # As the ByteLevel decoder: map every character back to its byte, or keep the piece's own UTF-8
        # when a character is outside the map (added tokens such as "<think> a").
        mapped = [_UNICODE_TO_BYTE.get(c) for c in piece]
        return piece.encode("utf-8") if None in mapped else bytes(mapped)
    match = _BYTE_FALLBACK.match(piece)
    if match:
        return bytes([int(match.group(1), 16)])
    return piece.replace("▁", " ").encode("utf-8")


def _piece_schemes(tokenizer) -> tuple[str, ...]:
    """Which piece → bytes rule to try: from the fast tokenizer's decoder, else both."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None:
        return ("byte_level", "metaspace")
    try:
        state = decoder.__getstate__().decode("utf-8")  # the decoder's JSON, Sequence members included
    except Exception:  # noqa: BLE001 - an unknown decoder object: try both rules, verification decides
        return ("byte_level", "metaspace")
    if '"ByteLevel"' in state:
        return ("byte_level",)
    if '"Metaspace"' in state or "▁" in state:
        return ("metaspace",)
    return ()  # WordPiece and other decoders: prefix decoding only


def _skipped_ids(tokenizer) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", None) or [])
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(i for i, token in added.items() if getattr(token, "special", False))
    return ids


def _vocab_size(tokenizer) -> int:
    try:
        return len(tokenizer)
    except TypeError:
        return -1
