"""Render the chat messages that ask a model to judge one pair: a system message with the task, the
label scale, the steps, the rules and the output grammar, and a user message with the query and the
document.

The fixed text is a jinja2 template per language (``templates/{system,user}_{en,zh}.j2``); everything
that varies comes from the criteria and the pair, so the same input always gives the same strings. The
format example is written by :func:`genrel.grammar.render`, so the prompt can never teach a grammar the
parser rejects. Chat templates and token ids are the model layer's job, not this one's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

import jinja2

from genrel.criteria import Criteria, load_criteria
from genrel.grammar import LABEL_CLOSE, LABEL_OPEN, VERDICT_KEY
from genrel.grammar import render as render_completion
from genrel.prompt.truncate import truncate_document

EXAMPLE_REASONING = {"en": "your reasoning for this step", "zh": "这一步的分析"}


class PairLike(Protocol):
    """What a prompt reads from a pair (``genrel.data.Pair`` has it)."""

    query: str
    text: str
    title: str | None
    fields: dict[str, str]


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("genrel.prompt", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render_messages(
    criteria: Criteria | str,
    pair: PairLike,
    *,
    tokenizer: Any = None,
    max_document_tokens: int | None = None,
    max_document_chars: int | None = None,
) -> list[dict[str, str]]:
    """``[{"role": "system", …}, {"role": "user", …}]`` for judging ``pair``. The document text is cut
    to ``max_document_chars`` characters and/or ``max_document_tokens`` tokens of ``tokenizer``, with a
    `` […]`` marker when cut; the query, title and fields are never cut."""
    criteria = load_criteria(criteria)
    text = truncate_document(
        pair.text, tokenizer=tokenizer, max_tokens=max_document_tokens, max_chars=max_document_chars
    )
    return [
        {"role": "system", "content": system_prompt(criteria)},
        {"role": "user", "content": user_prompt(criteria, pair, text)},
    ]


def system_prompt(criteria: Criteria) -> str:
    """The system message: task, labels worst → best, steps in order, rules, output grammar + example."""
    template = _environment().get_template(f"system_{criteria.language}.j2")
    return template.render(
        item=criteria.item,
        description=criteria.description,
        labels=criteria.labels,
        label_names=criteria.label_names,
        steps=criteria.steps,
        rules=criteria.rules,
        verdict_key=VERDICT_KEY,
        example=example_completion(criteria),
    ).strip()


def user_prompt(criteria: Criteria, pair: PairLike, text: str | None = None) -> str:
    """The user message: the query, then the document's title, text and extra fields."""
    template = _environment().get_template(f"user_{criteria.language}.j2")
    item = criteria.item
    return template.render(
        query=pair.query.strip(),
        item=item,
        item_heading=item[:1].upper() + item[1:],
        title=(pair.title or "").strip(),
        text=(pair.text if text is None else text).strip(),
        fields=[(name, str(value).strip()) for name, value in (pair.fields or {}).items()],
    ).strip()


EXAMPLE_LABEL = "NAME"


def example_completion(criteria: Criteria) -> str:
    """The format example: a well-formed completion whose label is the placeholder ``NAME``.

    A real label name here is copied by small models (SmolLM2 zero-shot answered the example's label for
    most pairs), so the example's structure comes from :func:`genrel.grammar.render` (the parser reads
    it) and only the label is replaced by the placeholder the format line explains. Verdicts are those
    of the middle label, which the text calls placeholders too."""
    label = criteria.labels[len(criteria.labels) // 2].name
    verdicts = {}
    for step in criteria.checked_steps:
        expected = step.expected(label) or frozenset()
        verdicts[step.id] = next((v for v in step.verdicts if v in expected), step.verdicts[0])
    reasoning = EXAMPLE_REASONING[criteria.language]
    completion = render_completion(criteria, {s.id: reasoning for s in criteria.steps}, verdicts, label)
    head, _, _ = completion.rpartition(f"{LABEL_OPEN}{label}{LABEL_CLOSE}")
    return f"{head}{LABEL_OPEN}{EXAMPLE_LABEL}{LABEL_CLOSE}"
