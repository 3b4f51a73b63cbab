"""Judged query–document pairs: readers (JSON lines, CSV/TSV, Parquet, datasets folders, TREC qrels and
runs, BEIR folders: ``load_pairs`` takes any of them), column mapping, labels
mapped through the criteria, bad rows reported as ``file:line: field: message``, query-disjoint splits.

Imports no torch and no transformers; Parquet needs pyarrow (``genrel[eval]``).
"""

from genrel.data.mapping import ColumnMapping, ResolvedColumns, mapping_from_pairs
from genrel.data.pair import Pair
from genrel.data.sources import TrecSource, load_pairs
from genrel.data.rows import LoadResult, RowProblem, label_name
from genrel.data.splits import split_by_query
from genrel.data.trec import load_trec
from genrel.data.writers import pair_record, write_pairs_jsonl

__all__ = [
    "ColumnMapping",
    "LoadResult",
    "Pair",
    "ResolvedColumns",
    "TrecSource",
    "RowProblem",
    "label_name",
    "load_pairs",
    "load_trec",
    "mapping_from_pairs",
    "pair_record",
    "split_by_query",
    "write_pairs_jsonl",
]
