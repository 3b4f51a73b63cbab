"""``genrel rl``: GRPO + Stepwise Advantage Masking from one YAML config (see configs/rl/)."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("rl")(rl)


def rl(
    config: Path = typer.Option(..., "--config", "-c", help="RL stage config (YAML), e.g. configs/rl/cpu-smollm2.yaml."),
    overrides: list[str] = typer.Option(
        None, "--set", help="Override a field: a.b=value (value read as YAML). Repeatable."
    ),
) -> None:
    """Train a relevance model with GRPO + SAM. Under `accelerate launch` it runs on every process."""
    from genrel.train.rl import RLStageConfig, run_rl

    cfg = RLStageConfig.load(config, overrides or [])
    result = run_rl(cfg)
    kept = f" (dev-selected step {result.selected_step})" if result.selected_step is not None else ""
    console.print(
        f"RL done at step {result.global_step}: model{kept} in {result.final_dir}, metrics in {result.metrics_path}",
        markup=False,
        highlight=False,
    )
