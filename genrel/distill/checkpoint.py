"""The resume check the student trainers share: a checkpoint is picked up only by a run with its settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genrel.errors import ModelError


def resume_state(path: Path, args: dict[str, Any], hint: str) -> dict[str, Any] | None:
    """The ``state.json`` of the checkpoint at ``path``, or None when there is none. A checkpoint written
    with other ``args`` is a :class:`ModelError` naming the settings that differ (``hint``: how to start over)."""
    state_file = path / "state.json"
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    if state["args"] != args:
        changed = sorted(k for k in args if state["args"].get(k) != args[k])
        raise ModelError(
            f"the checkpoint was written by a run with other settings ({', '.join(changed)})",
            where=str(path),
            hint=hint,
        )
    return state
