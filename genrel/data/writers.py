"""Write pairs as JSON lines that :func:`genrel.data.load_pairs` reads back unchanged (default mapping)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from genrel.data.pair import Pair


def pair_record(pair: Pair) -> dict:
    """The JSON object for a pair: the reader's default column names, empty parts left out."""
    record = {
        "id": pair.row_id,
        "qid": pair.qid,
        "docid": pair.docid,
        "query": pair.query,
        "title": pair.title,
        "text": pair.text,
        "fields": pair.fields or None,
        "label": pair.label,
        "verdicts": pair.verdicts or None,
    }
    return {k: v for k, v in record.items() if v is not None}


def write_pairs_jsonl(pairs: Iterable[Pair], path: str | Path) -> Path:
    """Write one JSON object per line (UTF-8, non-ASCII kept as is); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for pair in pairs:
            f.write(json.dumps(pair_record(pair), ensure_ascii=False) + "\n")
    return path
