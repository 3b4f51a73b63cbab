"""``load_pairs(path)``: pairs from any data source a team has, chosen by what ``path`` is.

- a table file (``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``; a headerless TSV such as MS MARCO's is
  detected) or a Hugging Face ``datasets`` folder (``save_to_disk``): :mod:`genrel.data.readers`;
- a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``; split ``test`` unless it
  has only one), or one of its qrels files (``scifact/qrels/dev.tsv``): :mod:`genrel.data.trec`;
- a source file (``.yaml``/``.yml``, a :class:`TrecSource`) naming TREC-style parts: qrels and/or a run
  file of candidates to rerank, with the documents and queries (or a BEIR folder) they refer to.

Every stage that reads pairs calls this, so each accepts all of them. Paths in a source file are
relative to the file's folder.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genrel.criteria import Criteria, load_criteria
from genrel.data.mapping import ColumnMapping
from genrel.data.readers import load_table_pairs
from genrel.data.rows import LoadResult, OnError
from genrel.data.trec import load_trec
from genrel.errors import DataError

SOURCE_SUFFIXES = (".yaml", ".yml")
BEIR_SPLIT = "test"


class TrecSource(BaseModel):
    """TREC-style data in parts. Give ``docs`` and ``queries`` (TSV or JSON lines), or ``beir`` (a BEIR
    folder, whose ``qrels/<split>.tsv`` is used unless ``qrels`` is given); then ``qrels``, ``run`` or both."""

    model_config = ConfigDict(extra="forbid")

    docs: Path | None = Field(None, description="Documents: id<TAB>text TSV (MS MARCO collection) or JSON lines.")
    queries: Path | None = Field(None, description="Queries: id<TAB>text TSV or JSON lines.")
    qrels: Path | None = Field(None, description="Judgments: qid [iteration] docid grade.")
    run: Path | None = Field(None, description="Candidates to rerank: qid Q0 docid rank score tag.")
    depth: int | None = Field(None, ge=1, description="Keep each query's best `depth` run candidates.")
    beir: Path | None = Field(None, description="A BEIR folder, in place of docs and queries.")
    split: str = Field(BEIR_SPLIT, description="The BEIR qrels split (qrels/<split>.tsv).")

    @model_validator(mode="after")
    def _complete(self) -> TrecSource:
        if self.beir is None and (self.docs is None or self.queries is None):
            raise ValueError("give docs and queries, or a beir folder")
        if self.beir is None and self.qrels is None and self.run is None:
            raise ValueError("give qrels, a run, or both")
        return self

    def relative_to(self, folder: Path) -> TrecSource:
        """Paths resolved against ``folder`` (a source file's folder)."""
        parts = ("docs", "queries", "qrels", "run", "beir")
        return self.model_copy(update={p: folder / getattr(self, p) for p in parts if getattr(self, p) is not None})


def load_pairs(
    path: str | Path | TrecSource,
    criteria: Criteria | str,
    mapping: ColumnMapping | None = None,
    on_error: OnError = "fail",
    require_label: bool = True,
) -> LoadResult:
    """Every pair of a data source (see the module docstring). Bad rows raise :class:`DataError` naming
    the first one (``on_error="fail"``) or are dropped and listed in ``.problems`` (``"skip"``).
    ``mapping`` applies to tables. With ``require_label``, a table row without a label is a problem and
    a run's candidates that the qrels do not judge are left out; without it they load unlabelled."""
    criteria = load_criteria(criteria)
    trec = {"on_error": on_error, "judged_only": require_label}
    if isinstance(path, TrecSource):
        return load_trec_source(path, criteria, **trec)
    path = Path(path)
    if path.is_dir() and is_beir(path):
        return load_trec_source(TrecSource(beir=path), criteria, **trec)
    if path.is_file() and path.parent.name == "qrels" and is_beir(path.parent.parent):
        return load_trec_source(TrecSource(beir=path.parent.parent, qrels=path), criteria, **trec)
    if path.suffix.lower() in SOURCE_SUFFIXES:
        return load_trec_source(read_source_file(path), criteria, **trec)
    if path.is_file() and (path.suffix.lower() in (".run", ".trec", ".qrels") or _looks_like_run(path)):
        raise DataError(
            "a TREC run or qrels file needs the documents and queries it refers to",
            where=str(path),
            hint="write a source file (docs:, queries:, run:, qrels:; docs/data-formats.md) and pass it instead, "
            "or use `genrel score --run … --docs … --queries …`",
        )
    return load_table_pairs(path, criteria, mapping, on_error=on_error, require_label=require_label)


def load_trec_source(
    source: TrecSource, criteria: Criteria, on_error: OnError = "fail", judged_only: bool = False
) -> LoadResult:
    """Pairs of a :class:`TrecSource`: its run's candidates (labelled where judged), else its qrels."""
    docs, queries, qrels = source.docs, source.queries, source.qrels
    if source.beir is not None:
        docs = docs or _one_of(source.beir, "corpus")
        queries = queries or _one_of(source.beir, "queries")
        if qrels is None:
            try:
                qrels = _beir_qrels(source.beir, source.split)
            except DataError:
                if source.run is None:
                    raise  # with a run, judgments are optional
    return load_trec(qrels, docs, queries, criteria, on_error, run_path=source.run, depth=source.depth,
                     judged_only=judged_only)


def read_source_file(path: Path) -> TrecSource:
    from genrel.config import read_yaml_mapping, validate_model

    source = validate_model(TrecSource, read_yaml_mapping(path), str(path))
    return source.relative_to(path.parent)


def is_beir(path: Path) -> bool:
    return any((path / f).is_file() for f in ("corpus.jsonl", "corpus.jsonl.gz"))


def _one_of(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"no {stem}.jsonl in this BEIR folder", where=str(folder))


def _beir_qrels(folder: Path, split: str) -> Path:
    qrels_dir = folder / "qrels"
    found = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if (qrels_dir / f"{split}.tsv").is_file():
        return qrels_dir / f"{split}.tsv"
    if split == BEIR_SPLIT and len(found) == 1:
        return found[0]
    names = ", ".join(p.stem for p in found) or "none"
    raise DataError(f"no qrels/{split}.tsv (splits: {names})", where=str(folder),
                    hint="point at one, e.g. --data FOLDER/qrels/dev.tsv, or set split: in a source file")


def _looks_like_run(path: Path) -> bool:
    """The first line is ``qid Q0 docid rank score tag``."""
    from genrel.data.readers import open_binary

    try:
        with open_binary(path) as f:
            first = f.readline(4096).decode("utf-8", "replace").split()
    except OSError:
        return False
    return len(first) == 6 and first[1] == "Q0"
