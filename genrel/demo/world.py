"""A seeded e-commerce catalogue world with ESCI-labelled queries, for the demo and the learning benchmark.

Gold labels are decided by the ``esci`` criteria's own steps (product type → specifications →
complement), so every row also carries per-step gold verdicts. Noise (synonyms, typos, attributes the
query leaves out) makes the surface form vary while the label stays decidable from the text. The world
is synthetic: the repository ships only what this module generates.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from genrel.data.resumable import replace_rows

T = TypeVar("T")

COLOURS = ["black", "white", "red", "blue", "green", "grey", "pink", "yellow"]


@dataclass(frozen=True)
class ProductType:
    name: str
    synonyms: tuple[str, ...]
    brands: tuple[str, ...]
    sizes: tuple[str, ...] = ()
    complements: tuple[str, ...] = ()
    blurb: str = ""


TYPES: tuple[ProductType, ...] = (
    ProductType("running shoes", ("sneakers", "trainers"), ("Stride", "Pacer", "Fleet"),
                ("size 38", "size 40", "size 42", "size 44"), ("shoe laces", "insoles"),
                "cushioned sole, breathable mesh upper"),
    ProductType("shoe laces", ("laces",), ("Knotty", "Stride"), ("90 cm", "120 cm"), ("running shoes",),
                "flat polyester laces, pair"),
    ProductType("insoles", ("shoe inserts",), ("Pacer", "Comfy"), ("size 38", "size 42"), ("running shoes",),
                "memory foam, trim to fit"),
    ProductType("phone case", ("phone cover",), ("Armor", "Slimfit"), ("for Nova 12", "for Nova 13", "for Zeta 5"),
                ("screen protector", "phone charger"), "shock-absorbing bumper, raised edges"),
    ProductType("screen protector", ("glass protector",), ("Armor", "ClearView"), ("for Nova 12", "for Zeta 5"),
                ("phone case",), "tempered glass, 9H hardness, pack of two"),
    ProductType("phone charger", ("charging block",), ("Volt", "Amp"), ("20 W", "45 W", "65 W"),
                ("phone case", "usb cable"), "fast charging, foldable plug"),
    ProductType("usb cable", ("charging cable",), ("Volt", "Linky"), ("1 m", "2 m"), ("phone charger",),
                "braided, USB-C to USB-C"),
    ProductType("coffee maker", ("coffee machine", "drip brewer"), ("Brewmaster", "Morning"), ("4 cups", "10 cups", "12 cups"),
                ("coffee filters", "coffee beans"), "programmable timer, keep-warm plate"),
    ProductType("coffee filters", ("paper filters",), ("Morning", "Purely"), ("size 2", "size 4"), ("coffee maker",),
                "unbleached paper, 100 count"),
    ProductType("coffee beans", ("whole beans",), ("Roastery", "Morning"), ("250 g", "1 kg"), ("coffee maker",),
                "medium roast, arabica"),
    ProductType("tent", ("camping tent",), ("Summit", "Trailhead"), ("2 person", "4 person"), ("sleeping bag", "tent stakes"),
                "waterproof fly, aluminium poles"),
    ProductType("tent stakes", ("tent pegs",), ("Trailhead", "Grip"), ("pack of 10", "pack of 20"), ("tent",),
                "steel, hooked top"),
    ProductType("sleeping bag", ("sleep sack",), ("Summit", "Cosy"), ("3 season", "winter"), ("tent",),
                "mummy shape, compression sack"),
    ProductType("desk lamp", ("table lamp", "reading light"), ("Lumo", "Brightly"), ("LED", "halogen"), ("light bulb",),
                "adjustable arm, dimmer"),
    ProductType("light bulb", ("bulb",), ("Lumo", "Glow"), ("E27", "GU10"), ("desk lamp",), "warm white, 800 lumen"),
)
_BY_NAME = {t.name: t for t in TYPES}


class WorldConfig(BaseModel):
    """Knobs of the generated world. ``label_mix`` gives the share of candidates per ESCI label."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    queries: int = Field(default=60, ge=1)
    candidates_per_query: int = Field(default=8, ge=1)
    label_mix: dict[str, float] = Field(
        default_factory=lambda: {"exact": 0.3, "substitute": 0.25, "complement": 0.2, "irrelevant": 0.25}
    )
    synonym_rate: float = 0.3
    typo_rate: float = 0.1
    drop_attribute_rate: float = 0.3


@dataclass
class Product:
    docid: str
    type: ProductType
    brand: str
    colour: str
    size: str

    @property
    def title(self) -> str:
        return " ".join(x for x in (self.brand, self.colour, self.type.name, self.size) if x)

    @property
    def text(self) -> str:
        return f"{self.title}. {self.type.blurb.capitalize()}."

    @property
    def fields(self) -> dict[str, str]:
        return {"brand": self.brand, "colour": self.colour, "size": self.size}


@dataclass
class Query:
    qid: str
    type: ProductType
    specs: dict[str, str] = field(default_factory=dict)
    text: str = ""


