"""token_step_index against brute-force prefix decoding, on tokenizers built here (no hub, no network).

Tokenizers: a byte-level BPE (GPT-2/Qwen/SmolLM style) trained in-process, wrapped in
``PreTrainedTokenizerFast``; a SentencePiece BPE with byte fallback trained in a temp dir and loaded as
a Llama tokenizer (Replace ▁ / ByteFallback / Fuse / Strip decoder); a ``tokenizers`` Unigram with byte
fallback and a Metaspace decoder; the raw SentencePiece processor behind a duck-typed wrapper; and a
WordPiece tokenizer, which only the exact fallback can align. Small vocabularies, so CJK characters and
emoji are split into single bytes.
"""

from __future__ import annotations

import json
import random
import re
import time

import pytest
import torch

from genrel.sam import alignment as sam

EN = ["The passage is about flea life cycles.", "It gives 20 days to a year!", "café, naïve résumé",
      "Verdict: maybe not", "a < b and c > d", "tabs\tand  double  spaces"]
ZH = ["用户想知道跳蚤的生命周期", "笔记内容与查询高度相关", "上海周末去哪儿玩", "标题：小红书搜索"]
RARE = ["龘靐齉", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ÅΩ≈ç√"]  # absent from the training corpus: byte fallback
EMOJI = ["😀", "🎉", "👩‍👩‍👧", "🇨🇳", "✨", "🙂‍↔️"]
GRAMMAR = '<step id="topic">x Verdict: yes</step>\n<label>highly</label>'
CORPUS = [" ".join(EN + ZH + EMOJI), GRAMMAR] * 30
STEP = re.compile(r'<\s*step\s*id\s*=\s*"[^"]*"\s*>.*?<\s*/\s*step\s*>', re.S)  # WordPiece adds spaces


def _completion(rng: random.Random) -> str:
    parts = []
    for k in range(rng.randint(1, 4)):
        words = [rng.choice(EN + ZH + RARE + EMOJI) for _ in range(rng.randint(1, 4))]
        sep = rng.choice([" ", "", "\n"])
        parts.append(f'<step id="s{k}">{sep.join(words)} Verdict: {rng.choice(["yes", "no"])}</step>')
    lead = rng.choice(["", "", " ", "\n"])
    return lead + rng.choice(["\n", " ", ""]).join(parts) + "\n<label>highly</label>"


# -- tokenizers -------------------------------------------------------------------------------------


def _byte_level():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=360, special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>")
    fast.add_tokens(["<think> a"])  # a non-special added token with a space: decoded as its own UTF-8
    return fast


def _sentencepiece_model(tmp_path) -> str:
    import sentencepiece as spm

    prefix = str(tmp_path / "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_prefix=prefix, vocab_size=420, model_type="bpe",
        byte_fallback=True, character_coverage=0.98, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2,
    )
    return prefix + ".model"


def _llama_sentencepiece(tmp_path):
    from transformers import LlamaTokenizer

    _sentencepiece_model(tmp_path)
    return LlamaTokenizer.from_pretrained(str(tmp_path), pad_token="<pad>")


def _unigram_metaspace():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<unk>", "</s>", "<pad>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(CORPUS[:4], trainer)
    vocab = [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]
    vocab += [(f"<0x{b:02X}>", -20.0) for b in range(256)]  # the byte-fallback pieces
    tok.model = models.Unigram(vocab, unk_id=0, byte_fallback=True)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(prepend_scheme="first")])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


class _RawSentencePiece:
    """The SentencePiece processor itself behind the few methods token_step_index uses (no fast backend)."""

    def __init__(self, model_file: str):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.pad_token_id, self.eos_token_id = self.sp.pad_id(), self.sp.eos_id()
        self.all_special_ids = [self.sp.bos_id(), self.sp.eos_id(), self.sp.pad_id()]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.sp.decode([i for i in ids if i not in self.all_special_ids])

    def convert_ids_to_tokens(self, ids):
        return [self.sp.id_to_piece(i) for i in ids]


