"""Cut a document to a budget of characters or tokens without ever splitting a character.

With a tokenizer that reports character offsets (a ``tokenizers.Tokenizer`` or a fast Hugging Face
tokenizer) the cut falls at the end of the last whole token, backing off when that token shares a
character with the next one (byte-level BPE splits a CJK character or an emoji over several tokens), so
the result is an exact prefix of the text. Otherwise the token prefix is decoded and a trailing U+FFFD
(the half of a character) is dropped. The tokenizer is duck-typed: this module imports no tokenizer
library.
"""

from __future__ import annotations

import unicodedata
from typing import Any

MARKER = " […]"
_JOINERS = {"\u200d", "\u200c"}


def truncate_document(
    text: str,
    *,
    tokenizer: Any = None,
    max_tokens: int | None = None,
    max_chars: int | None = None,
    marker: str = MARKER,
) -> str:
    """``text`` within ``max_chars`` characters and ``max_tokens`` tokens (not counting ``marker``,
    which is appended when anything was cut)."""
    if max_tokens is not None and tokenizer is None:
        raise ValueError("max_tokens needs a tokenizer")
    cut = text
    if max_chars is not None and len(cut) > max_chars:
        cut = cut[: safe_cut(cut, max(max_chars, 0))]
    if max_tokens is not None:
        prefix = token_prefix(cut, tokenizer, max(max_tokens, 0))
        if prefix is not None:
            cut = prefix
    if cut == text:
        return text
    return cut.rstrip() + marker


def safe_cut(text: str, cut: int) -> int:
    """The largest position <= ``cut`` that does not split a surrogate pair, a base character from its
    combining marks, or a joiner sequence."""
    while 0 < cut < len(text) and _continues(text[cut - 1], text[cut]):
        cut -= 1
    return cut


def _continues(before: str, after: str) -> bool:
    return (
        "\udc00" <= after <= "\udfff"  # low surrogate: its high half is before
        or unicodedata.combining(after) != 0
        or "\ufe00" <= after <= "\ufe0f"  # variation selectors
        or "\U000e0100" <= after <= "\U000e01ef"
        or after in _JOINERS
        or before in _JOINERS
    )


def token_prefix(text: str, tokenizer: Any, max_tokens: int) -> str | None:
    """The longest prefix of ``text`` within ``max_tokens`` tokens, or None when the text fits."""
    offsets = _offsets(tokenizer, text)
    if offsets is None:
        return _decoded_prefix(text, tokenizer, max_tokens)
    if len(offsets) <= max_tokens:
        return None
    keep = max_tokens
    # Re-tokenising a cut word can take more tokens than the same word in context: shrink until it fits.
    while keep > 0:
        while keep > 0 and offsets[keep][0] < offsets[keep - 1][1]:
            keep -= 1  # token keep-1 ends inside a character that token keep continues
        if keep == 0:
            break
        prefix = text[: safe_cut(text, offsets[keep - 1][1])]
        if len(_offsets(tokenizer, prefix) or ()) <= max_tokens:
            return prefix
        keep -= 1
    return ""


def _encode(tokenizer: Any, text: str) -> Any:
    return tokenizer.encode(text, add_special_tokens=False)


def _offsets(tokenizer: Any, text: str) -> list[tuple[int, int]] | None:
    """Character offsets per token, or None when the tokenizer cannot give them."""
    if getattr(tokenizer, "is_fast", False):  # Hugging Face fast tokenizer
        return list(tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])
    if getattr(tokenizer, "is_fast", None) is None and hasattr(tokenizer, "encode"):
        encoding = _encode(tokenizer, text)
        offsets = getattr(encoding, "offsets", None)  # tokenizers.Encoding
        return list(offsets) if offsets is not None else None
    return None


def _decoded_prefix(text: str, tokenizer: Any, max_tokens: int) -> str | None:
    ids = _encode(tokenizer, text)
    ids = list(getattr(ids, "ids", ids))
    if len(ids) <= max_tokens:
        return None
    # A prefix ending inside a character decodes to U+FFFD; a joiner would dangle without its partner.
    return tokenizer.decode(ids[:max_tokens]).rstrip("\ufffd\u200d\u200c")
