"""Training and scoring build one prompt: for the same pair, the token ids TRL feeds the policy (RL and
SFT datasets, through TRL's own chat-template call) equal the ids the scorer reads, document cut
included, with Qwen3's no-thinking option reaching both."""

from __future__ import annotations

import copy
import json

import pytest

from genrel.criteria import load_criteria
from genrel.data import Pair
from genrel.models.tiny import CHAT_TEMPLATE

CRITERIA = load_criteria("trec-dl")
# A template that, like Qwen3's, opens a thinking block unless enable_thinking is false.
THINKING_TEMPLATE = CHAT_TEMPLATE + "{% if add_generation_prompt and enable_thinking is not false %}<think>\n{% endif %}"
LONG_TEXT = " ".join(f"Adult fleas live two to three months, study {i} says." for i in range(60))


@pytest.fixture()
def qwen_like(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = THINKING_TEMPLATE
    return tok


def _scorer_ids(tok, pair, max_length):
    from genrel.score.lm import LMScorer

    scorer = LMScorer(None, tok, CRITERIA, max_length=max_length, progress=False)
    text = scorer.prompt_text(pair)
    assert "<think>" not in text
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("max_length", [None, 1300])
def test_rl_training_and_scoring_give_the_same_prompt_token_ids(tmp_path, qwen_like, max_length):
    from genrel.train.rl import build_rl_dataset, grpo_args
    from genrel.train.rl_config import RLStageConfig

    rows = [{"qid": "1", "query": "how long do fleas live", "text": LONG_TEXT, "label": "highly"}]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = RLStageConfig.model_validate({
        "model": "unused", "data": {"train": str(data)}, "output_dir": str(tmp_path / "run"),
        "num_generations": 2, "prompts_per_step": 1, "max_prompt_length": max_length,
    })
    row = build_rl_dataset(cfg, CRITERIA, qwen_like)[0]
    args = grpo_args(cfg)
    trained = qwen_like.apply_chat_template(
        conversation=[row["prompt"]], add_generation_prompt=True, tokenize=True, return_dict=True,
        **args.chat_template_kwargs,
    )["input_ids"][0]  # as GRPOTrainer tokenizes prompts
    pair = Pair(row_id="x", query=rows[0]["query"], text=LONG_TEXT, label="highly")
    assert trained == _scorer_ids(qwen_like, pair, max_length)
    if max_length is not None:
        assert len(trained) <= max_length and "[…]" in row["prompt"][1]["content"]


def test_sft_rows_carry_the_scorers_template_options(qwen_like):
    from trl.data_utils import apply_chat_template

    from genrel.train.sft import SFTStageConfig, sft_example

    cfg = SFTStageConfig.model_validate({"traces": "unused.jsonl", "max_length": 1500})
    pair = {"query": "how long do fleas live", "text": LONG_TEXT}
    trace = {"row_id": "1", "pair": pair, "completion": "<label>highly</label>"}
    row = sft_example(trace, CRITERIA, qwen_like, cfg)
    prompt = apply_chat_template({"prompt": row["prompt"]}, qwen_like, **row["chat_template_kwargs"])["prompt"]
    assert "<think>" not in prompt
    budget = cfg.max_length - len(qwen_like(trace["completion"], add_special_tokens=False)["input_ids"]) - 16
    scored = _scorer_ids(qwen_like, Pair(row_id="1", query=pair["query"], text=LONG_TEXT), budget)
    assert qwen_like(prompt, add_special_tokens=False)["input_ids"] == scored
    assert "[…]" in row["prompt"][1]["content"]  # the document was cut to fit
