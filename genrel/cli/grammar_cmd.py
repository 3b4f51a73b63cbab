"""``genrel prompt`` and ``genrel parse`` (filled in by the grammar/prompt modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from genrel.cli.common import console

_STATUS_WORDS = {1: "right", 0: "wrong", -1: "unverifiable"}


def register(app: typer.Typer) -> None:
    app.command("parse")(parse_completion)


def parse_completion(
    source: str = typer.Argument(..., metavar="FILE", help="Completion file, or - for stdin."),
    criteria: str = typer.Option(..., "--criteria", "-c", help="Criteria preset name or YAML path."),
    gold: str | None = typer.Option(None, "--gold", help="Gold label: also print step statuses and reward."),
) -> None:
    """Parse a completion: steps with verdicts and character spans, then the label; exit 1 if malformed."""
    from genrel.criteria import load_criteria
    from genrel.errors import GenrelError
    from genrel.grammar import ParseError, parse
    from genrel.rewards import RewardConfig, reward_breakdown
    from genrel.verify import step_status

    crit = load_criteria(criteria)
    text = _read_source(source)
    try:
        parsed = parse(text, crit)
    except ParseError as exc:
        raise GenrelError(f"{exc.kind.value}: {exc.message}", where=_where(source, text, exc.position)) from None
    statuses = step_status(crit, parsed.verdicts, gold) if gold is not None else None
    width = max(len(s.id) for s in crit.steps) if crit.steps else 0
    for i, step in enumerate(parsed.steps):
        line = f"step  {step.id:<{width}}  verdict {step.verdict or '-':<12}  span {step.span[0]}-{step.span[1]}"
        if statuses is not None:
            line += f"  {_STATUS_WORDS[statuses[i]]}"
        console.print(line, markup=False, highlight=False)
    start, end = parsed.label_span
    console.print(f"label {parsed.label}  span {start}-{end}", markup=False, highlight=False)
    if gold is not None:
        parts = reward_breakdown(parsed, gold, crit, RewardConfig())
        summary = ", ".join(f"{k} {v:g}" for k, v in parts.items() if k != "reward")
        console.print(f"reward {parts['reward']:g} ({summary})", markup=False, highlight=False)


def _read_source(source: str) -> str:
    from genrel.errors import DataError

    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise DataError("file not found", where=source)
    return path.read_text(encoding="utf-8")


def _where(source: str, text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{'<stdin>' if source == '-' else source}:{line}:{column} (char {position})"