def _wordpiece():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=["[UNK]", "[PAD]", "[SEP]"], show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[SEP]")


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    sp_dir = tmp_path_factory.mktemp("sp")
    return {
        "byte_level": _byte_level(),
        "llama_sentencepiece": _llama_sentencepiece(sp_dir),
        "unigram_metaspace": _unigram_metaspace(),
        "raw_sentencepiece": _RawSentencePiece(str(sp_dir / "tokenizer.model")),
        "wordpiece": _wordpiece(),
    }


FAST_PATH = ["byte_level", "llama_sentencepiece", "unigram_metaspace", "raw_sentencepiece"]


# -- brute force ------------------------------------------------------------------------------------


def _lcp(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def brute_force_char(tok, ids: list[int], text: str) -> list[int]:
    """Per token: the index of the character holding its first byte, or -1 when it contributes nothing.

    Decode ids[:t] and ids[:t+1]. If decode(ids[:t]) is a prefix of ``text``, token t starts the next
    character. Otherwise a multi-byte character is pending and shows as U+FFFD: the characters done are
    those decode(ids[:t]) shares with ``text``, and at least those of the last clean prefix (a
    byte-fallback decoder blanks a whole run of byte tokens while its last character is incomplete).
    A token adds nothing when it is special, or when it leaves a clean prefix unchanged.
    """
    special = set(getattr(tok, "all_special_ids", []))
    out, last_clean = [], 0
    for t in range(len(ids)):
        before = tok.decode(ids[:t], skip_special_tokens=True)
        after = tok.decode(ids[: t + 1], skip_special_tokens=True)
        if text[: len(before)] == before:
            last_clean = done = len(before)
            nothing = after == before
        else:
            done, nothing = max(last_clean, _lcp(before, text)), False
        out.append(-1 if nothing or ids[t] in special else done)
    return out


def _steps_of(chars: list[int], spans) -> list[int]:
    return [next((k for k, s in enumerate(spans) if s and s[0] <= c < s[1]), -1) if c >= 0 else -1 for c in chars]


def _spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in STEP.finditer(text)]


