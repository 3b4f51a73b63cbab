"""The unit every stage works on: one query–document pair, optionally judged."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Pair(BaseModel):
    """A query–document pair. ``label`` is a label *name* of the criteria (already mapped from ids or
    numeric grades by the reader); ``verdicts`` are optional per-step gold verdicts (step id → verdict),
    which override the criteria's ``expect``. ``source`` is ``file:line`` for error messages."""

    model_config = ConfigDict(extra="forbid")

    row_id: str = Field(description="Stable id of the row: the data's own id column, else its line number.")
    query: str
    text: str
    title: str | None = None
    fields: dict[str, str] = Field(default_factory=dict, description="Extra document fields (brand, price…).")
    qid: str | None = None
    docid: str | None = None
    label: str | None = None
    verdicts: dict[str, str] | None = None
    source: str | None = None

    @property
    def query_key(self) -> str:
        """Grouping key for per-query metrics and query-disjoint splits."""
        return self.qid if self.qid is not None else self.query
