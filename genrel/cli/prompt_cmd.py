"""``genrel prompt``: print the chat messages a model sees for one pair, typed in or read from a data file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from genrel.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("prompt")(prompt)


def prompt(
    criteria: str = typer.Option(..., "--criteria", "-c", help="Criteria preset name or YAML path."),
    query: str | None = typer.Option(None, "--query", "-q", help="The search query."),
    text: str | None = typer.Option(None, "--text", "-t", help="The document text."),
    title: str | None = typer.Option(None, "--title", help="The document title."),
    data: Path | None = typer.Option(None, "--data", help="Read the pair from this data file instead."),
    row: int = typer.Option(1, "--row", min=1, help="With --data: the N-th pair of the file (1-based)."),
    mapping: list[str] = typer.Option(None, "--map", "-m", help="With --data: field=column. Repeatable."),
    max_document_chars: int | None = typer.Option(None, "--max-document-chars", min=1, help="Cut the text."),
    max_document_tokens: int | None = typer.Option(
        None, "--max-document-tokens", min=1, help="Cut the text to this many tokens of --tokenizer."
    ),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Hugging Face tokenizer id or folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the messages as one JSON list."),
) -> None:
    """Render the system and user messages for a pair (--query/--text, or --data FILE --row N)."""
    from genrel.criteria import load_criteria
    from genrel.errors import ConfigError
    from genrel.prompt import render_messages

    crit = load_criteria(criteria)
    pair = _pair(crit, query, text, title, data, row, mapping)
    if max_document_tokens is not None and tokenizer is None:
        raise ConfigError("--max-document-tokens needs --tokenizer", where="prompt")
    tok = _load_tokenizer(tokenizer) if tokenizer else None
    messages = render_messages(
        crit, pair, tokenizer=tok, max_document_tokens=max_document_tokens, max_document_chars=max_document_chars
    )
    if as_json:
        console.print(json.dumps(messages, ensure_ascii=False, indent=2), markup=False, highlight=False)
        return
    for message in messages:
        console.rule(message["role"])
        console.print(message["content"], markup=False, highlight=False)


def _pair(crit, query, text, title, data, row, mapping):
    from genrel.data import Pair, load_pairs, mapping_from_pairs
    from genrel.errors import ConfigError, DataError

    if data is None:
        if not query or not text:
            raise ConfigError("give --query and --text, or --data FILE [--row N]", where="prompt")
        return Pair(row_id="1", query=query, text=text, title=title)
    if query or text or title:
        raise ConfigError("--data cannot be combined with --query, --text or --title", where="prompt")
    pairs = load_pairs(data, crit, mapping_from_pairs(mapping or []), on_error="skip", require_label=False).pairs
    if row > len(pairs):
        raise DataError(f"--row {row} is past the last of its {len(pairs)} readable pairs", where=str(data))
    return pairs[row - 1]


def _load_tokenizer(name: str):
    from genrel.errors import MissingExtraError, ModelError

    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise MissingExtraError("transformers", "train") from None
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as exc:
        raise ModelError(f"cannot load tokenizer: {exc}", where=name) from None
