"""The RL stage: config, the TRL hook contract, SAM through TRL's own loss, plain-GRPO equivalence,
real tiny runs, checkpoints and resume, and every shipped YAML config.

Random tiny models write text that never parses, so tests that need masking replay rendered valid
completions instead of sampling (``..._with_scripted_completions``, see genrel.train.scripted).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from genrel.criteria import load_criteria
from genrel.errors import ConfigError
from genrel.models.tiny import tiny_causal_lm
from genrel.train.rl import RLStageConfig, batch_split, build_rl_dataset, build_trainer, check_trl_options, grpo_args

REPO = Path(__file__).resolve().parents[1]
CRITERIA = load_criteria("trec-dl")
GOLD = ["highly", "related", "perfect", "irrelevant"]
G = 4  # completions per prompt


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    rows = [
        {"qid": str(i), "query": f"how long do fleas live {i}", "text": "Adult fleas live two to three months.",
         "label": label}
        for i, label in enumerate(GOLD)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_cfg(pairs_file: Path, output_dir: Path, **overrides) -> RLStageConfig:
    base = {
        "model": "unused",
        "criteria": "trec-dl",
        "data": {"train": str(pairs_file)},
        "output_dir": str(output_dir),
        "num_generations": G,
        "prompts_per_step": 2,
        "max_completion_length": 12,
        "steps": 2,
        "save_steps": 10,
        "lr": 1e-3,
        "sam": {"mode": "hard"},
    }
    base.update(overrides)
    return RLStageConfig.model_validate(base)


def group_inputs(dataset, n_prompts: int) -> list[dict]:
    """A generation batch as TRL's sampler builds it: each prompt repeated G times in a row."""
    return [dataset[i] for i in range(n_prompts) for _ in range(G)]


def scripted_trainer(base_class, cfg, tiny_tokenizer, dataset, seed: int = 0):
    from genrel.train.scripted import mixed_completions, scripted

    cls = scripted(base_class, mixed_completions(CRITERIA, "highly"))
    model = tiny_causal_lm(tiny_tokenizer, seed=seed)
    trainer = build_trainer(cfg, CRITERIA, model, tiny_tokenizer, dataset, trainer_class=cls)
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps  # set by train()
    return trainer


class LogpsProbe:
    """Mixin: keeps TRL's per-token log-probabilities of the last loss computation, with their grad."""

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        logps, entropies, aux = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if logps.requires_grad:
            logps.retain_grad()
            self.probed_logps = logps
        return logps, entropies, aux


# ---------------------------------------------------------------------------------------------- config


