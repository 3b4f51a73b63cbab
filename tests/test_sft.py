"""Warm-up SFT: real TRL runs of a tiny model on verdict-only traces from gold labels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from genrel.data import Pair, write_pairs_jsonl
from genrel.criteria import load_criteria
from genrel.errors import ConfigError, DataError
from genrel.models.load import load_model, load_tokenizer
from genrel.train.sft import SFTStageConfig, build_sft_dataset, build_sft_trainer, run_sft, sft_args
from genrel.train.teacher import TeacherConfig, run_teacher

REPO = Path(__file__).resolve().parents[1]
LABELS = ["irrelevant", "related", "highly", "perfect"]


@pytest.fixture(scope="module")
def gold_traces(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("traces")
    pairs = [
        Pair(row_id=str(i), qid=f"q{i % 4}", query=f"query number {i % 4}", text=f"A passage {i} about topic {i % 4}.",
             label=LABELS[i % 4])
        for i in range(10)
    ]
    data = write_pairs_jsonl(pairs, folder / "pairs.jsonl")
    cfg = TeacherConfig(data=str(data), criteria="trec-dl", out=str(folder / "gold.jsonl"), from_gold=True)
    run_teacher(cfg, progress=False)
    return folder / "gold.jsonl"


def sft_config(tmp_path: Path, model_dir: Path, traces: Path, **over) -> SFTStageConfig:
    values = dict(model=str(model_dir), criteria="trec-dl", traces=str(traces), output_dir=str(tmp_path / "run"),
                  max_length=2048, max_steps=5, lr=5e-3, batch_size=2, save_steps=100, seed=0,
                  trl={"warmup_steps": 0})
    values.update(over)
    return SFTStageConfig.model_validate(values)


def logged(path: Path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if "loss" in r]


def train_set_loss(model, trainer) -> float:
    """Mean completion loss over the prepared training set (what the trainer optimises)."""
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    with torch.no_grad():
        return model(**batch).loss.item()


def test_sft_learns_the_traces_and_saves_a_plain_model(tmp_path, tiny_model_dir, gold_traces):
    from transformers import AutoModelForCausalLM

    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces)
    result = run_sft(cfg)
    assert result.global_step == 5 and result.examples == 10

    records = logged(result.metrics_path)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(r["loss"]) and r["tokens_per_s"] > 0 for r in records)
    assert (result.run_dir / "config.yaml").is_file()
    assert SFTStageConfig.load(result.run_dir / "config.yaml") == cfg  # the run folder describes itself

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    final = AutoModelForCausalLM.from_pretrained(result.final_dir)
    assert (result.final_dir / "genrel_model.json").is_file() and (result.final_dir / "tokenizer.json").is_file()
    changed = [n for n, p in final.named_parameters() if not torch.equal(p, base.state_dict()[n])]
    assert changed
    # Same data, prepared as the trainer prepares it: the trained model fits the traces better.
    tokenizer = load_tokenizer(str(tiny_model_dir))
    trainer = build_sft_trainer(cfg, base, tokenizer, build_sft_dataset(cfg, _criteria(), tokenizer))
    assert train_set_loss(final, trainer) < train_set_loss(base, trainer) - 0.5


def test_loss_covers_the_completion_only(tmp_path, tiny_model_dir, gold_traces):
    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces)
    model, tokenizer = load_model(cfg.model, for_training=True)
    dataset = build_sft_dataset(cfg, _criteria(), tokenizer)
    trainer = build_sft_trainer(cfg, model, tokenizer, dataset)
    for i in range(len(dataset)):
        row = trainer.train_dataset[i]
        prompt_len = len(tokenizer.apply_chat_template(dataset[i]["prompt"], add_generation_prompt=True,
                                                       tokenize=True, return_dict=True)["input_ids"])
        ids, labels = row["input_ids"], row["labels"]
        assert set(labels[:prompt_len]) == {-100}
        assert labels[prompt_len:] == ids[prompt_len:]
        target = tokenizer.decode(ids[prompt_len:])
        assert target.startswith(dataset[i]["completion"][0]["content"])  # the trace, then the end of turn


class StopAt:
    """Stop training after ``step``, as a crash right after a checkpoint would."""

    def __new__(cls, step: int):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= step:
                    control.should_training_stop = True

        return _Stop()


def test_resume_continues_to_the_same_final_step(tmp_path, tiny_model_dir, gold_traces):
    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces, max_steps=4, save_steps=2)
    stopped = run_sft(cfg, callbacks=[StopAt(2)])
    assert stopped.global_step == 2 and (stopped.run_dir / "checkpoint-2").is_dir()
    with pytest.raises(ConfigError, match="resume"):
        run_sft(cfg)  # a fresh run never overwrites checkpoints

    resumed = run_sft(cfg.model_copy(update={"resume": True}))
    assert resumed.global_step == 4 and (resumed.run_dir / "checkpoint-4").is_dir()
    steps = [r["step"] for r in logged(resumed.metrics_path)]
    assert steps == [1, 2, 3, 4]

    straight = run_sft(cfg.model_copy(update={"output_dir": str(tmp_path / "straight")}))
    assert [r["loss"] for r in logged(straight.metrics_path)] == pytest.approx(
        [r["loss"] for r in logged(resumed.metrics_path)], rel=1e-4
    )


def test_lora_is_merged_into_plain_weights(tmp_path, tiny_model_dir, gold_traces):
    from transformers import AutoModelForCausalLM

    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces, max_steps=2, lora={"r": 4, "alpha": 8})
    result = run_sft(cfg)
    assert not (result.final_dir / "adapter_config.json").exists()
    final = AutoModelForCausalLM.from_pretrained(result.final_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not any("lora" in n for n, _ in final.named_parameters())
    assert any(not torch.equal(p, base.state_dict()[n]) for n, p in final.named_parameters())


def test_no_accepted_trace_is_a_data_error(tmp_path, tiny_model_dir):
    traces = tmp_path / "t.jsonl"
    traces.write_text(json.dumps({"row_id": "1", "sample": 0, "accepted": False, "completion": "x"}) + "\n")
    cfg = sft_config(tmp_path, tiny_model_dir, traces)
    with pytest.raises(DataError, match="no accepted trace"):
        build_sft_dataset(cfg, _criteria(), load_tokenizer(str(tiny_model_dir)))


def test_config_rejects_options_genrel_owns():
    with pytest.raises(ConfigError, match="learning_rate"):
        SFTStageConfig.load(overrides=["traces=t.jsonl", "trl.learning_rate=1.0"])


def test_shipped_config_loads():
    cfg = SFTStageConfig.load(REPO / "configs" / "sft" / "cpu-smollm2.yaml")
    assert cfg.model == "smollm2-135m" and cfg.lora is not None
    assert cfg.completion_only_logits and cfg.lora.top_layers == 15  # the fast CPU settings (bench/sft_speed.py)
    args = sft_args(cfg)  # its trl options are SFTConfig's
    assert args.completion_only_loss is True and args.max_steps == cfg.max_steps


def _criteria():
    return load_criteria("trec-dl")


def test_traces_for_other_criteria_are_refused(tmp_path, tiny_model_dir, gold_traces):
    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces, criteria="esci")
    with pytest.raises(DataError, match="does not parse under criteria 'esci'"):
        build_sft_dataset(cfg, load_criteria("esci"), load_tokenizer(str(tiny_model_dir)))


def test_completion_only_logits_give_trls_loss_gradients_and_metrics(tmp_path, tiny_model_dir, gold_traces,
                                                                      monkeypatch):
    """The LM head run at the labelled positions only: TRL's loss, gradients and logged metrics (float32, a
    right-padded batch of 3 traces of different lengths), from far fewer projected positions."""
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction

    from genrel.train import completion_head

    monkeypatch.setattr(completion_head, "VOCAB_CHUNK", 128)  # several vocabulary tiles (TRL's head: one)
    projected = []
    apply = ChunkedLogProbFunction.apply
    monkeypatch.setattr(ChunkedLogProbFunction, "apply",
                        staticmethod(lambda hidden, *args: projected.append(len(hidden)) or apply(hidden, *args)))
    results = {}
    for only in (False, True):
        cfg = sft_config(tmp_path / str(only), tiny_model_dir, gold_traces, completion_only_logits=only,
                         trl={"warmup_steps": 0, "bf16": False})
        model, tokenizer = load_model(cfg.model, dtype="float32", for_training=True)
        trainer = build_sft_trainer(cfg, model, tokenizer, build_sft_dataset(cfg, _criteria(), tokenizer))
        rows = [trainer.train_dataset[i] for i in (0, 1, 2)]
        batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
        assert len(set(batch["attention_mask"].sum(1).tolist())) > 1  # padding in the batch
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        grads = {n: p.grad for n, p in trainer.model.named_parameters() if p.grad is not None}
        results[only] = loss.item(), grads, {k: v[-1] for k, v in trainer._metrics["train"].items()}

    (trl_loss, trl_grads, trl_logged), (loss, grads, logged) = results[False], results[True]
    assert loss == pytest.approx(trl_loss, rel=1e-6)
    assert grads.keys() == trl_grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        torch.testing.assert_close(grad, trl_grads[name], rtol=1e-5, atol=1e-6, msg=name)
    assert logged.keys() >= {"entropy", "mean_token_accuracy", "num_tokens"}
    assert logged == pytest.approx(trl_logged, rel=1e-6)
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    assert projected == [batch["input_ids"].numel() - len(rows), labelled]  # TRL's: every position but the last


def test_lora_on_the_top_layers_trains_only_them(tmp_path, tiny_model_dir, gold_traces):
    from transformers import AutoModelForCausalLM

    # float32 pinned: under a bf16 base every saved weight would differ from the float32 original by rounding
    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces, max_steps=2, dtype="float32",
                     lora={"r": 4, "alpha": 8, "top_layers": 1})
    model, tokenizer = load_model(cfg.model, for_training=True)
    trainer = build_sft_trainer(cfg, model, tokenizer, build_sft_dataset(cfg, _criteria(), tokenizer))
    adapted = {n.split(".layers.")[1].split(".")[0] for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert adapted == {"1"}  # the tiny model's top layer of 2
    # Nothing below the adapter needs a gradient, so autograd records no backward through layer 0.
    needs_grad = {}
    layers = trainer.model.get_base_model().model.layers
    for i, layer in enumerate(layers):
        layer.register_forward_hook(lambda m, args, out, i=i: needs_grad.__setitem__(i, out[0].requires_grad))
    rows = [trainer.train_dataset[i] for i in (0, 1)]
    batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    trainer.compute_loss(trainer.model, batch).backward()
    assert needs_grad == {0: False, 1: True}

    result = run_sft(cfg)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    final = AutoModelForCausalLM.from_pretrained(result.final_dir).state_dict()
    changed = {n for n, p in final.items() if not torch.equal(p, base[n])}
    assert changed and all(n.startswith("model.layers.1.") for n in changed)
    assert all(math.isfinite(r["loss"]) for r in logged(result.metrics_path))


def test_lora_top_layers_beyond_the_model_is_a_config_error(tmp_path, tiny_model_dir, gold_traces):
    cfg = sft_config(tmp_path, tiny_model_dir, gold_traces, lora={"top_layers": 3})
    with pytest.raises(ConfigError, match="lora.top_layers: 3 layers asked for, the model has 2"):
        run_sft(cfg)
    with pytest.raises(ConfigError, match="lora.top_layers"):
        SFTStageConfig.load(overrides=["traces=t.jsonl", "lora.top_layers=0"])
