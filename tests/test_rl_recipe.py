"""The paper's RL recipe on tiny models: dev validation and the best checkpoint, label mixes, the
pass-rate filter, two-stage curricula with resume, the advantage clamp and dual-clip through TRL.

Random tiny models write text that never parses, so rollouts are scripted (genrel.train.scripted) where
rewards must vary, and the dev metric is forced by wrapping the real dev scorer where the best step
must be a chosen one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genrel.criteria import load_criteria
from genrel.errors import ConfigError
from genrel.models.tiny import tiny_causal_lm
from genrel.score.base import Scorer
from genrel.train.pass_filter import FilterSettings, filter_by_pass_rate, trainer_sampler
from genrel.train.rl import RLStageConfig, build_trainer, candidate_rows, grpo_args, training_dataset
from genrel.train.scripted import mixed_completions, scripted

REPO = Path(__file__).resolve().parents[1]
CRITERIA = load_criteria("trec-dl")
G = 4
# mixed_completions(…, "highly"): two completions labelled highly, one irrelevant, one unparseable, so a
# prompt's pass rate is 2/4 (gold highly), 1/4 (gold irrelevant) or 0 (related, perfect).
TRAIN_GOLD = ["highly", "highly", "highly", "irrelevant", "irrelevant", "related", "perfect"]
DEV_GOLD = ["highly", "related", "perfect", "irrelevant"]


def write_pairs(path: Path, golds: list[str], prefix: str) -> Path:
    rows = [{"qid": f"{prefix}{i}", "query": f"how long do fleas live {prefix}{i}",
             "text": "Adult fleas live two to three months.", "label": label} for i, label in enumerate(golds)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("recipe")
    return {"train": write_pairs(folder / "train.jsonl", TRAIN_GOLD, "t"),
            "dev": write_pairs(folder / "dev.jsonl", DEV_GOLD, "d")}


def make_cfg(files, output_dir: Path, **overrides) -> RLStageConfig:
    base = {
        "model": "unused", "dtype": "float32", "criteria": "trec-dl",
        "data": {"train": str(files["train"])}, "output_dir": str(output_dir),
        "num_generations": G, "prompts_per_step": 2, "max_completion_length": 12,
        "steps": 2, "save_steps": 10, "lr": 1e-3, "sam": {"mode": "hard"},
        "trl": {"gradient_checkpointing": False},
    }
    base.update(overrides)
    return RLStageConfig.model_validate(base)


def scripted_trainer(cfg, tokenizer, trainer_class=None):
    from genrel.train.rl_trainer import SAMGRPOTrainer

    cls = scripted(trainer_class or SAMGRPOTrainer, mixed_completions(CRITERIA, "highly"))
    _, rows = candidate_rows(cfg, CRITERIA, tokenizer)
    trainer = build_trainer(cfg, CRITERIA, tiny_causal_lm(tokenizer), tokenizer,
                            training_dataset(cfg, CRITERIA, rows, record=False), trainer_class=cls)
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps  # set by train()
    return trainer


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------- config


def test_recipe_config_errors_name_their_field(data, tmp_path):
    with pytest.raises(ConfigError, match=r"field 'validation.select_best': needs a dev set \(data.dev\)"):
        RLStageConfig.load(None, ["data.train=x", "validation.select_best=accuracy"])
    with pytest.raises(ConfigError, match=r"field 'validation.select_best': Input should be 'accuracy'"):
        RLStageConfig.load(None, ["data.train=x", "data.dev=y", "validation.select_best=loss"])
    with pytest.raises(ConfigError, match=r"'metric_for_best_model' is set by genrel from validation.select_best"):
        RLStageConfig.load(None, ["data.train=x", "trl.metric_for_best_model=eval_accuracy"])
    with pytest.raises(ConfigError, match=r"field 'stages': stage names must differ"):
        RLStageConfig.load(None, ["data.train=x", "stages=[{name: a}, {name: a}]"])
    with pytest.raises(ConfigError, match=r"stages.0.name"):
        RLStageConfig.load(None, ["data.train=x", "stages=[{name: 'a/b'}]"])
    with pytest.raises(ConfigError, match=r"filter.drop_at_or_below': must be below"):
        RLStageConfig.load(None, ["data.train=x", "filter={drop_at_or_below: 0.5, drop_at_or_above: 0.5}"])
    args = grpo_args(make_cfg(data, tmp_path, data={"train": "x", "dev": "y"},
                              validation={"select_best": "format_error_rate"}))
    assert (args.metric_for_best_model, args.greater_is_better, args.eval_strategy) == (
        "eval_format_error_rate", False, "no")


def test_paper_two_stage_config_is_the_authors_recipe():
    cfg = RLStageConfig.load(REPO / "configs" / "rl" / "qwen3-8b-paper-two-stage.yaml")
    first, second = cfg.stages
    assert (first.sample.mode, first.lr, second.sample.mode, second.lr) == ("label_uniform", 1e-6, "as_is", 8e-7)
    v = cfg.validation
    assert (v.eval_steps, v.decoding, v.temperature, v.top_p, v.select_best) == (25, "sampled", 0.6, 0.95, "accuracy")
    assert cfg.advantage_clip == 3.0 and cfg.trl["delta"] == 3.0 and cfg.trl["epsilon_high"] == 0.28


# ------------------------------------------------------------------- advantage clamp and dual clip


def test_advantage_clip_bounds_trl_advantages_before_sam(data, tmp_path, tiny_tokenizer):
    inputs_cfg = make_cfg(data, tmp_path, sam={"mode": "off"})
    plain = scripted_trainer(inputs_cfg, tiny_tokenizer)
    clipped = scripted_trainer(make_cfg(data, tmp_path, sam={"mode": "off"}, advantage_clip=0.5), tiny_tokenizer)
    batch = [plain.train_dataset[0]] * G
    a = plain._generate_and_score_completions(batch)["advantages"]  # [B]
    b = clipped._generate_and_score_completions(batch)["advantages"]  # [B]
    assert a.abs().max() > 0.5
    assert torch.equal(b, a.clamp(-0.5, 0.5))


def test_trl_delta_is_dual_clip_for_negative_advantages(data, tmp_path, tiny_tokenizer):
    """With every ratio at 5: the authors' dual-clip loss (c = 3) is -1.28·A for A > 0 and 3·|A| for
    A < 0 (per token, so also per sequence); TRL's loss with delta=3 equals it, without delta it does not."""
    losses = {}
    for delta in (None, 3.0):
        trl = {"gradient_checkpointing": False, "epsilon": 0.2, "epsilon_high": 0.28}
        trainer = scripted_trainer(make_cfg(data, tmp_path, sam={"mode": "off"},
                                            trl={**trl, **({"delta": delta} if delta else {})}), tiny_tokenizer)
        out = trainer._generate_and_score_completions([trainer.train_dataset[0]] * G)
        input_ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, mask, out["completion_ids"].size(1))  # [B, T]
        out["old_per_token_logps"] = logps.detach() - math.log(5.0)  # ratio 5 on every token
        losses[delta] = trainer.compute_loss(trainer.model, out).item()
        adv = out["advantages"]  # [B]
        assert (adv > 0).any() and (adv < 0).any()
    dual_clip = torch.where(adv > 0, -1.28 * adv, 3.0 * adv.abs()).mean().item()
    assert losses[3.0] == pytest.approx(dual_clip, rel=1e-4)
    assert losses[None] == pytest.approx(torch.where(adv > 0, -1.28 * adv, 5.0 * adv.abs()).mean().item(), rel=1e-4)


