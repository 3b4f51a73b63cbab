"""Read judged pairs from tables: JSON lines, CSV/TSV and Parquet files, chosen by extension, and
Hugging Face ``datasets`` folders written by ``save_to_disk``.

Every row is reported by ``file:line`` where ``line`` is what an editor shows: the physical line a JSON
line or CSV record starts on (the CSV header is line 1, so the first data row is line 2); for Parquet
and datasets folders, the 1-based row number. A CSV/TSV file without a header line (MS MARCO's TSVs)
is detected, or declared with ``ColumnMapping.header``; its columns are named by
:data:`~genrel.data.mapping.HEADERLESS_LAYOUTS`. ``.gz`` text files are read transparently. Rows are converted one at a time
(:mod:`genrel.data.rows`); JSON lines are parsed in a first pass because their columns are the union of
the keys of all rows.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genrel.criteria import Criteria, load_criteria
from genrel.data.mapping import ColumnMapping, headerless_columns, names_a_column
from genrel.data.rows import LoadResult, OnError, RowConverter, RowProblem, finish
from genrel.errors import DataError, MissingExtraError

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
# A record is a dict of column → value, or (field, message) for a row that could not be read at all.
Record = dict[str, Any] | tuple[str, str]


@dataclass
class Table:
    """A file's columns and its records, each with its line (or row) number."""

    columns: list[str]
    records: Iterator[tuple[int, Record]]


def load_table_pairs(
    path: str | Path,
    criteria: Criteria | str,
    mapping: ColumnMapping | None = None,
    on_error: OnError = "fail",
    require_label: bool = True,
) -> LoadResult:
    """Read every pair of a data file. Bad rows raise :class:`DataError` naming the first one
    (``on_error="fail"``) or are dropped and listed in ``.problems`` (``"skip"``). File-level problems
    (missing file, unknown format, no query or text column) always raise."""
    path = Path(path)
    criteria = load_criteria(criteria)
    mapping = mapping or ColumnMapping()
    table = open_table(path, mapping)
    columns = mapping.resolve(table.columns, str(path))
    if require_label and columns.label is None:
        raise DataError(
            f"no label column found (columns: {', '.join(table.columns)})",
            where=str(path),
            hint="name one with --map label=COLUMN, or load without labels",
        )
    converter = RowConverter(criteria, columns, require_label)
    result = LoadResult()
    for line, record in table.records:
        source = f"{path}:{line}"
        if isinstance(record, tuple):
            result.problems.append(RowProblem(source, *record))
            continue
        converted = converter.convert(record, source, line)
        if isinstance(converted, list):
            result.problems.extend(converted)
        else:
            result.pairs.append(converted)
    return finish(result, on_error)


def data_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataError(
            f"unknown data format '{''.join(path.suffixes) or path.name}'",
            where=str(path),
            hint="use .jsonl, .json (JSON lines), .csv, .tsv, .parquet, a BEIR or datasets folder, or a source .yaml",
        )
    if fmt == "parquet" and path.suffix.lower() == ".gz":
        raise DataError("compressed parquet is not supported", where=str(path))
    return fmt


def open_table(path: Path, mapping: ColumnMapping | None = None) -> Table:
    """The columns and records of a data file, by its extension, or of a datasets folder."""
    if path.is_dir():
        if is_hf_dataset(path):
            return _hf_table(path)
        raise DataError("this folder is neither a BEIR folder (corpus.jsonl) nor a datasets folder (save_to_disk)",
                        where=str(path))
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    fmt = data_format(path)
    if fmt == "jsonl":
        return _jsonl_table(path)
    if fmt == "parquet":
        return _parquet_table(path)
    return _csv_table(path, delimiter="," if fmt == "csv" else "\t", mapping=mapping)


