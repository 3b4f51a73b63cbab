"""Tiny random tokenizers and causal LMs with real architectures, for tests and CPU benchmarks.

The tokenizer is a byte-level BPE trained in-process on grammar tags, English and Chinese text, so it
round-trips any string (emoji included) and the grammar's tags are few tokens. No network, no hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    '<step id="need">The searcher wants to know the cost. Verdict: yes</step>',
    '<step id="topic">The passage is about the topic. Verdict: no</step>',
    "<label>irrelevant</label> <label>related</label> <label>highly</label> <label>perfect</label>",
    "<label>exact</label> <label>substitute</label> <label>complement</label> <label>partial</label>",
    "Query: red running shoes size 42. Product: Acme trail shoe, red, size 42.",
    "搜索词的主需求是什么？笔记覆盖了哪些需求？类目是否一致？🙂 完全满足 部分满足",
    "What does the searcher want? Is the passage about the query's topic? Does it answer the query?",
]


def tiny_tokenizer(vocab_size: int = 400, corpus: Iterable[str] | None = None):
    """A byte-level BPE tokenizer (GPT-2/Qwen/SmolLM style) with chat template and special tokens,
    trained on ``corpus`` (default: a few grammar, English and Chinese lines)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4 if corpus is None else corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def tiny_causal_lm(
    tokenizer=None, *, arch: str = "llama", hidden_size: int = 64, layers: int = 2, seed: int = 0,
    sliding_window: int | None = None, init_std: float = 0.02,
):
    """A randomly initialised causal LM of a real architecture (``llama`` or ``qwen3``). ``sliding_window``
    (qwen3) makes every layer a sliding-window one, whose cache keeps only the window; a larger
    ``init_std`` (0.2) gives peaked, position-sensitive outputs, so that tests comparing two computations
    can tell them apart (at 0.02 every distribution is nearly the same)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    tokenizer = tokenizer or tiny_tokenizer()
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        initializer_range=init_std,
    )
    if arch == "qwen3":
        sliding = {"use_sliding_window": True, "sliding_window": sliding_window, "max_window_layers": 0}
        config = Qwen3Config(head_dim=hidden_size // 4, **common, **(sliding if sliding_window else {}))
    else:
        config = LlamaConfig(**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save_tiny(path: str | Path, *, arch: str = "llama", seed: int = 0) -> Path:
    """Write a tiny model + tokenizer to ``path`` so any loader can open it like a hub checkpoint."""
    path = Path(path)
    tok = tiny_tokenizer()
    model = tiny_causal_lm(tok, arch=arch, seed=seed)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