def test_loss_type_outside_sam_set_is_a_config_error(tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text("data: {train: x.jsonl}\nloss_type: sapo\n")
    with pytest.raises(ConfigError, match=r"field 'loss_type': 'sapo' is not supported: use one of grpo"):
        RLStageConfig.load(path)


def test_trl_passthrough_cannot_set_owned_or_unknown_options(tmp_path):
    with pytest.raises(ConfigError, match=r"'learning_rate' is set by genrel from lr"):
        RLStageConfig.load(None, ["data.train=x", "trl.learning_rate=0.1"])
    with pytest.raises(ConfigError, match=r"'use_liger_kernel' is set by genrel"):
        RLStageConfig.load(None, ["data.train=x", "trl.use_liger_kernel=true"])
    with pytest.raises(ConfigError, match=r"trl: unknown option\(s\) epsilon_hi"):
        check_trl_options({"epsilon_hi": 0.28})


def test_grpo_args_turns_config_into_grpo_config(tmp_path, pairs_file):
    cfg = make_cfg(pairs_file, tmp_path, trl={"epsilon": 0.2, "epsilon_high": 0.28}, loss_type="dapo")
    args = grpo_args(cfg)
    assert (args.epsilon, args.epsilon_high, args.loss_type, args.num_generations) == (0.2, 0.28, "dapo", G)
    assert (args.learning_rate, args.max_steps, args.logging_steps) == (1e-3, 2, 1)
    assert args.use_liger_kernel is False and args.remove_unused_columns is False
    assert args.use_cpu is (not torch.cuda.is_available())
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 2 * G


def test_batch_split_in_prompts(pairs_file, tmp_path):
    paper = make_cfg(pairs_file, tmp_path, prompts_per_step=40, num_generations=8, micro_batch_size=8)
    assert batch_split(paper, world_size=8) == (8, 5)  # 320 completions: 40 per GPU, 5 micro-steps of 8
    assert batch_split(paper, world_size=1) == (8, 40)
    with pytest.raises(ConfigError, match="do not split over 3 processes"):
        batch_split(paper, world_size=3)


def _load_rl(path: Path) -> None:
    cfg = RLStageConfig.load(path)
    check_trl_options(cfg.trl)
    batch_split(cfg, world_size=1)


def _load_sft(path: Path) -> None:
    from trl import SFTConfig

    from genrel.train.sft import SFTStageConfig

    check_trl_options(SFTStageConfig.load(path).trl, SFTConfig)


def _load_distill(path: Path) -> None:
    from genrel.distill.config import DistillConfig

    DistillConfig.load(path)


def _load_accelerate(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict), path


# Every folder under configs/ and what its files must load as; a folder missing here fails the test.
def _load_student(path):
    from genrel.distill.st_config import StudentTrainConfig

    return StudentTrainConfig.load(path)


CONFIG_FOLDERS = {"rl": _load_rl, "sft": _load_sft, "distill": _load_distill, "accelerate": _load_accelerate,
                  "student": _load_student}


def test_every_yaml_under_configs_loads():
    """Each file under configs/<folder>/ loads as that folder's config (RL and SFT trl options checked
    against TRL's fields); a folder with no entry in CONFIG_FOLDERS, or a file outside any folder, fails."""
    files = sorted((REPO / "configs").rglob("*.yaml")) + sorted((REPO / "configs").rglob("*.yml"))
    assert files, "no configs shipped"
    folders = {p.name for p in (REPO / "configs").iterdir() if p.is_dir()}
    assert folders <= set(CONFIG_FOLDERS), f"configs/ folders with no loader: {sorted(folders - set(CONFIG_FOLDERS))}"
    for path in files:
        parts = path.relative_to(REPO / "configs").parts
        assert len(parts) == 2, f"{path}: configs live in configs/<folder>/"
        CONFIG_FOLDERS[parts[0]](path)
    assert {path.relative_to(REPO / "configs").parts[0] for path in files} == folders


def test_lora_top_layers_adapts_only_those_layers(pairs_file, tmp_path, tiny_tokenizer):
    cfg = make_cfg(pairs_file, tmp_path, lora={"r": 4, "alpha": 8, "top_layers": 1})
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    trainer = build_trainer(cfg, CRITERIA, tiny_causal_lm(tiny_tokenizer), tiny_tokenizer, dataset)
    trained = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trained and all(".layers.1." in n and "lora_" in n for n in trained)  # the top layer of the tiny model's 2

def test_cli_bad_config_is_one_line_and_exit_code_2(tmp_path):
    """Through the real entry point (``python -m genrel``, i.e. ``main()``), not CliRunner, which bypasses
    main()'s error handling: exit code 2 and one line on stderr, no traceback."""
    path = tmp_path / "rl.yaml"
    path.write_text("data: {train: x.jsonl}\n")
    cmd = [sys.executable, "-m", "genrel", "rl", "--config", str(path), "--set", "loss_type=sapo"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "loss_type" in lines[0] and "sapo" in lines[0]


# ------------------------------------------------------------------------------------ the TRL hook


def test_trl_hook_contract_with_scripted_completions(tmp_path, pairs_file, tiny_tokenizer):
    """super()._generate_and_score_completions returns advantages [B], completion_ids and
    completion_mask [B, T]; TRL's loss takes [B, T] advantages (a broadcast [B] gives the same loss)."""
    import trl
    from trl import GRPOTrainer

    assert trl.__version__.startswith("1.16."), "SAM's hook is pinned to TRL 1.16; re-check the contract"
    cfg = make_cfg(pairs_file, tmp_path)
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    trainer = scripted_trainer(GRPOTrainer, cfg, tiny_tokenizer, dataset)
    out = trainer._generate_and_score_completions(group_inputs(dataset, 1))
    B = G
    assert out["advantages"].shape == (B,)
    assert out["completion_ids"].shape == out["completion_mask"].shape
    assert out["completion_ids"].shape[0] == B
    loss_1d = trainer.compute_loss(trainer.model, out)
    expanded = dict(out, advantages=out["advantages"][:, None].expand_as(out["completion_mask"]).clone())
    assert torch.allclose(trainer.compute_loss(trainer.model, expanded), loss_1d)


def test_sam_masked_tokens_get_no_gradient_with_scripted_completions(tmp_path, pairs_file, tiny_tokenizer):
    """Through the trainer's own compute_loss (beta=0): d loss / d logp is zero on every token SAM
    masks and non-zero on every other completion token of a completion with a non-zero advantage."""
    from trl import GRPOTrainer

    from genrel.train.rl_trainer import SAMGRPOTrainer

    cfg = make_cfg(pairs_file, tmp_path)
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    inputs = group_inputs(dataset, 2)
    plain = scripted_trainer(GRPOTrainer, cfg, tiny_tokenizer, dataset)
    sam = scripted_trainer(type("Probe", (LogpsProbe, SAMGRPOTrainer), {}), cfg, tiny_tokenizer, dataset)

    base = plain._generate_and_score_completions(inputs)["advantages"]  # [B]
    out = sam._generate_and_score_completions(inputs)
    token_adv, mask = out["advantages"], out["completion_mask"].bool()  # [B, T] each
    assert token_adv.shape == mask.shape
    masked = mask & (token_adv == 0) & (base[:, None] != 0)  # [B, T]
    kept = mask & (base[:, None] != 0) & ~masked  # [B, T]
    assert masked.any() and kept.any()
    assert torch.equal(token_adv[kept], base[:, None].expand_as(token_adv)[kept])

    # Completion 2 of the "highly" group (right label, exact step wrong) loses exactly its exact step.
    row = 1
    text = tiny_tokenizer.decode(out["completion_ids"][row][masked[row]])
    assert base[row] > 0 and text.startswith('<step id="exact">') and text.endswith("</step>")

    loss = sam.compute_loss(sam.model, out)
    loss.backward()
    grad = sam.probed_logps.grad  # [B, T]
    assert torch.all(grad[masked] == 0)
    assert torch.all(grad[kept] != 0)
    assert torch.isfinite(loss)


def test_mode_off_equals_plain_grpo_with_scripted_completions(tmp_path, pairs_file, tiny_tokenizer):
    """sam.mode=off gives TRL's own advantages, loss and gradients on the same batch."""
    from trl import GRPOTrainer

    from genrel.train.rl_trainer import SAMGRPOTrainer

    cfg = make_cfg(pairs_file, tmp_path, sam={"mode": "off"})
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    inputs = group_inputs(dataset, 1)
    results = []
    for cls in (GRPOTrainer, SAMGRPOTrainer):
        trainer = scripted_trainer(cls, cfg, tiny_tokenizer, dataset, seed=3)
        out = trainer._generate_and_score_completions(inputs)
        loss = trainer.compute_loss(trainer.model, out)
        loss.backward()
        grads = [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]
        results.append((out["advantages"], loss.detach(), grads))
    (adv_a, loss_a, grads_a), (adv_b, loss_b, grads_b) = results
    assert torch.equal(adv_a, adv_b) and adv_a.abs().sum() > 0
    assert torch.equal(loss_a, loss_b)
    assert len(grads_a) == len(grads_b) > 0
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_renormalize_scales_kept_tokens_per_completion_with_scripted_completions(
    tmp_path, pairs_file, tiny_tokenizer
):
    """grpo + renormalize: each completion's kept advantages × (its completion tokens ÷ its kept tokens)."""
    from genrel.train.rl_trainer import SAMGRPOTrainer

    outs = []
    for renormalize in (False, True):
        cfg = make_cfg(pairs_file, tmp_path, sam={"mode": "hard", "renormalize": renormalize})
        dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
        trainer = scripted_trainer(SAMGRPOTrainer, cfg, tiny_tokenizer, dataset)
        outs.append(trainer._generate_and_score_completions(group_inputs(dataset, 2)))
    plain, renormalized = outs[0]["advantages"], outs[1]["advantages"]  # [B, T] each
    mask = outs[0]["completion_mask"].bool()  # [B, T]
    kept = (mask & ~((plain == 0) & (plain.abs().sum(1, keepdim=True) > 0))).sum(1)  # [B]
    scale = torch.where(kept > 0, mask.sum(1) / kept.clamp(min=1), 1.0)  # [B]
    assert (scale > 1).any()
    assert torch.allclose(renormalized[mask], (plain * scale[:, None])[mask])  # padding is not in the loss


def test_batch_metrics_have_the_values_the_scripted_completions_imply(tmp_path, pairs_file, tiny_tokenizer):
    """Scripted completions (for gold 'highly': right; right label with exact wrong; 'irrelevant' with
    every step no; unparseable) on the 'highly' and 'related' prompts. Per trec-dl's expect:
    labels right 2 of 8; parsed completions consistent 4 of 6 (the exact=yes 'highly' ones are not);
    topic right 4/6, answer 3/6, exact 4/6; format errors 2 of 8."""
    from genrel.train.rl_trainer import SAMGRPOTrainer

    cfg = make_cfg(pairs_file, tmp_path)
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    assert [dataset[i]["gold_label"] for i in range(2)] == ["highly", "related"]
    trainer = scripted_trainer(SAMGRPOTrainer, cfg, tiny_tokenizer, dataset)
    trainer._generate_and_score_completions(group_inputs(dataset, 2))
    logged = {k: v[-1] for mode in ("train", "eval") for k, v in trainer._metrics[mode].items() if v}
    assert logged["eval/label_accuracy"] == pytest.approx(2 / 8)
    assert logged["format_error_rate"] == pytest.approx(2 / 8)
    assert logged["steps/label_consistency"] == pytest.approx(4 / 6)
    assert logged["steps/topic_accuracy"] == pytest.approx(4 / 6)
    assert logged["steps/answer_accuracy"] == pytest.approx(3 / 6)
    assert logged["steps/exact_accuracy"] == pytest.approx(4 / 6)
    assert 0 < logged["sam/masked_token_share"] < 1


def test_each_completion_is_parsed_once_per_batch(tmp_path, pairs_file, tiny_tokenizer, monkeypatch):
    """The reward function and the SAM hook share one parse (and verification) per completion."""
    import genrel.train.rl_trainer as rl_trainer

    cfg = make_cfg(pairs_file, tmp_path)
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    trainer = scripted_trainer(rl_trainer.SAMGRPOTrainer, cfg, tiny_tokenizer, dataset)
    calls = []
    real = rl_trainer.try_parse
    monkeypatch.setattr(rl_trainer, "try_parse", lambda text, criteria: calls.append(text) or real(text, criteria))
    out = trainer._generate_and_score_completions(group_inputs(dataset, 2))
    assert out["advantages"].shape == out["completion_mask"].shape
    assert len(calls) == 2 * 4  # one per distinct (completion, gold) of the 8 completions, none twice
    assert len(set(calls)) == 4


# ------------------------------------------------------------------------------------------ training


def test_scripted_run_trains_and_logs_sam_metrics(tmp_path, pairs_file, tiny_tokenizer):
    from genrel.train.rl_trainer import SAMGRPOTrainer

    cfg = make_cfg(pairs_file, tmp_path / "run")
    dataset = build_rl_dataset(cfg, CRITERIA, tiny_tokenizer)
    trainer = scripted_trainer(SAMGRPOTrainer, cfg, tiny_tokenizer, dataset)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, trainer.model.parameters()))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert r["loss"] is not None and abs(r["loss"]) < 1e3
        assert 0 < r["sam/masked_token_share"] < 1
        assert r["format_error_rate"] == pytest.approx(0.25)
        for key in ("eval/label_accuracy", "steps/label_consistency", "steps/topic_accuracy",
                    "steps/answer_accuracy", "steps/exact_accuracy", "completions/mean_length"):
            assert key in r


