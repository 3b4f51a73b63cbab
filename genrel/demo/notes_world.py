"""A seeded social-notes world in the paper's shape: a provisional grade from general matching, then a
grade recalibrated by explicit business rules, then the final label (``notes-rules`` criteria).

Queries name a topic and often a place and a season ("ramen tokyo winter"); a note's title states its
coverage of one topic, its place and its season ("guide: ramen in rome (winter)"). General matching
gives the **provisional** grade: the query's topic covered by a guide → full, by tips → partial, only
mentioned in a diary → low; another topic of the same category → weak; else unrelated. The **business
rules** then cap it (another place → at most weak; no place where the query names one, or another season
→ at most partial), which changes the grade of about a quarter of the pairs. Every row carries both gold
verdicts, so the step verifier can tell a provisional grade the rules corrected from a wrong one.

For the learning benchmark (``bench/learning.py``) next to the catalogue world (:mod:`genrel.demo.world`);
synthetic, like it: the repository ships only what this module generates.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from genrel.data.resumable import replace_rows
from genrel.demo.world import distinct_candidates, world_row

CRITERIA = "notes-rules"
CATEGORIES: dict[str, tuple[str, ...]] = {
    "food": ("ramen", "sushi", "tacos", "dumplings"),
    "travel": ("hiking", "beaches", "museums", "camping"),
    "beauty": ("lipstick", "skincare", "perfume", "nails"),
    "home": ("plants", "candles", "rugs", "lamps"),
}
PLACES = ("tokyo", "paris", "rome", "lima", "oslo", "cairo")
SEASONS = ("spring", "summer", "autumn", "winter")
COVERAGE = {"guide": "full", "tips": "partial", "diary": "low"}  # title word → provisional grade of the topic
GRADES = ("unrelated", "weak", "low", "partial", "full")  # worst → best, the criteria's scale
_CATEGORY = {topic: cat for cat, topics in CATEGORIES.items() for topic in topics}


class NotesWorldConfig(BaseModel):
    """Knobs of the generated world: shares of candidate kinds per query, and how often a query names a
    place or a season and a same-topic note keeps them."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    queries: int = Field(default=60, ge=1)
    candidates_per_query: int = Field(default=8, ge=1)
    candidate_mix: dict[str, float] = Field(
        default_factory=lambda: {"same_topic": 0.6, "same_category": 0.2, "other": 0.2}
    )
    coverage_mix: dict[str, float] = Field(default_factory=lambda: {"guide": 0.45, "tips": 0.35, "diary": 0.2})
    query_place_rate: float = Field(default=0.7, ge=0, le=1)
    query_season_rate: float = Field(default=0.5, ge=0, le=1)
    same_place_rate: float = Field(default=0.4, ge=0, le=1, description="Same-topic notes at the query's place.")
    no_place_rate: float = Field(default=0.2, ge=0, le=1, description="Same-topic notes that name no place.")
    same_season_rate: float = Field(default=0.5, ge=0, le=1, description="Same-topic notes in the query's season.")


@dataclass(frozen=True)
class Query:
    qid: str
    topic: str
    place: str | None
    season: str | None

    @property
    def text(self) -> str:
        return " ".join(w for w in (self.topic, self.place, self.season) if w)


@dataclass(frozen=True)
class Note:
    docid: str
    topic: str
    coverage: str  # a key of COVERAGE
    place: str | None
    season: str | None

    @property
    def title(self) -> str:
        where = f" in {self.place}" if self.place else ""
        return f"{self.coverage}: {self.topic}{where} ({self.season})"

    @property
    def text(self) -> str:
        return f"A {_CATEGORY[self.topic]} note. {self.title}."


def provisional_grade(query: Query, note: Note) -> str:
    """General matching only: topic, coverage and category; places and seasons are the rules' job."""
    if note.topic == query.topic:
        return COVERAGE[note.coverage]
    return "weak" if _CATEGORY[note.topic] == _CATEGORY[query.topic] else "unrelated"


def rule_cap(query: Query, note: Note) -> str:
    """The best grade the business rules allow (the criteria's ``rules``, in the same words)."""
    cap = "full"
    if query.place and note.place and note.place != query.place:
        cap = "weak"  # another place
    elif query.place and not note.place:
        cap = "partial"  # missing core qualifier
    if query.season and note.season != query.season:
        cap = min(cap, "partial", key=GRADES.index)  # another season
    return cap


def judge(query: Query, note: Note) -> tuple[str, dict[str, str]]:
    """(label, gold verdicts): the provisional grade, then the rules' cap applied to it."""
    provisional = provisional_grade(query, note)
    label = min(provisional, rule_cap(query, note), key=GRADES.index)
    return label, {"provisional": provisional, "calibrated": label}


def generate(cfg: NotesWorldConfig) -> Iterator[dict]:
    """Yield labelled rows ``{qid, query, docid, title, text, fields, label, verdicts}``."""
    rng = random.Random(cfg.seed)
    kinds, weights = list(cfg.candidate_mix), list(cfg.candidate_mix.values())
    serial = itertools.count()
    for q in range(cfg.queries):
        query = Query(
            f"q{q:04d}",
            rng.choice(sorted(_CATEGORY)),
            rng.choice(PLACES) if rng.random() < cfg.query_place_rate else None,
            rng.choice(SEASONS) if rng.random() < cfg.query_season_rate else None,
        )
        for note in distinct_candidates(
            cfg.candidates_per_query,
            lambda: (rng.choices(kinds, weights)[0], f"n{next(serial):06d}"),
            lambda spec, query=query: _candidate(rng, query, *spec, cfg),
        ):
            yield world_row(query.qid, query.text, note, {"category": _CATEGORY[note.topic]}, *judge(query, note))


def write_world(cfg: NotesWorldConfig, path: str | Path) -> Path:
    return replace_rows(path, generate(cfg))


def _candidate(rng: random.Random, query: Query, kind: str, docid: str, cfg: NotesWorldConfig) -> Note:
    category = _CATEGORY[query.topic]
    if kind == "same_topic":
        topic = query.topic
    elif kind == "same_category":
        topic = rng.choice([t for t in CATEGORIES[category] if t != query.topic])
    else:
        topic = rng.choice([t for t, c in _CATEGORY.items() if c != category])
    place = rng.choice(PLACES)
    if topic == query.topic:
        roll = rng.random()
        if roll < cfg.no_place_rate:
            place = None
        elif query.place and roll < cfg.no_place_rate + cfg.same_place_rate:
            place = query.place
    season = rng.choice(SEASONS)
    if topic == query.topic and query.season and rng.random() < cfg.same_season_rate:
        season = query.season
    coverage = rng.choices(list(cfg.coverage_mix), list(cfg.coverage_mix.values()))[0]
    return Note(docid, topic, coverage, place, season)
