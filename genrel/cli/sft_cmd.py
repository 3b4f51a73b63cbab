"""``genrel sft``: warm-up supervised fine-tuning on accepted teacher traces, from one YAML config (see configs/sft/)."""

from __future__ import annotations

from pathlib import Path

import typer

from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("sft")(sft)


def sft(
    config: Path = typer.Option(..., "--config", "-c", help="SFT stage config (YAML), e.g. configs/sft/cpu-smollm2.yaml."),
    overrides: list[str] = typer.Option(
        None, "--set", help="Override a field: a.b=value (value read as YAML). Repeatable."
    ),
) -> None:
    """Fine-tune a model on teacher traces (loss on the trace only); the final model goes to output_dir/final."""
    from genrel.train.sft import SFTStageConfig, run_sft

    cfg = SFTStageConfig.load(config, overrides or [])
    result = run_sft(cfg)
    kept = f" (dev-selected step {result.selected_step})" if result.selected_step is not None else ""
    console.print(
        f"SFT done at step {result.global_step} on {result.examples} trace(s): model{kept} in {result.final_dir}, "
        f"metrics in {result.metrics_path}",
        markup=False,
        highlight=False,
    )