# ---------------------------------------------------------------------------------- pass-rate filter


def test_pass_rate_filter_on_a_scripted_model_drops_exactly_the_prompts_it_should(data, tmp_path, tiny_tokenizer):
    cfg = make_cfg(data, tmp_path)
    trainer = scripted_trainer(cfg, tiny_tokenizer)
    pairs, rows = candidate_rows(cfg, CRITERIA, tiny_tokenizer)
    sample = trainer_sampler(trainer, batch_size=3)  # batches that split the 7 prompts unevenly

    kept_pairs, kept_rows = filter_by_pass_rate(pairs, rows, CRITERIA, FilterSettings(k=G), tmp_path / "f", sample)
    assert [p.label for p in kept_pairs] == ["highly"] * 3 + ["irrelevant"] * 2  # rates 1/2 and 1/4 kept
    assert [r["row_id"] for r in kept_rows] == [p.row_id for p in kept_pairs]
    rates = records(tmp_path / "f" / "pass_rates.jsonl")
    assert [(r["gold"], r["passes"], r["pass_rate"], r["kept"]) for r in rates] == [
        ("highly", 2, 0.5, True)] * 3 + [("irrelevant", 1, 0.25, True)] * 2 + [
        ("related", 0, 0.0, False), ("perfect", 0, 0.0, False)]
    assert [r["label"] for r in records(tmp_path / "f" / "kept.jsonl")] == ["highly"] * 3 + ["irrelevant"] * 2

    # Stricter thresholds on the saved rates: no sampling again, exactly the 1/2 prompts are left.
    def no_sampling(prompts, k):
        raise AssertionError("the saved rates should be reused")

    strict = FilterSettings(k=G, drop_at_or_below=0.25, drop_at_or_above=0.75)
    kept_pairs, _ = filter_by_pass_rate(pairs, rows, CRITERIA, strict, tmp_path / "f", no_sampling)
    assert [p.label for p in kept_pairs] == ["highly"] * 3


