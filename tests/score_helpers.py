"""Tiny random cross-encoders for the score tests: a WordPiece tokenizer trained in-process and a
2-layer BertForSequenceClassification, saved like a hub checkpoint. No network."""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "red running shoes size trail shoe blue cotton shirt flea life cycle fleas live days year "
    "cost wedding dress alteration average price cheap garden hose drill battery the a of for and "
    "is are with to in on how what when where why does do query passage product note"
).split()


def tiny_wordpiece(vocab_size: int = 200):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator([" ".join(WORDS)] * 4 + WORDS, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def save_tiny_encoder(path, *, seed: int = 0, num_labels: int = 2) -> Path:
    """A random 2-layer BERT encoder + WordPiece tokenizer at ``path`` (usable as ``base=``)."""
    import torch
    from transformers import BertConfig, BertModel

    tok = tiny_wordpiece()
    config = BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,  # a few steps must be enough to learn
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)


def separable_pairs(n: int = 16, *, query: str = "red running shoes") -> list:
    """Judged pairs a cross-encoder can learn in a few steps: matching docs are perfect, others irrelevant."""
    from genrel.data import Pair

    good, bad = "red running shoes size", "garden hose drill battery"
    return [
        Pair(row_id=str(i), qid=str(i % 4), query=query, text=good if i % 2 == 0 else bad,
             label="perfect" if i % 2 == 0 else "irrelevant")
        for i in range(n)
    ]


def save_tiny_cross_encoder_dir(
    path, criteria, *, seed: int = 0, max_length: int = 32, hidden: int = 32, intermediate: int = 64
) -> Path:
    """A genrel cross-encoder directory with random weights (no training), for load/export tests; a larger
    ``hidden``/``intermediate``/``max_length`` gives activations big enough for memory tests."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from genrel.score.cross_encoder import CrossEncoderModel

    tok = tiny_wordpiece()
    config = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=intermediate, max_position_embeddings=max(128, max_length),
        pad_token_id=tok.pad_token_id, num_labels=len(criteria.labels),
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    return CrossEncoderModel(model, tok, criteria, max_length=max_length).save(path, created_by="tests")
