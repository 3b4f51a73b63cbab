"""Prompt rendering: every part of the criteria is in it, it is deterministic, Chinese fixed text for
notes-zh, and document truncation never splits a character."""

from __future__ import annotations

import pytest

from genrel.criteria import load_criteria, preset_names
from genrel.data import Pair
from genrel.grammar import parse
from genrel.prompt import MARKER, example_completion, render_messages, truncate_document

PAIR = Pair(
    row_id="1",
    query="how long do fleas live",
    text="Adult fleas live two to three months.",
    title="Flea life cycle",
    fields={"site": "vet.example", "year": "2019"},
)

CORPUS = [
    "Fleas live two to three months without a host; the whole life cycle takes 20 days to a year.",
    "The quick brown fox jumps over the lazy dog. Search relevance judges read queries and passages.",
    "上海静安区的咖啡店推荐，环境安静，适合周末看书。笔记里有价格、地址和营业时间。",
    "北京秋天去哪里看红叶？香山、八达岭和慕田峪都很美。",
    "Emoji 😀👍🏽 and accents: café, naïve, résumé.",
]
MIXED = "Fleas 跳蚤 live 两到三个月 without a host 没有宿主时 😀 café " * 12


@pytest.fixture(scope="module")
def bpe():
    """A tiny byte-level BPE trained here on English and Chinese: CJK characters span several tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    return tok


class DecodeOnly:
    """A tokenizer without character offsets (like a slow SentencePiece one): ids in, text out."""

    def __init__(self, tok):
        self.tok = tok

    def encode(self, text, add_special_tokens=False):
        return self.tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids):
        return self.tok.decode(ids)


@pytest.mark.parametrize("name", preset_names())
def test_system_prompt_has_every_label_step_and_rule(name):
    criteria = load_criteria(name)
    system, user = render_messages(criteria, PAIR)
    assert system["role"] == "system" and user["role"] == "user"
    content = system["content"]
    positions = [content.index(f"- {lab.name}") for lab in criteria.labels]
    assert positions == sorted(positions), "labels must be listed worst to best"
    for lab in criteria.labels:
        assert lab.means in content
    step_positions = [content.index(f"{i}. {s.id}") for i, s in enumerate(criteria.steps, start=1)]
    assert step_positions == sorted(step_positions)
    for step in criteria.steps:
        assert step.ask in content
    for rule in criteria.rules:
        assert rule in content
    assert example_completion(criteria) in content
    assert "{{" not in content and "{%" not in content


@pytest.mark.parametrize("name", preset_names())
def test_example_follows_the_grammar_with_a_placeholder_label(name):
    """Its structure parses; its label is the placeholder, so a model cannot copy a real label from it."""
    criteria = load_criteria(name)
    example = example_completion(criteria)
    assert example.endswith("<label>NAME</label>")
    assert not any(f"<label>{label}</label>" in example for label in criteria.label_names)
    some_label = criteria.label_names[0]
    parsed = parse(example.replace("<label>NAME</label>", f"<label>{some_label}</label>"), criteria)
    assert [s.id for s in parsed.steps] == [s.id for s in criteria.steps]


def test_no_steps_criteria_ask_only_for_the_label():
    criteria = load_criteria("trec-dl")
    content = render_messages(criteria.model_copy(update={"steps": []}), PAIR)[0]["content"]
    assert "write only the label" in content and "<step" not in content


def test_user_prompt_has_query_title_text_and_fields():
    content = render_messages("esci", PAIR)[1]["content"]
    for part in (PAIR.query, PAIR.title, PAIR.text, "site: vet.example", "year: 2019", "Product:"):
        assert part in content
    assert content.index(PAIR.query) < content.index(PAIR.title) < content.index(PAIR.text)
    assert "Title:" not in render_messages("esci", PAIR.model_copy(update={"title": None}))[1]["content"]


def test_rendering_is_deterministic():
    first = render_messages("trec-dl", PAIR)
    assert all(render_messages("trec-dl", PAIR.model_copy()) == first for _ in range(3))


def test_chinese_fixed_text_for_notes_zh():
    pair = Pair(row_id="1", query="上海 咖啡 推荐", text="这家咖啡店在静安区。", title="探店", fields={"作者": "小红"})
    system, user = render_messages("notes-zh", pair)
    assert "标签（从差到好）" in system["content"] and "业务规则" in system["content"]
    assert "Verdict:" in system["content"]  # the grammar keyword is the same in every language
    assert "Labels, from worst to best" not in system["content"]
    assert user["content"].startswith("搜索词：上海 咖啡 推荐")
    assert "标题：探店" in user["content"] and "正文：这家咖啡店在静安区。" in user["content"]
    assert "作者：小红" in user["content"] and "笔记" in user["content"]
    assert render_messages("notes", pair)[1]["content"].startswith("Query: ")  # the English preset


def test_char_truncation_adds_marker_and_keeps_characters():
    pair = PAIR.model_copy(update={"text": "e\u0301" * 10 + "👨\u200d👩\u200d👧" * 5})
    for limit in range(1, 40):
        text = render_messages("trec-dl", pair, max_document_chars=limit)[1]["content"]
        body = text.split("Text: ", 1)[1].split("\n", 1)[0]
        assert body.endswith(MARKER.strip())
        kept = body[: -len(MARKER)] if body != MARKER.strip() else ""  # nothing fits: the marker alone
        assert len(kept) <= limit
        assert not kept.endswith(("e", "\u200d")) or kept == ""  # accents stay with their letter
    assert MARKER not in render_messages("trec-dl", PAIR, max_document_chars=1000)[1]["content"]


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 8, 13, 21, 34, 55, 89])
def test_token_truncation_never_splits_a_character(bpe, limit):
    offsets = bpe.encode(MIXED, add_special_tokens=False).offsets
    assert any(b[0] < a[1] for a, b in zip(offsets, offsets[1:])), "the tokenizer must split some characters"
    for tok in (bpe, DecodeOnly(bpe)):
        cut = truncate_document(MIXED, tokenizer=tok, max_tokens=limit)
        assert cut.endswith(MARKER) and "\ufffd" not in cut
        kept = cut[: -len(MARKER)]
        assert MIXED.startswith(kept)
        assert len(bpe.encode(kept, add_special_tokens=False).ids) <= limit
        kept.encode("utf-8")  # no lone surrogate


def test_token_truncation_through_render_messages(bpe):
    pair = PAIR.model_copy(update={"text": MIXED})
    content = render_messages("notes-zh", pair, tokenizer=bpe, max_document_tokens=17)[1]["content"]
    assert MARKER in content and "\ufffd" not in content
    untouched = render_messages("notes-zh", pair, tokenizer=bpe, max_document_tokens=100_000)[1]["content"]
    assert MARKER not in untouched and MIXED.strip() in untouched


def test_token_truncation_with_a_fast_hf_tokenizer(bpe):
    transformers = pytest.importorskip("transformers")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe)
    for limit in (1, 4, 9, 30):
        cut = truncate_document(MIXED, tokenizer=tok, max_tokens=limit)
        assert "\ufffd" not in cut and MIXED.startswith(cut[: -len(MARKER)])
        assert len(tok.encode(cut[: -len(MARKER)], add_special_tokens=False)) <= limit


def test_max_tokens_needs_a_tokenizer():
    with pytest.raises(ValueError, match="tokenizer"):
        render_messages("trec-dl", PAIR, max_document_tokens=10)