# ------------------------------------------------------------------- two stages, dev, best, resume


class ForcedDev(Scorer):
    """The real dev scorer, with every label then set right (at the chosen steps) or wrong (elsewhere)."""

    def __init__(self, real: Scorer, right: bool):
        self.real, self.right, self.criteria, self.name = real, right, real.criteria, real.name

    def score_pairs(self, pairs, *, explain=False):
        out = self.real.score_pairs(pairs, explain=explain)
        assert all(s.format_error is not None for s in out)  # the tiny model's own (unparseable) output
        for pair, s in zip(pairs, out):
            s.label = pair.label if self.right else next(n for n in CRITERIA.label_names if n != pair.label)
        return out


class _Killed(RuntimeError):
    pass


def test_two_stage_run_with_dev_validation_selects_best_and_resumes_between_stages(
    data, tmp_path, tiny_model_dir, monkeypatch
):
    from transformers import TrainerCallback

    from genrel.train import rl_trainer, validation
    from genrel.train.rl import run_rl

    monkeypatch.setattr(rl_trainer, "SAMGRPOTrainer",
                        scripted(rl_trainer.SAMGRPOTrainer, mixed_completions(CRITERIA, "highly")))
    real_scorer = validation.dev_scorer
    best = {("stage-1-uniform", 2), ("stage-2-random", 1)}

    def forced(model, trainer, criteria, options):
        where = (Path(trainer.args.output_dir).name, trainer.state.global_step)
        return ForcedDev(real_scorer(model, trainer, criteria, options), right=where in best)

    monkeypatch.setattr(validation, "dev_scorer", forced)
    began, start_weights, trained_on = [], {}, {}

    class Watch(TrainerCallback):
        def __init__(self, kill_at: str | None):
            self.kill_at = kill_at

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            name = Path(args.output_dir).name
            began.append(name)
            start_weights[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            trained_on[name] = sorted(kwargs["train_dataloader"].dataset["gold_label"])  # what the trainer reads
            if name == self.kill_at:
                raise _Killed(name)

    run = tmp_path / "run"
    cfg = make_cfg(
        data, run, model=str(tiny_model_dir), filter={"k": G},
        data={"train": str(data["train"]), "dev": str(data["dev"])},
        validation={"eval_steps": 2, "select_best": "accuracy", "max_new_tokens": 4, "decoding": "greedy"},
        stages=[{"name": "uniform", "sample": "label_uniform", "lr": 1e-3, "steps": 3},
                {"name": "random", "sample": "as_is", "lr": 5e-4, "steps": 1}],
        trl={"gradient_checkpointing": False, "report_to": "tensorboard"},
    )
    with pytest.raises(_Killed):
        run_rl(cfg, callbacks=[Watch(kill_at="stage-2-random")])
    one = run / "stage-1-uniform"
    assert began == ["stage-1-uniform", "stage-2-random"]

    # Stage 1: dev metrics at steps 2 and 3 (the last), best at 2, so final/ is checkpoint-2.
    dev = [r for r in records(one / "metrics.jsonl") if "eval_accuracy" in r]
    assert [(r["step"], r["eval_accuracy"]) for r in dev] == [(2, 1.0), (3, 0.0)]
    assert all(r["eval_format_error_rate"] == 1.0 and r["eval_n"] == 4 and "eval_macro_f1" in r
               and "eval_steps/topic_accuracy" in r for r in dev)
    final, best_ckpt, last_ckpt = (load_file(str(one / d / "model.safetensors"))
                                   for d in ("final", "checkpoint-2", "checkpoint-3"))
    assert all(torch.equal(final[k], best_ckpt[k]) for k in best_ckpt)
    assert any(not torch.equal(last_ckpt[k], best_ckpt[k]) for k in best_ckpt)  # the best is not the last
    info = json.loads((one / "final" / "genrel_model.json").read_text())
    assert (info["selected_step"], info["selected_by"], info["selected_value"]) == (2, "dev accuracy", 1.0)
    # Stage 1 trained on a label-uniform mix of the prompts the filter kept (rates 1/2 and 1/4).
    mix = json.loads((one / "data_mix.json").read_text())
    assert mix["candidates"] == {"irrelevant": 2, "related": 0, "highly": 3, "perfect": 0}
    assert mix["trained"] == {"irrelevant": 2, "related": 0, "highly": 2, "perfect": 0}
    assert [r["kept"] for r in records(one / "filter" / "pass_rates.jsonl")] == [True] * 5 + [False] * 2
    assert trained_on["stage-1-uniform"] == ["highly", "highly", "irrelevant", "irrelevant"]
    # TensorBoard got the dev metrics too.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((one / "runs").iterdir()))).Reload()
    assert [(e.step, e.value) for e in events.Scalars("eval/accuracy")] == [(2, 1.0), (3, 0.0)]

    # Killed between stages: a rerun without resume refuses, with resume it runs stage 2 only.
    with pytest.raises(ConfigError, match="already holds 1 finished stage"):
        run_rl(cfg)
    began.clear()
    result = run_rl(cfg.model_copy(update={"resume": True}), callbacks=[Watch(kill_at=None)])
    assert began == ["stage-2-random"]
    assert all(torch.equal(start_weights["stage-2-random"][k], v) for k, v in best_ckpt.items())
    two = run / "stage-2-random"
    assert json.loads((two / "data_mix.json").read_text())["trained"] == mix["candidates"]  # as_is: all kept
    assert [r["step"] for r in records(two / "metrics.jsonl") if "eval_accuracy" in r] == [1]
    stages = json.loads((run / "stages.json").read_text())["stages"]
    assert [(s["name"], s["global_step"], s["selected_step"]) for s in stages] == [
        ("stage-1-uniform", 3, 2), ("stage-2-random", 1, 1)]
    assert (run / "final").resolve() == (two / "final").resolve() and result.selected_step == 1
    assert RLStageConfig.load(two / "config.yaml").model == str(one / "final")
