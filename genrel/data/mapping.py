"""Which column of a data file holds which part of a :class:`~genrel.data.pair.Pair`.

A :class:`ColumnMapping` names columns explicitly or leaves a field to detection; :meth:`ColumnMapping.resolve`
turns it into concrete column names for one file's header. Detection is by exact name, ignoring case,
in the order listed in ``CANDIDATES``. This module knows column names only, not rows or labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from genrel.errors import DataError

# Detected names per field, first match wins (case-insensitive). product_title is the text of
# product-search data that has no text column (Home Depot); it is then not used as the title too.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "query": ("query", "search_term", "query_text"),
    "text": ("text", "passage", "document", "contents", "body", "product_title"),
    "title": ("title", "product_title"),
    "label": ("label", "relevance", "grade"),
    "qid": ("qid", "query_id"),
    "docid": ("docid", "doc_id", "pid", "product_id", "product_uid"),
    "id": ("id", "row_id"),
    "verdicts": ("verdicts",),
}
# Column names of a headerless CSV/TSV, by its number of columns: MS MARCO's top1000 layout
# (qid, pid, query, passage), with a label after it, and plain query/text(/label) files. Other widths
# get column1..columnN, to be named with --map.
HEADERLESS_LAYOUTS: dict[int, tuple[str, ...]] = {
    2: ("query", "text"),
    3: ("query", "text", "label"),
    4: ("qid", "docid", "query", "text"),
    5: ("qid", "docid", "query", "text", "label"),
}
FIELDS_COLUMN = "fields"  # a column holding a dict of extra fields (what write_pairs_jsonl writes)
ALL_OTHER_COLUMNS = "*"


class ColumnMapping(BaseModel):
    """Column names for each part of a pair. ``None`` = detect from common names; ``""`` = do not use
    that part even if a column with a common name exists (optional parts only)."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(default=None, description="Query column (detected: query, search_term).")
    text: str | None = Field(
        default=None, description="Document text column (detected: text, passage, document, product_title)."
    )
    title: str | None = Field(default=None, description="Document title column (detected: title, product_title).")
    label: str | None = Field(default=None, description="Gold label column (detected: label, relevance, grade).")
    qid: str | None = Field(default=None, description="Query id column (detected: qid, query_id).")
    docid: str | None = Field(default=None, description="Document id column (detected: docid, doc_id, product_uid).")
    id: str | None = Field(default=None, description="Row id column (detected: id); else the line number.")
    verdicts: str | None = Field(
        default=None, description="Column holding per-step gold verdicts as a dict (detected: verdicts)."
    )
    verdict_prefix: str = Field(
        default="verdict.", description="Columns named <prefix><step id> hold per-step gold verdicts."
    )
    header: bool | None = Field(
        default=None,
        description="Whether a CSV/TSV file's first line names its columns; None = detect (a first line "
        "naming no known column is data). Headerless columns are named by HEADERLESS_LAYOUTS.",
    )
    fields: list[str] = Field(
        default_factory=list,
        description="Extra columns copied into Pair.fields; '*' = every column not used otherwise. "
        "A column named 'fields' holding a dict is always merged.",
    )

    def resolve(self, columns: list[str], where: str) -> ResolvedColumns:
        """Concrete columns for a file with these ``columns``; a missing required or named column is a
        :class:`DataError` at ``where`` (the file)."""
        lower = {}
        for col in columns:
            lower.setdefault(col.lower(), col)
        parts = ("query", "text", "title", "label", "qid", "docid", "id", "verdicts")
        # Named columns first, so detection never hands a named column to another part.
        chosen = {p: self._named_column(p, columns, where) for p in parts}
        for part in parts:
            if getattr(self, part) is None:
                chosen[part] = self._detected_column(part, lower, {c for c in chosen.values() if c})
        for part in ("query", "text"):
            if chosen[part] is None:
                raise DataError(
                    f"no {part} column found (columns: {', '.join(columns) or 'none'})",
                    where=where,
                    hint=f"name one with --map {part}=COLUMN",
                )
        used = {c for c in chosen.values() if c}
        prefix = self.verdict_prefix
        verdict_columns = {c[len(prefix) :]: c for c in columns if prefix and c.startswith(prefix)}
        used |= set(verdict_columns.values())
        fields_dict = lower.get(FIELDS_COLUMN)
        if fields_dict:
            used.add(fields_dict)
        extra: list[str] = []
        for name in self.fields:
            if name == ALL_OTHER_COLUMNS:
                extra += [c for c in columns if c not in used and c not in extra]
            elif name not in columns:
                raise DataError(f"field column '{name}' not found (columns: {', '.join(columns)})", where=where)
            elif name not in extra:
                extra.append(name)
        return ResolvedColumns(**chosen, verdict_columns=verdict_columns, fields=extra, fields_dict=fields_dict)

    def _named_column(self, part: str, columns: list[str], where: str) -> str | None:
        named = getattr(self, part)
        if named == "" and part in ("query", "text"):
            raise DataError(f"the {part} column cannot be switched off", where=where)
        if named and named not in columns:
            raise DataError(f"column '{named}' for {part} not found (columns: {', '.join(columns)})", where=where)
        return named or None

    @staticmethod
    def _detected_column(part: str, lower: dict[str, str], taken: set[str]) -> str | None:
        for name in CANDIDATES[part]:
            col = lower.get(name)
            if col is not None and col not in taken:
                return col
        return None


def names_a_column(cells: list[str], mapping: ColumnMapping | None = None) -> bool:
    """Whether a first line looks like a header: one of its cells is a known column name (any case),
    a column the mapping names, or a ``verdict.`` column."""
    known = {n for names in CANDIDATES.values() for n in names} | {FIELDS_COLUMN}
    named: set[str] = set()
    if mapping is not None:
        parts = ("query", "text", "title", "label", "qid", "docid", "id", "verdicts")
        named = {getattr(mapping, p) for p in parts if getattr(mapping, p)} | set(mapping.fields)
    prefix = mapping.verdict_prefix if mapping is not None else "verdict."
    return any(c.strip().lower() in known or c.strip() in named or c.startswith(prefix) for c in cells)


def headerless_columns(width: int) -> list[str]:
    return list(HEADERLESS_LAYOUTS.get(width) or (f"column{i}" for i in range(1, width + 1)))


@dataclass(frozen=True)
class ResolvedColumns:
    """The columns of one file: a column name per part, or None when the file has none."""

    query: str
    text: str
    title: str | None = None
    label: str | None = None
    qid: str | None = None
    docid: str | None = None
    id: str | None = None
    verdicts: str | None = None
    verdict_columns: dict[str, str] = field(default_factory=dict)  # step id → column
    fields: list[str] = field(default_factory=list)
    fields_dict: str | None = None


def mapping_from_pairs(items: list[str]) -> ColumnMapping:
    """Build a mapping from CLI ``field=column`` items; ``fields=a,b`` lists extra columns."""
    from genrel.config import validate_model

    data: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise DataError(f"'{item}' must look like field=column", where="--map")
        key, value = (s.strip() for s in item.split("=", 1))
        data[key] = [v.strip() for v in value.split(",") if v.strip()] if key == "fields" else value
    return validate_model(ColumnMapping, data, "--map")
