"""``stages:``: a curriculum of RL stages in one config, each starting from the previous one's model.

The paper trains in two stages: first on a label-uniform sample at lr 1e-6, then on a random sample
at lr 8e-7, the second starting from the checkpoint the first one selected on the dev set. Here a
stage is ``{name, data, sample, lr, steps}``; every other field comes from the config around it. Stage
``i`` runs as an ordinary RL run in ``output_dir/stage-<i>-<name>/`` (its own ``config.yaml``,
``metrics.jsonl``, checkpoints, ``data_mix.json``, ``filter/``, ``final/``), with ``model`` set to the
previous stage's ``final/`` (its selected checkpoint when ``validation.select_best`` is set).

``output_dir/stages.json`` lists the finished stages (folder, final model, steps, selected step). A
rerun with ``resume: true`` skips those, resumes the stage that was interrupted from its last
checkpoint, and starts the rest; so a run killed between stages continues at the next one.
``output_dir/final`` links to the last stage's ``final/``. This module does not train: the runner of
one stage is passed in (:func:`genrel.train.rl.run_rl`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genrel.errors import ConfigError
from genrel.train.run_dir import FINAL_DIR
from genrel.train.sampling import SampleSettings

STAGES_FILE = "stages.json"


class StageSpec(BaseModel):
    """One stage of a curriculum; a field left out takes the value of the config around it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Folder suffix: stage-<i>-<name>.")
    data: str | None = Field(default=None, description="Judged training pairs of this stage; default data.train.")
    sample: SampleSettings | None = Field(default=None, description="Label mix of this stage; default data.sample.")
    lr: float | None = Field(default=None, gt=0.0, description="Learning rate of this stage; default lr.")
    steps: int | None = Field(default=None, ge=1, description="Optimizer steps of this stage; default steps.")

    @field_validator("name")
    @classmethod
    def _folder_safe(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError(f"'{v}' must be letters, digits, '_', '.', '-' (it names a folder)")
        return v


@dataclass(frozen=True)
class StageDone:
    """A finished stage, as ``stages.json`` records it."""

    name: str
    dir: str
    final_dir: str
    global_step: int
    selected_step: int | None


def stage_dir_name(index: int, spec: StageSpec) -> str:
    return f"stage-{index + 1}" + (f"-{spec.name}" if spec.name else "")


def stage_config(cfg, index: int, model: str):
    """The ordinary RL config of stage ``index`` (0-based), starting from ``model``."""
    spec = cfg.stages[index]
    data = cfg.data.model_copy(update={
        "train": spec.data if spec.data is not None else cfg.data.train,
        "sample": spec.sample if spec.sample is not None else cfg.data.sample,
    })
    return cfg.model_copy(update={
        "stages": None, "data": data, "model": model,
        "lr": spec.lr if spec.lr is not None else cfg.lr,
        "steps": spec.steps if spec.steps is not None else cfg.steps,
        "output_dir": str(Path(cfg.output_dir) / stage_dir_name(index, spec)),
    })


def run_stages(cfg, run_one: Callable[..., Any], callbacks: list | tuple = ()) -> list[StageDone]:
    """Run ``cfg.stages`` in order with ``run_one(stage_cfg, callbacks=...)`` (which returns an object
    with ``final_dir``, ``global_step`` and ``selected_step``); see the module docstring."""
    run_dir = Path(cfg.output_dir)
    main_process = os.environ.get("RANK", "0") == "0"
    done = read_stages(run_dir)
    if done and not cfg.resume:
        raise ConfigError(f"already holds {len(done)} finished stage(s)", where=str(run_dir),
                          hint="set resume=true to continue it, or choose another output_dir")
    model = cfg.model
    finished: list[StageDone] = []
    for index, spec in enumerate(cfg.stages):
        name = stage_dir_name(index, spec)
        previous = done.get(name)
        if previous is not None and Path(previous.final_dir).is_dir():
            finished.append(previous)
        else:
            result = run_one(stage_config(cfg, index, model), callbacks=callbacks)
            finished.append(StageDone(name, str(run_dir / name), str(result.final_dir), result.global_step,
                                      result.selected_step))
            if main_process:
                write_stages(run_dir, finished)
        model = finished[-1].final_dir
    if main_process:
        link_final(run_dir, Path(finished[-1].final_dir))
    return finished


def read_stages(run_dir: Path) -> dict[str, StageDone]:
    path = run_dir / STAGES_FILE
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["stages"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"unreadable ({exc})", where=str(path), hint="delete it to rerun every stage") from None
    return {r["name"]: StageDone(**r) for r in records}


def write_stages(run_dir: Path, finished: list[StageDone]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (STAGES_FILE + ".tmp")
    tmp.write_text(json.dumps({"stages": [vars(s) for s in finished]}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / STAGES_FILE)


def link_final(run_dir: Path, final_dir: Path) -> None:
    """``run_dir/final`` → the last stage's model (a relative symlink, so the folder can move)."""
    link = run_dir / FINAL_DIR
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        raise ConfigError("is a folder, not the link to the last stage's model", where=str(link))
    link.symlink_to(os.path.relpath(final_dir, run_dir), target_is_directory=True)