def test_tiny_grpo_sam_run_end_to_end(tmp_path, pairs_file, tiny_model_dir):
    """run_rl with real sampling from a tiny random model: 2 steps, metrics each step, final model and
    resolved config in the run folder."""
    from genrel.train.rl import RLStageConfig, run_rl

    cfg = make_cfg(pairs_file, tmp_path / "run", model=str(tiny_model_dir), steps=2, save_steps=2)
    result = run_rl(cfg)
    assert result.global_step == 2
    assert (result.final_dir / "config.json").is_file()
    assert RLStageConfig.load(tmp_path / "run" / "config.yaml") == cfg
    steps = [json.loads(x) for x in result.metrics_path.read_text().splitlines()]
    steps = [r for r in steps if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["format_error_rate"] == 1.0 and r["sam/masked_token_share"] == 0.0 for r in steps)


class _Killed(RuntimeError):
    pass


class _KillAfterCheckpoint:
    """A callback that aborts the run right after the checkpoint of ``step`` is written."""

    def __new__(cls, step: int):
        from transformers import TrainerCallback

        class Kill(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise _Killed(f"killed after checkpoint-{step}")

        return Kill()


def test_resume_after_kill_reaches_the_same_final_step_with_scripted_completions(
    tmp_path, pairs_file, tiny_model_dir, tiny_tokenizer, monkeypatch
):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from genrel.train import rl_trainer
    from genrel.train.rl import run_rl
    from genrel.train.scripted import mixed_completions, scripted

    monkeypatch.setattr(
        rl_trainer, "SAMGRPOTrainer", scripted(rl_trainer.SAMGRPOTrainer, mixed_completions(CRITERIA, "highly"))
    )
    run = tmp_path / "run"
    cfg = make_cfg(pairs_file, run, model=str(tiny_model_dir), steps=3, save_steps=1)
    with pytest.raises(_Killed):
        run_rl(cfg, callbacks=[_KillAfterCheckpoint(2)])
    assert (run / "checkpoint-2").is_dir() and not (run / "final").exists()
    with pytest.raises(ConfigError, match="already holds checkpoint-2"):
        run_rl(cfg)

    seen = {}

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            seen["step"] = state.global_step
            seen["weights"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    result = run_rl(cfg.model_copy(update={"resume": True}), callbacks=[Snapshot()])
    assert result.global_step == 3
    saved = load_file(str(run / "checkpoint-2" / "model.safetensors"))
    assert all(torch.equal(seen["weights"][k], v) for k, v in saved.items())
    initial = tiny_causal_lm(tiny_tokenizer).state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in saved.items())  # training had moved them
    steps = [json.loads(x)["step"] for x in result.metrics_path.read_text().splitlines() if '"loss"' in x]
    assert steps == [1, 2, 3]