def generate(cfg: WorldConfig) -> Iterator[dict]:
    """Yield labelled rows ``{qid, query, docid, title, text, fields, label, verdicts}``."""
    for query, product in query_products(cfg):
        yield catalogue_row(query, product)


def query_products(cfg: WorldConfig) -> Iterator[tuple[Query, Product]]:
    """The world's draws, one (query, candidate) at a time in row order: the facts behind each row of
    :func:`generate`, for whatever else must describe the same rows (grounded traces)."""
    rng = random.Random(cfg.seed)
    labels = list(cfg.label_mix)
    weights = [cfg.label_mix[name] for name in labels]
    serial = itertools.count()
    for q in range(cfg.queries):
        query = _query(rng, f"q{q:04d}", cfg)
        for product in distinct_candidates(
            cfg.candidates_per_query,
            lambda: (rng.choices(labels, weights)[0], f"p{next(serial):06d}"),
            lambda spec, query=query: _candidate(rng, query, *spec),
        ):
            yield query, product


def catalogue_row(query: Query, product: Product) -> dict:
    """The labelled row of one draw of :func:`query_products`."""
    return world_row(query.qid, query.text, product, product.fields, *judge(query, product))


def distinct_candidates(count: int, pick: Callable[[], Any], make: Callable[[Any], T]) -> Iterator[T]:
    """``count`` candidates for one query: ``pick()`` chooses what each should be, ``make(spec)`` draws
    it, up to 5 times while its title repeats an earlier candidate's (the last draw is kept), so a query
    rarely lists the same document twice. Shared by every generated world."""
    titles: set[str] = set()
    for _ in range(count):
        spec = pick()
        for _attempt in range(5):
            item = make(spec)
            if item.title not in titles:
                break
        titles.add(item.title)
        yield item


def world_row(qid: str, query: str, doc: Any, fields: dict, label: str, verdicts: dict[str, str]) -> dict:
    """One labelled row of a generated world, in the columns :func:`genrel.data.load_pairs` reads."""
    return {
        "qid": qid,
        "query": query,
        "docid": doc.docid,
        "title": doc.title,
        "text": doc.text,
        "fields": fields,
        "label": label,
        "verdicts": verdicts,
    }


def judge(query: Query, product: Product) -> tuple[str, dict[str, str]]:
    """The esci criteria's steps applied to the world's facts: type, then specifications, then complement."""
    same_type = product.type is query.type
    specs_met = same_type and all(getattr(product, k) == v for k, v in query.specs.items())
    complement = product.type.name in query.type.complements
    if same_type:
        label = "exact" if specs_met else "substitute"
        verdicts = {"type": "yes", "specs": "yes" if specs_met else "no", "complement": "no"}
    else:
        label = "complement" if complement else "irrelevant"
        verdicts = {"type": "no", "complement": "yes" if complement else "no"}
    return label, verdicts


def write_world(cfg: WorldConfig, path: str | Path) -> Path:
    return replace_rows(path, generate(cfg))


def _query(rng: random.Random, qid: str, cfg: WorldConfig) -> Query:
    ptype = rng.choice(TYPES)
    specs = {"brand": rng.choice(ptype.brands), "colour": rng.choice(COLOURS)}
    if ptype.sizes:
        specs["size"] = rng.choice(ptype.sizes)
    for key in list(specs):
        if len(specs) > 1 and rng.random() < cfg.drop_attribute_rate:
            del specs[key]
    noun = rng.choice(ptype.synonyms) if ptype.synonyms and rng.random() < cfg.synonym_rate else ptype.name
    words = [specs.get("brand", ""), specs.get("colour", ""), noun, specs.get("size", "")]
    text = " ".join(w.lower() for w in words if w)
    if rng.random() < cfg.typo_rate:
        text = _typo(rng, text)
    return Query(qid, ptype, specs, text)


def _candidate(rng: random.Random, query: Query, wanted: str, docid: str) -> Product:
    qt = query.type
    if wanted in ("exact", "substitute"):
        ptype = qt
    elif wanted == "complement" and qt.complements:
        ptype = _BY_NAME[rng.choice(qt.complements)]
    else:
        others = [t for t in TYPES if t is not qt and t.name not in qt.complements]
        ptype = rng.choice(others)
    product = Product(
        docid,
        ptype,
        rng.choice(ptype.brands),
        rng.choice(COLOURS),
        rng.choice(ptype.sizes) if ptype.sizes else "",
    )
    if ptype is qt:
        for key, value in query.specs.items():
            setattr(product, key, value)
        if wanted == "substitute" and query.specs:
            key = rng.choice(sorted(query.specs))
            pool = {"brand": qt.brands, "colour": COLOURS, "size": qt.sizes}[key]
            alternatives = [v for v in pool if v != query.specs[key]]
            if alternatives:
                setattr(product, key, rng.choice(alternatives))
    return product


def _typo(rng: random.Random, text: str) -> str:
    """Swap two adjacent letters inside one word of four letters or more."""
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)
