"""Stepwise Advantage Masking (SAM): per-token GRPO advantages from per-step verdict statuses.

GRPO gives every token of completion b the same advantage A_b. SAM zeroes (or scales) it on the tokens of
steps that disagree with the sign of A_b: in a completion with A_b > 0 the steps whose verdict is wrong,
in one with A_b < 0 the steps whose verdict is right. Everything else keeps A_b: unverifiable steps,
glue, the label, end-of-sequence, padding, and every token of an unparseable completion.

Letters used in shape comments:

- ``B``: completions in the batch (prompts × samples per prompt).
- ``T``: completion tokens per row, padded (TRL's ``completion_ids`` width).
- ``K``: steps per completion (the criteria's steps, in completion order; ``token_step`` indexes them).
- ``N``: valid (unpadded) tokens of one completion, inside :func:`token_step_index`.

What differs from the paper (arXiv 2512.00968) and the authors' training code:

- The authors mask fixed segments (provisional grade, rule-recalibrated grade, final grade) found in
  the text; here any criteria step with a verifier status can be masked, and the provisional rule lives
  in :func:`genrel.verify.step_status` (a wrong provisional step corrected by a later right step is
  unverifiable), so ``hard`` with provisional steps reproduces their table.
- The authors drop masked tokens from each sequence's policy-gradient mean; inside TRL we zero their
  advantage instead and, optionally, rescale the kept tokens with :func:`renormalize_kept`, which gives
  the same loss for the ``grpo`` loss type.
- ``soft`` (masked tokens scaled by α) and ``first_error`` (a negative completion is spared only before
  its first wrong step) are our variants.

This module is pure torch: it knows no trainer and no tokenizer class. :func:`token_step_index` takes
any Hugging Face tokenizer (duck-typed: ``decode``, optionally ``batch_decode``,
``convert_ids_to_tokens``, ``all_special_ids``, ``pad_token_id``, ``backend_tokenizer``).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence

import torch

MODES = ("off", "hard", "soft", "first_error")
RENORMALIZE_LOSS_TYPES = ("grpo", "dapo", "bnpo", "dr_grpo")
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)

# --------------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------------


def masked_tokens(
    advantages: torch.Tensor, token_step: torch.Tensor, step_status: torch.Tensor, mode: str = "hard"
) -> torch.Tensor:
    """Bool [B, T]: tokens whose advantage SAM zeroes (``hard``, ``first_error``) or scales (``soft``).

    Its complement is the keep mask of :func:`renormalize_kept`, and its share of completion tokens is
    the masked-token share to log. All False for ``off``.
    """
    _check_inputs(advantages, token_step, step_status, mode)
    B, K = step_status.shape
    positive = (advantages > 0)[:, None]  # [B, 1]
    negative = (advantages < 0)[:, None]  # [B, 1]
    right, wrong = step_status == 1, step_status == 0  # [B, K] each
    if mode == "off":
        masked_step = torch.zeros_like(right)  # [B, K]
    elif mode == "first_error":
        # A step comes before the first wrong one while no wrong step has been seen up to and including it.
        before_first_wrong = wrong.long().cumsum(dim=1) == 0  # [B, K]
        masked_step = (positive & wrong) | (negative & right & before_first_wrong)  # [B, K]
    else:  # hard, soft
        masked_step = (positive & wrong) | (negative & right)  # [B, K]
    # Column K is a sentinel "outside any step" that is never masked, so -1 needs no special case.
    masked_step = torch.cat([masked_step, masked_step.new_zeros(B, 1)], dim=1)  # [B, K+1]
    index = torch.where(token_step < 0, K, token_step).long()  # [B, T]
    return masked_step.gather(1, index)  # [B, T]


def sam_advantages(
    advantages: torch.Tensor,
    token_step: torch.Tensor,
    step_status: torch.Tensor,
    mode: str = "hard",
    alpha: float = 0.0,
) -> torch.Tensor:
    """Per-token advantages [B, T] from per-completion advantages [B].

    Args:
        advantages: float [B], the group-normalised advantage A_b of each completion.
        token_step: integer [B, T], the step index k of each completion token, -1 outside any step
            (glue, label, end-of-sequence, padding); see :func:`token_step_index`.
        step_status: integer [B, K], 1 right, 0 wrong, -1 unverifiable or absent (an unparseable
            completion has -1 everywhere and keeps A_b on every token).
        mode: ``off`` (A_b everywhere), ``hard`` (masked tokens get 0), ``soft`` (masked tokens get
            α·A_b) or ``first_error`` (as ``hard``, but a negative completion spares only its right steps
            before its first wrong step, in step order).
        alpha: the ``soft`` scale, in [0, 1]; ignored by the other modes.
    """
    if mode == "soft" and not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"sam alpha must be in [0, 1] for mode 'soft', got {alpha}")
    masked = masked_tokens(advantages, token_step, step_status, mode)  # [B, T]
    per_token = advantages[:, None].expand(masked.shape)  # [B, T]
    if mode == "soft":
        return torch.where(masked, per_token * alpha, per_token)  # [B, T]
    return per_token.masked_fill(masked, 0.0)  # [B, T]


def renormalize_kept(
    token_advantages: torch.Tensor,
    keep_mask: torch.Tensor,
    completion_mask: torch.Tensor,
    loss_type: str,
) -> torch.Tensor:
    """Scale SAM's advantages so that TRL's loss averages over kept tokens only (``sam.renormalize``).

    ``grpo``: each completion is scaled by (its completion tokens ÷ its kept completion tokens), where
    kept = ``keep_mask & completion_mask``; a completion with no kept token is left unchanged.
    ``dapo``, ``bnpo``, ``dr_grpo``: one factor for the batch, (all completion tokens ÷ all kept
    completion tokens), unchanged when nothing is kept. Only kept completion tokens are scaled, as
    design.md says: masked tokens (0 under ``hard``, α·A under ``soft``) and padding are left as they are.

    Why this is the authors' aggregation: TRL's ``grpo`` loss is mean_b (1/n_b) Σ_t ℓ(r_bt, A_bt) over
    the n_b completion tokens, with the clipped surrogate ℓ(r, A) = -min(r·A, clip(r)·A). For c > 0,
    min(r·cA, clip(r)·cA) = c·min(r·A, clip(r)·A): ℓ is positively homogeneous in A. Masked tokens have
    A = 0 and add nothing, so with A' = A·n_b/m_b on the m_b kept tokens, (1/n_b) Σ_kept ℓ(r, A') =
    (1/m_b) Σ_kept ℓ(r, A): the authors' per-sequence mean over kept tokens. The KL term is not
    scaled and still averages over every token, as in their code. For the global loss types the same
    argument turns TRL's token-count normaliser into a kept-token one; it is exact when this tensor
    holds the tokens the loss normalises over (``bnpo``: a micro-batch; ``dapo``: the generation batch
    of every process) and approximate otherwise (``dr_grpo`` divides by a constant).
    """
    if loss_type not in RENORMALIZE_LOSS_TYPES:
        raise ValueError(
            f"sam renormalisation supports loss_type {', '.join(RENORMALIZE_LOSS_TYPES)}, got '{loss_type}'"
        )
    if token_advantages.dim() != 2 or not token_advantages.is_floating_point():
        raise ValueError(f"token_advantages must be a float [B, T] tensor, got {_describe(token_advantages)}")
    for name, mask in (("keep_mask", keep_mask), ("completion_mask", completion_mask)):
        if mask.shape != token_advantages.shape:
            raise ValueError(
                f"{name} must have token_advantages' shape {tuple(token_advantages.shape)}, got {tuple(mask.shape)}"
            )
    completion = completion_mask != 0  # [B, T]
    kept = (keep_mask != 0) & completion  # [B, T]
    if loss_type == "grpo":
        n_tokens = completion.sum(dim=1).double()  # [B]
        n_kept = kept.sum(dim=1).double()  # [B]
    else:
        n_tokens = completion.sum().double()  # []
        n_kept = kept.sum().double()  # []
    factor = torch.where(n_kept > 0, n_tokens / n_kept.clamp(min=1), torch.ones_like(n_kept))  # [B] or []
    factor = factor.to(token_advantages.dtype)
    if loss_type == "grpo":
        factor = factor[:, None]  # [B, 1]
    return torch.where(kept, token_advantages * factor, token_advantages)  # [B, T]


def clip_advantages(advantages: torch.Tensor, bound: float | None) -> torch.Tensor:
    """Advantages clamped to [-bound, bound] (``advantage_clip``; None: unchanged), any shape.

    The paper authors clamp the group-normalised advantage to [-3, 3] before masking. With a binary
    reward and G samples the largest |A| that TRL's group normalisation gives is (G-1)/sqrt(G), for a
    group with one success (unbiased std): 2.47 at G = 8, so the clamp at 3 binds from G = 11 up.
    """
    if bound is None:
        return advantages
    if not bound > 0:
        raise ValueError(f"the advantage bound must be > 0, got {bound}")
    return advantages.clamp(min=-bound, max=bound)


def _check_inputs(advantages: torch.Tensor, token_step: torch.Tensor, step_status: torch.Tensor, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"sam mode must be one of {', '.join(MODES)}, got '{mode}'")
    if advantages.dim() != 1 or not advantages.is_floating_point():
        raise ValueError(f"advantages must be a float [B] tensor, got {_describe(advantages)}")
    B = advantages.shape[0]
    for name, tensor, letters in (("token_step", token_step, "T"), ("step_status", step_status, "K")):
        if tensor.dim() != 2 or tensor.dtype not in _INT_DTYPES:
            raise ValueError(f"{name} must be an integer [B, {letters}] tensor, got {_describe(tensor)}")
        if tensor.shape[0] != B:
            raise ValueError(f"{name} has {tensor.shape[0]} rows but advantages has B={B}")
        if tensor.device != advantages.device:
            raise ValueError(f"{name} is on {tensor.device} but advantages is on {advantages.device}")
    K = step_status.shape[1]
    if token_step.numel() and (token_step.min() < -1 or token_step.max() >= K):
        raise ValueError(
            f"token_step values must be -1 or a step index in [0, {K}), "
            f"got values in [{int(token_step.min())}, {int(token_step.max())}]"
        )
    if step_status.numel() and ((step_status < -1) | (step_status > 1)).any():
        raise ValueError("step_status values must be 1 (right), 0 (wrong) or -1 (unverifiable)")


def _describe(tensor: object) -> str:
    if not isinstance(tensor, torch.Tensor):
        return type(tensor).__name__
    return f"{tensor.dtype} tensor of shape {tuple(tensor.shape)}"


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
        if completion_ids.dim() != 2 or completion_ids.dtype not in _INT_DTYPES:
            raise ValueError(f"completion_ids must be an integer [B, T] tensor, got {_describe(completion_ids)}")
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
