"""Read TREC-style data: qrels and/or a run file, plus the documents and queries they point to.

qrels lines are ``qid iteration docid grade`` or ``qid docid grade`` (whitespace-separated; BEIR's
``query-id corpus-id score`` header line is skipped). A run file (``qid Q0 docid rank score tag``, what
a first-stage retriever writes) is a candidate set: with a run, the pairs are its candidates (the best
``depth`` per query by score), labelled from the qrels when these judge them and unlabelled otherwise.
Documents and queries are TSV
(``id<TAB>text``; with three or more columns the last is the text and the one before it the title,
as in MS MARCO's ``docid url title body``) or JSON lines (``{"id"|"_id"|"docid", "text"|"contents",
"title"}``, queries ``{"id"|"_id"|"qid", "query"|"text"}``). Only documents named in the qrels are kept,
so a full collection streams through. A pair's ``row_id`` and ``source`` are its qrels line (its run
line when a run gives the candidates).
"""

from __future__ import annotations

import json
from pathlib import Path

from genrel.criteria import Criteria, load_criteria
from genrel.data.pair import Pair
from genrel.data.readers import open_binary
from genrel.data.rows import LoadResult, OnError, RowProblem, as_text, finish, label_name
from genrel.errors import DataError

DOC_KEYS = {"id": ("docid", "doc_id", "_id", "id", "pid"), "text": ("text", "contents", "body", "passage")}
QUERY_KEYS = {"id": ("qid", "query_id", "_id", "id"), "text": ("query", "text")}


def load_trec(
    qrels_path: str | Path | None,
    docs_path: str | Path,
    queries_path: str | Path,
    criteria: Criteria | str,
    on_error: OnError = "fail",
    *,
    run_path: str | Path | None = None,
    depth: int | None = None,
    judged_only: bool = False,
) -> LoadResult:
    """Join judgments (or a run's candidates) with their query and document texts into pairs;
    problems as in :func:`~genrel.data.readers.load_table_pairs`. ``judged_only`` leaves out the run's
    candidates that the qrels do not judge (for stages that learn from or measure labels)."""
    criteria = load_criteria(criteria)
    result = LoadResult()
    if qrels_path is None and run_path is None:
        raise DataError("give qrels, a run file, or both", where=str(docs_path))
    judged = _read_qrels(Path(qrels_path), criteria, result.problems) if qrels_path is not None else []
    if run_path is not None:
        labels = {(qid, docid): label for _, qid, docid, label in judged}
        rows = [(source, qid, docid, labels.get((qid, docid)))
                for source, qid, docid in read_run(Path(run_path), result.problems, depth)
                if not judged_only or (qid, docid) in labels]
    else:
        rows = judged
    queries = _read_texts(Path(queries_path), {r[1] for r in rows}, QUERY_KEYS, result.problems)
    docs = _read_texts(Path(docs_path), {r[2] for r in rows}, DOC_KEYS, result.problems)
    for source, qid, docid, label in rows:
        query, doc = queries.get(qid), docs.get(docid)
        if query is None:
            result.problems.append(RowProblem(source, "query", f"no query with id '{qid}' in {queries_path}"))
        if doc is None:
            result.problems.append(RowProblem(source, "text", f"no document with id '{docid}' in {docs_path}"))
        if query is None or doc is None:
            continue
        result.pairs.append(
            Pair(
                row_id=source.rsplit(":", 1)[1],
                query=query[1],
                text=doc[1],
                title=doc[0],
                qid=qid,
                docid=docid,
                label=label,
                source=source,
            )
        )
    return finish(result, on_error)


def _read_qrels(path: Path, criteria: Criteria, problems: list[RowProblem]) -> list[tuple[str, str, str, str]]:
    """(source, qid, docid, label name) per judgment line."""
    judgments = []
    for line, text in _text_lines(path, problems):
        parts = text.split()
        source = f"{path}:{line}"
        if len(parts) not in (3, 4):
            problems.append(RowProblem(
                source, "row", f"expected 'qid iteration docid grade' or 'qid docid grade', got {len(parts)} fields"
            ))
            continue
        qid, docid, grade = (parts[0], parts[2], parts[3]) if len(parts) == 4 else parts
        try:
            judgments.append((source, qid, docid, label_name(grade, criteria)))
        except ValueError as exc:
            if line == 1 and not judgments:  # a header line (BEIR: query-id corpus-id score)
                continue
            problems.append(RowProblem(source, "label", str(exc)))
    return judgments


def read_run(path: Path, problems: list[RowProblem], depth: int | None = None) -> list[tuple[str, str, str]]:
    """(source, qid, docid) of a TREC run's candidates: per query (in order of first appearance) best
    score first, the first ``depth`` kept; a docid listed twice for a query is kept once."""
    by_query: dict[str, list[tuple[float, int, str, str]]] = {}
    for line, text in _text_lines(path, problems):
        parts = text.split()
        source = f"{path}:{line}"
        if len(parts) != 6:
            problems.append(RowProblem(source, "row", f"expected 'qid Q0 docid rank score tag', got {len(parts)} fields"))
            continue
        try:
            score = float(parts[4])
        except ValueError:
            problems.append(RowProblem(source, "score", f"not a number: '{parts[4]}'"))
            continue
        by_query.setdefault(parts[0], []).append((-score, line, parts[2], source))
    out = []
    for qid, candidates in by_query.items():
        seen: set[str] = set()
        for _, _, docid, source in sorted(candidates):
            if docid in seen:
                continue
            seen.add(docid)
            if depth is not None and len(seen) > depth:
                break
            out.append((source, qid, docid))
    return out


def _read_texts(
    path: Path, wanted: set[str], keys: dict[str, tuple[str, ...]], problems: list[RowProblem]
) -> dict[str, tuple[str | None, str]]:
    """id → (title, text) for the wanted ids; empty texts are problems at their own line."""
    is_json = any(s.lower() in (".jsonl", ".json") for s in path.suffixes)
    found: dict[str, tuple[str | None, str]] = {}
    for line, text in _text_lines(path, problems):
        source = f"{path}:{line}"
        row = _json_row(text, keys) if is_json else _tsv_row(text)
        if isinstance(row, str):
            problems.append(RowProblem(source, "row", row))
            continue
        item_id, title, body = row
        if item_id not in wanted or item_id in found:
            continue
        if body is None or not body.strip():
            problems.append(RowProblem(source, "text", f"empty text for id '{item_id}'"))
            continue
        found[item_id] = (title, body)
    return found


def _tsv_row(text: str) -> tuple[str, str | None, str | None] | str:
    parts = text.split("\t")
    if len(parts) < 2:
        return "expected id<TAB>text"
    title = parts[-2] if len(parts) >= 3 and parts[-2].strip() else None
    return parts[0].strip(), title, parts[-1]


def _json_row(text: str, keys: dict[str, tuple[str, ...]]) -> tuple[str, str | None, str | None] | str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(value, dict):
        return "expected a JSON object"
    item_id = next((as_text(value[k]) for k in keys["id"] if k in value), None)
    if item_id is None:
        return f"no id key (one of: {', '.join(keys['id'])})"
    body = next((as_text(value[k]) for k in keys["text"] if k in value), None)
    return item_id, as_text(value.get("title")), body


def _text_lines(path: Path, problems: list[RowProblem]):
    """(line number, text) for each non-blank line; lines that are not UTF-8 become problems."""
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    with open_binary(path) as f:
        for line, raw in enumerate(f, start=1):
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                problems.append(RowProblem(f"{path}:{line}", "row", "not UTF-8 text"))
                continue
            if text.strip():
                yield line, text