def _encode(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def _check_rows(tok, id_rows: list[list[int]], spans_of=_spans, expect_fast: bool = True, monkeypatch=None):
    """token_step_index on right-padded rows (+EOS) equals the brute force on every valid token."""
    eos, pad = tok.eos_token_id, tok.pad_token_id
    rows = [ids + [eos] for ids in id_rows]
    T = max(map(len, rows)) + 2
    ids_t = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, row in enumerate(rows):
        ids_t[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    texts = [tok.decode(row, skip_special_tokens=True) for row in rows]
    spans = [spans_of(text) for text in texts]
    calls = []
    if monkeypatch is not None:
        real = sam._char_starts_by_prefix_decoding
        monkeypatch.setattr(sam, "_char_starts_by_prefix_decoding", lambda *a: calls.append(1) or real(*a))
    got = sam.token_step_index(ids_t, spans, tok, completion_mask=mask)
    assert got.shape == ids_t.shape and got.dtype == torch.long
    for b, row in enumerate(rows):
        want = _steps_of(brute_force_char(tok, row, texts[b]), spans[b])
        assert got[b, : len(row)].tolist() == want, (b, texts[b])
        assert got[b, len(row):].eq(-1).all()
        assert got[b, len(row) - 1] == -1  # EOS
    if monkeypatch is not None and expect_fast:
        assert not calls, "the fast path should have verified"
    return got


# -- tests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAST_PATH + ["wordpiece"])
def test_grammar_completions_match_brute_force(tokenizers, name, monkeypatch):
    tok = tokenizers[name]
    rng = random.Random(7)
    rows = [_encode(tok, _completion(rng)) for _ in range(6)]
    got = _check_rows(tok, rows, expect_fast=name != "wordpiece", monkeypatch=monkeypatch)
    assert (got >= 0).any()


@pytest.mark.parametrize("name", FAST_PATH)
def test_every_character_its_own_step(tokenizers, name, monkeypatch):
    """Spans of one character each: a token's step is exactly the character of its first byte."""
    tok = tokenizers[name]
    texts = [" ".join(EMOJI + RARE + ZH[:2]), "a😀b🇨🇳c龘" + "".join(EMOJI), "\n " + EN[2] + ZH[0]]
    rows = [_encode(tok, t) for t in texts]
    every_char = lambda text: [(i, i + 1) for i in range(len(text))]  # noqa: E731
    _check_rows(tok, rows, spans_of=every_char, monkeypatch=monkeypatch)


def test_split_character_bytes_stay_with_their_character(tokenizers):
    tok = tokenizers["byte_level"]
    ids = _encode(tok, "ab龘")  # 龘 is unseen: one token per UTF-8 byte
    assert tok.convert_ids_to_tokens(ids) == ["ab", "é", "¾", "ĺ"]
    assert sam.token_step_index([ids], [[(0, 2), (2, 3)]], tok).tolist() == [[0, 1, 1, 1]]
    assert sam.token_step_index([ids], [[(0, 1), (1, 2), (2, 3)]], tok).tolist() == [[0, 2, 2, 2]]


@pytest.mark.parametrize("name", ["byte_level", "llama_sentencepiece", "unigram_metaspace"])
def test_encoder_offsets_agree(tokenizers, name):
    """Independent ground truth: for text the tokenizer encoded itself, a token's character offsets hold
    the character of its first byte, and start there unless the previous token has the same offsets (an
    unknown multi-character run split into byte-fallback tokens shares one offset span). A prepended "▁"
    that the decoder strips adds nothing."""
    tok = tokenizers[name]
    rng = random.Random(13)
    texts = [_completion(rng).lstrip() for _ in range(6)] + ["ab龘 😀x 👩‍👩‍👧", "".join(EMOJI + RARE)]
    checked = 0
    for text in texts:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if tok.decode(ids) != text:
            continue
        pieces = tok.convert_ids_to_tokens(ids)
        every_char = [(i, i + 1) for i in range(len(text))]
        got = sam.token_step_index([ids], [every_char], tok)[0].tolist()
        for t, (start, end) in enumerate(offsets):
            if t == 0 and pieces[0] == "▁":
                assert got[t] == -1
            elif t > 0 and offsets[t - 1] == (start, end):
                assert start <= got[t] < end, (text, t)
            else:
                assert got[t] == start, (text, t)
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("name", ["byte_level", "llama_sentencepiece", "unigram_metaspace"])
def test_fallback_equals_fast_path_and_brute_force(tokenizers, name, monkeypatch):
    """Forcing the prefix-decoding fallback gives the same steps, partial UTF-8 characters included."""
    tok = tokenizers[name]
    rng = random.Random(11)
    rows = [_encode(tok, _completion(rng)) for _ in range(4)]
    texts = [tok.decode(r) for r in rows]
    spans = [_spans(t) for t in texts]
    fast = sam.token_step_index(rows, spans, tok)
    monkeypatch.setattr(sam._PieceBytes, "byte_starts", lambda self, tokenizer, ids, text: None)
    slow = _check_rows(tok, rows)
    assert torch.equal(fast, slow[:, : fast.shape[1]])


def _split_into_bytes(tok, name: str, ids: list[int], rng: random.Random) -> list[int]:
    """Re-spell about half the tokens as single-byte tokens: a valid, non-canonical segmentation such
    as sampling can produce, full of tokens that hold part of a character."""
    out = []
    for token, piece in zip(ids, tok.convert_ids_to_tokens(ids)):
        if rng.random() < 0.5 or piece.startswith("<0x"):
            out.append(token)
        elif name == "byte_level":  # each character of a byte-level piece is one byte
            out.extend(tok.convert_tokens_to_ids(list(piece)))
        else:
            out.extend(tok.convert_tokens_to_ids([f"<0x{b:02X}>" for b in piece.replace("▁", " ").encode()]))
    return out


@pytest.mark.parametrize("name", ["byte_level", "llama_sentencepiece"])
def test_non_canonical_segmentations(tokenizers, name, monkeypatch):
    tok = tokenizers[name]
    rng = random.Random(17)
    rows = [_split_into_bytes(tok, name, _encode(tok, _completion(rng)), rng) for _ in range(5)]
    every_char = lambda text: [(i, i + 1) for i in range(len(text))]  # noqa: E731
    _check_rows(tok, rows, spans_of=every_char, monkeypatch=monkeypatch)
    _check_rows(tok, rows, monkeypatch=monkeypatch)


@pytest.mark.parametrize("name", ["byte_level", "llama_sentencepiece"])
def test_random_ids_match_brute_force(tokenizers, name):
    """Arbitrary ids, invalid UTF-8 included: the fast path's check rejects them, the fallback aligns."""
    tok = tokenizers[name]
    rng = random.Random(3)
    special = set(tok.all_special_ids)
    vocab = [i for i in range(len(tok)) if i not in special]
    rows = [[rng.choice(vocab) for _ in range(rng.randint(1, 25))] for _ in range(6)]
    every_char = lambda text: [(i, i + 1) for i in range(len(text))]  # noqa: E731
    _check_rows(tok, rows, spans_of=every_char)


def test_padding_and_special_tokens(tokenizers):
    tok = tokenizers["byte_level"]
    pad, eos = tok.pad_token_id, tok.eos_token_id
    text = '<step id="a">中文 😀 Verdict: yes</step>\n<label>x</label>'
    ids = _encode(tok, text)
    span = _spans(text)
    want = sam.token_step_index([ids], [span], tok)[0]
    n = len(ids)
    # Right padding without a mask: the trailing pad run is dropped; EOS contributes nothing.
    right = torch.tensor([ids + [eos, pad, pad]])
    got = sam.token_step_index(right, [span], tok)
    assert got[0, :n].tolist() == want.tolist() and got[0, n:].eq(-1).all()
    # Left padding with a mask.
    left = torch.tensor([[pad, pad] + ids + [eos]])
    mask = torch.tensor([[0, 0] + [1] * (n + 1)])
    got = sam.token_step_index(left, [span], tok, completion_mask=mask)
    assert got[0, 2 : n + 2].tolist() == want.tolist() and got[0, [0, 1, n + 2]].eq(-1).all()
    # Ragged lists, one empty row, an absent step and an unparseable completion.
    got = sam.token_step_index([ids, [], ids], [[None, span[0]], [], []], tok)
    assert got.shape == (3, n)
    assert got[0].tolist() == [1 if s == 0 else -1 for s in want.tolist()]
    assert got[1:].eq(-1).all()
    assert (want >= 0).sum() > 0 and want[-1] == -1  # the label is outside every step


def test_invalid_spans_are_value_errors(tokenizers):
    tok = tokenizers["byte_level"]
    ids = _encode(tok, "abc def")
    with pytest.raises(ValueError, match="inside the decoded"):
        sam.token_step_index([ids], [[(0, 99)]], tok)
    with pytest.raises(ValueError, match="overlap"):
        sam.token_step_index([ids], [[(0, 4), (3, 6)]], tok)
    with pytest.raises(ValueError, match="rows"):
        sam.token_step_index([ids], [], tok)
    with pytest.raises(ValueError, match="same shape"):
        sam.token_step_index(torch.tensor([ids]), [[]], tok, completion_mask=torch.ones(1, 2))


def test_fast_path_speed(tokenizers):
    """A GRPO batch of 64 × 512 tokens aligns in well under a second."""
    tok = tokenizers["byte_level"]
    rng = random.Random(5)
    text = ""
    while len(_encode(tok, text)) < 600:
        text += _completion(rng)
    ids = _encode(tok, text)[:512]
    while "\ufffd" in tok.decode(ids):  # do not end inside a character
        ids = ids[:-1]
    batch = torch.tensor([ids + [tok.pad_token_id] * (512 - len(ids))] * 64)
    decoded = tok.decode(ids)
    spans = [_spans(decoded)] * 64
    sam.token_step_index(batch[:1], spans[:1], tok)  # warm the piece cache
    start = time.perf_counter()
    got = sam.token_step_index(batch, spans, tok)
    elapsed = time.perf_counter() - start
    assert (got >= 0).any()
    assert elapsed < 1.0, f"{elapsed:.2f} s"
