"""The ``genrel`` command: one subcommand per pipeline stage, each a thin call into the library.

Errors of our own types become one line on stderr and the type's exit code; ``--debug`` shows the
traceback. Heavy imports (torch, transformers) happen inside commands, so ``genrel criteria check`` is
instant.
"""

from __future__ import annotations

import logging
import sys

import typer

from genrel.cli import criteria_cmd, data_cmd, grammar_cmd
from genrel.cli import prompt_cmd
from genrel.cli import teacher_cmd
from genrel.cli import sft_cmd
from genrel.cli import rl_cmd
from genrel.cli import score_cmd
from genrel.cli import scoring_cmd
from genrel.cli import plot_cmd
from genrel.cli import eval_cmd
from genrel.cli import distill_cmd
from genrel.cli import serve_cmd
from genrel.cli import demo_cmd
from genrel.cli.common import state

app = typer.Typer(
    name="genrel",
    help="Train and serve generative relevance models (GRPO + Stepwise Advantage Masking).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(criteria_cmd.app, name="criteria")
app.add_typer(data_cmd.app, name="data")
grammar_cmd.register(app)
prompt_cmd.register(app)
teacher_cmd.register(app)
sft_cmd.register(app)
rl_cmd.register(app)
score_cmd.register(app)
scoring_cmd.register(app)
plot_cmd.register(app)
eval_cmd.register(app)
distill_cmd.register(app)
serve_cmd.register(app)
demo_cmd.register(app)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    state.debug = debug
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    from genrel.errors import GenrelError

    try:
        app(standalone_mode=False)
    except GenrelError as exc:
        if state.debug:
            raise
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted; outputs written so far are kept", fg="yellow", err=True)
        sys.exit(130)
    except Exception as exc:  # click's usage errors and anything unexpected
        if isinstance(exc, (typer.Exit, *_click_types("Exit"))):
            sys.exit(exc.exit_code)
        if isinstance(exc, (typer.Abort, *_click_types("Abort"))):
            sys.exit(1)
        if isinstance(exc, _click_types("ClickException")):
            exc.show()
            sys.exit(exc.exit_code)
        if state.debug:
            raise
        typer.secho(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", fg="red", err=True)
        sys.exit(70)


def _click_types(name: str) -> tuple[type, ...]:
    """``name`` from click and from the copy of click that newer typer releases vendor as ``typer._click``."""
    import importlib

    found = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)
