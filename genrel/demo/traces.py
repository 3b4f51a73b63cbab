"""Grounded reasoning traces for the catalogue world: what a teacher's chain of thought would say, written
from the facts the world drew, for the demo's warm-up SFT.

Verdict-only traces (:func:`genrel.train.teacher.gold_completion`) teach the format but not the criteria.
The world knows each query's wanted type and stated specifications and each product's type, fields and
complements, so every step can say why its verdict holds: ``need`` names the wanted type by its canonical
name (whatever synonym or typo the query used) and the stated specs; ``type``, ``specs`` and
``complement`` compare the query's side with the product's. Verdicts are the world's gold verdicts, and
a step the world leaves without one (``specs`` when the type differs) gets the verdict the teacher's
rule gives it (:func:`genrel.train.teacher.gold_verdict`), so a grounded and a verdict-only trace of a
pair never disagree on a verdict. The wording is fixed: a 135M model learns one phrasing faster.

Lines are :func:`genrel.train.teacher.trace_record`'s, model ``"world"``, one per row of
:func:`genrel.demo.world.write_world` for the same config, so SFT reads them like a teacher's.

Only the reasoning form is written: the grammar reads steps before the label, and label-first
completions are a distillation target (:mod:`genrel.distill.label_first`), not a trace format.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from genrel.criteria import Criteria
from genrel.data import load_pairs
from genrel.data.resumable import replace_rows
from genrel.demo.world import Product, Query, WorldConfig, catalogue_row, judge, query_products
from genrel.grammar import render
from genrel.train.teacher import gold_verdict, trace_record

TRACE_MODEL = "world"


def grounded_completion(query: Query, product: Product, criteria: Criteria) -> str:
    """The completion that judges ``product`` for ``query`` step by step from the world's facts, in the
    steps of the ``esci`` criteria the world is labelled by (other criteria: ValueError from render)."""
    label, verdicts = judge(query, product)
    verdicts = {s.id: gold_verdict(criteria, s, label, verdicts) for s in criteria.checked_steps}
    texts = {
        "need": f"Wants {_noun(query.type.name)}; {_specs(query.specs)}.",
        "type": _type_text(query, product),
        "specs": _specs_text(query, product),
        "complement": _complement_text(query, product),
    }
    return render(criteria, texts, verdicts, label)


def write_grounded_traces(cfg: WorldConfig, criteria: Criteria, path: str | Path) -> Path:
    """Write one trace line per row of the world ``cfg`` describes, as the whole of ``path``. The pairs
    are read back by :func:`genrel.data.load_pairs` from the rows :func:`~genrel.demo.world.write_world`
    would write, so row ids (line numbers) and every field are those SFT, evaluation and dedup see for
    the world's data file."""
    draws = list(query_products(cfg))
    with tempfile.TemporaryDirectory() as tmp:
        rows = replace_rows(Path(tmp) / "world.jsonl", (catalogue_row(q, p) for q, p in draws))
        pairs = load_pairs(rows, criteria).pairs
    assert [(p.qid, p.docid) for p in pairs] == [(q.qid, d.docid) for q, d in draws]
    return replace_rows(path, (
        trace_record(criteria, pair, 0, grounded_completion(q, d, criteria), TRACE_MODEL)
        for pair, (q, d) in zip(pairs, draws)
    ))


def _type_text(query: Query, product: Product) -> str:
    if product.type is query.type:
        return f"It is {_noun(product.type.name)}, as wanted."
    return f"It is {_noun(product.type.name)}, not {_noun(query.type.name)}."


def _specs_text(query: Query, product: Product) -> str:
    if product.type is not query.type:
        return "Wrong type, so the specs are not met."
    fields = product.fields
    parts = [
        f"{key} {wanted} matches" if fields[key] == wanted else f"{key} is {fields[key]}, not {wanted}"
        for key, wanted in query.specs.items()
    ]
    return _capital("; ".join(parts)) + "."


def _complement_text(query: Query, product: Product) -> str:
    name = product.type.name
    if product.type is query.type:
        return "It is the wanted product itself."
    used = "used" if name in query.type.complements else "not used"
    return f"{_capital(_noun(name))} {_be(name)} {used} with {_noun(query.type.name)}."


def _specs(specs: dict[str, str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in specs.items())


def _noun(name: str) -> str:
    """The type name with the article English wants: the world's plural names ("insoles") take none."""
    if name.endswith("s"):
        return name
    return ("an " if name[0] in "aeio" else "a ") + name


def _be(name: str) -> str:
    return "are" if name.endswith("s") else "is"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
