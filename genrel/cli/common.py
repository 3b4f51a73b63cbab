"""Shared CLI state and option helpers."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console


@dataclass
class _State:
    debug: bool = False


state = _State()
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