def is_hf_dataset(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` (or a ``DatasetDict``'s, which holds one per split)."""
    return any((path / f).is_file() for f in ("state.json", "dataset_dict.json"))


def _hf_table(path: Path) -> Table:
    try:
        from datasets import Dataset, load_from_disk
    except ImportError:
        raise MissingExtraError("datasets", "train") from None
    try:
        dataset = load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a folder it cannot read
        raise DataError(f"cannot read the datasets folder: {exc}", where=str(path)) from None
    if not isinstance(dataset, Dataset):
        splits = ", ".join(dataset)
        raise DataError(f"this folder holds several splits ({splits})", where=str(path),
                        hint=f"point at one split's folder, e.g. {path / next(iter(dataset))}")
    return Table(list(dataset.column_names), ((i, row) for i, row in enumerate(dataset, start=1)))


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _jsonl_table(path: Path) -> Table:
    records: list[tuple[int, Record]] = []
    keys: dict[str, None] = {}
    with open_binary(path) as f:
        for line, raw in enumerate(f, start=1):
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            record = _json_record(raw)
            if line == 1 and isinstance(record, tuple) and raw.lstrip().startswith(b"["):
                raise DataError(
                    "this is a JSON array; genrel reads JSON lines (one object per line)",
                    where=str(path),
                    hint="convert it, e.g. with: jq -c '.[]' in.json > out.jsonl",
                )
            if isinstance(record, dict):
                keys.update(dict.fromkeys(record))
            records.append((line, record))
    return Table(list(keys), iter(records))


def _json_record(raw: bytes) -> Record:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ("row", f"not UTF-8 text (byte {exc.start})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return ("row", f"invalid JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(value, dict):
        return ("row", f"expected a JSON object, got {type(value).__name__}")
    return value


class _Lines:
    """Decodes a binary file line by line for the csv module, remembering lines that are not UTF-8."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.number = 0
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for raw in self.f:
            self.number += 1
            if self.number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad.add(self.number)
                yield raw.decode("utf-8", errors="replace")


def _csv_table(path: Path, delimiter: str, mapping: ColumnMapping | None = None) -> Table:
    # Long documents exceed the csv module's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    f = open_binary(path)
    lines = _Lines(f)
    # TSV follows the IR convention (MS MARCO, BEIR): no quoting, a quote character is just text.
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    header = next(reader, None)
    if header is None:
        f.close()
        raise DataError("empty file: no header row", where=str(path))
    declared = mapping.header if mapping is not None else None
    has_header = declared if declared is not None else names_a_column(header, mapping)
    if not has_header:
        columns = headerless_columns(len(header))
        log.info("%s: no header line; columns read as %s", path, ", ".join(columns))
        return Table(columns, _csv_records(f, reader, lines, columns, first=(1, header)))
    header = [h.strip() for h in header]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        f.close()
        raise DataError(f"duplicate column(s) in the header: {', '.join(duplicates)}", where=f"{path}:1")
    return Table(header, _csv_records(f, reader, lines, header))


def _csv_records(
    f: IO[bytes], reader, lines: _Lines, header: list[str], first: tuple[int, list[str]] | None = None
) -> Iterator[tuple[int, Record]]:
    """Records after the header; ``first`` is a first line already read that is data (no header)."""
    with f:
        if first is not None:
            line, row = first
            yield (line, ("row", "not UTF-8 text")) if line in lines.bad else (line, dict(zip(header, row)))
        start = reader.line_num + 1
        try:
            for row in reader:
                line, start = start, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if any(n in lines.bad for n in range(line, reader.line_num + 1)):
                    yield line, ("row", "not UTF-8 text")
                elif len(row) != len(header):
                    message = f"has {len(row)} fields, the header has {len(header)}"
                    if reader.line_num > line:
                        message += f" (a quote left open may have joined lines {line}-{reader.line_num})"
                    yield line, ("row", message)
                else:
                    yield line, dict(zip(header, row))
        except csv.Error as exc:
            # An unterminated quote swallows the rest of the file: report where it started.
            yield start, ("row", f"malformed CSV: {exc}")


def _parquet_table(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("pyarrow", "eval") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise DataError(f"cannot read Parquet: {exc}", where=str(path)) from None
    return Table(list(parquet.schema_arrow.names), _parquet_records(parquet))


def _parquet_records(parquet) -> Iterator[tuple[int, Record]]:
    row = 0
    for batch in parquet.iter_batches(batch_size=8192):
        for record in batch.to_pylist():
            row += 1
            yield row, record
