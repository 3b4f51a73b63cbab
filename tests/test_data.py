"""Readers, column mapping, label mapping, bad-row reporting, splits and the TREC reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrel.criteria import load_criteria
from genrel.data import (
    ColumnMapping,
    Pair,
    label_name,
    load_pairs,
    load_trec,
    split_by_query,
    write_pairs_jsonl,
)
from genrel.errors import ConfigError, DataError

TREC = load_criteria("trec-dl")
HOMEDEPOT = load_criteria("homedepot")


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- formats ---------------------------------------------------------------------------------------


def test_jsonl_reads_every_part(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "a1", "qid": 7, "query": "flea life", "docid": "d1", "title": "Fleas", "text": "Fleas live.",
             "label": "highly", "verdicts": {"topic": "yes"}, "fields": {"site": "wiki"}},
            {"query": "flea life", "qid": 7, "text": "Other.", "label": 0, "brand": "x"},
        ],
    )
    pairs = load_pairs(path, TREC).pairs
    assert pairs[0] == Pair(
        row_id="a1", query="flea life", text="Fleas live.", title="Fleas", fields={"site": "wiki"}, qid="7",
        docid="d1", label="highly", verdicts={"topic": "yes"}, source=f"{path}:1",
    )
    assert pairs[1].row_id == "2" and pairs[1].label == "irrelevant" and pairs[1].fields == {}
    assert pairs[1].source == f"{path}:2"


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"query": "q", "text": "t", "label": 1}, "", "{bad json"])
    result = load_pairs(path, TREC, on_error="skip")
    assert [p.source for p in result.problems] == [f"{path}:3"]
    assert result.problems[0].field == "row" and "invalid JSON" in result.problems[0].message


def test_csv_header_is_line_one(tmp_path):
    path = write_text(tmp_path / "d.csv", "query,text,label\nq1,t1,perfect\n\"q2\",\"two\nlines\",1\nq3,t3,2\n")
    pairs = load_pairs(path, TREC).pairs
    assert [p.source for p in pairs] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    assert [p.row_id for p in pairs] == ["2", "3", "5"]
    assert pairs[1].text == "two\nlines"
    assert [p.label for p in pairs] == ["perfect", "related", "highly"]


def test_tsv_keeps_quotes_as_text(tmp_path):
    path = write_text(tmp_path / "d.tsv", 'qid\tquery\ttext\tlabel\n1\tq\t"Hi" she said\t3\n')
    (pair,) = load_pairs(path, TREC).pairs
    assert pair.text == '"Hi" she said' and pair.qid == "1" and pair.label == "perfect"


def test_parquet_rows_are_numbered_from_one(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    table = pa.table({"query": ["q1", "q2", ""], "text": ["t1", "t2", "t3"], "grade": [0, 3, 1], "qid": [1, 2, 3]})
    pq.write_table(table, path)
    result = load_pairs(path, TREC, on_error="skip")
    assert [(p.row_id, p.label, p.qid) for p in result.pairs] == [("1", "irrelevant", "1"), ("2", "perfect", "2")]
    assert str(result.problems[0]) == f"{path}:3: query: empty (column 'query')"


def test_gzipped_jsonl(tmp_path):
    import gzip

    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"query": "q", "text": "t", "label": "related"}) + "\n")
    assert load_pairs(path, TREC).pairs[0].label == "related"


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="unknown data format"):
        load_pairs(write_text(tmp_path / "d.txt", "x"), TREC)
    with pytest.raises(DataError, match="file not found"):
        load_pairs(tmp_path / "none.jsonl", TREC)


def test_json_array_is_refused_with_a_hint(tmp_path):
    path = write_text(tmp_path / "d.json", '[{"query": "q", "text": "t", "label": 1},\n{"query": "q"}]')
    with pytest.raises(DataError, match="JSON lines"):
        load_pairs(path, TREC)


# -- column mapping --------------------------------------------------------------------------------


def test_homedepot_columns_are_detected(tmp_path):
    path = write_text(
        tmp_path / "hd.csv",
        "id,product_uid,product_title,search_term,relevance\n2,100001,Simpson Angle,angle bracket,2.33\n",
    )
    (pair,) = load_pairs(path, HOMEDEPOT).pairs
    assert (pair.row_id, pair.docid, pair.query, pair.text, pair.title) == (
        "2", "100001", "angle bracket", "Simpson Angle", None
    )
    assert pair.label == "partial"


def test_product_title_is_the_title_when_there_is_a_text(tmp_path):
    path = write_text(tmp_path / "d.csv", "search_term,product_title,text,grade\nq,Title,Body,3\n")
    (pair,) = load_pairs(path, HOMEDEPOT).pairs
    assert (pair.text, pair.title) == ("Body", "Title")


def test_explicit_mapping_and_extra_fields(tmp_path):
    path = write_text(tmp_path / "d.csv", "Q,Doc,name,stars,brand,colour\nq,t,Title,2,Acme,\n")
    mapping = ColumnMapping(query="Q", text="Doc", title="name", label="stars", fields=["brand", "colour"])
    (pair,) = load_pairs(path, TREC, mapping).pairs
    assert (pair.query, pair.text, pair.title, pair.label) == ("q", "t", "Title", "highly")
    assert pair.fields == {"brand": "Acme"}  # empty cells are left out
    (pair,) = load_pairs(path, TREC, ColumnMapping(query="Q", text="Doc", label="stars", fields=["*"])).pairs
    assert pair.fields == {"name": "Title", "brand": "Acme"}


def test_mapping_can_switch_a_detected_column_off(tmp_path):
    path = write_text(tmp_path / "d.csv", "query,text,title,label\nq,t,T,1\n")
    (pair,) = load_pairs(path, TREC, ColumnMapping(title="")).pairs
    assert pair.title is None


def test_missing_columns_are_file_errors(tmp_path):
    path = write_text(tmp_path / "d.csv", "question,text,label\nq,t,1\n")
    with pytest.raises(DataError, match=r"d.csv: no query column found \(columns: question, text, label\)"):
        load_pairs(path, TREC)
    with pytest.raises(DataError, match="column 'nope' for label not found"):
        load_pairs(path, TREC, ColumnMapping(query="question", label="nope"))
    with pytest.raises(DataError, match="no label column"):
        load_pairs(write_text(tmp_path / "n.csv", "query,text\nq,t\n"), TREC)
    assert load_pairs(tmp_path / "n.csv", TREC, require_label=False).pairs[0].label is None


def test_mapping_rejects_unknown_fields():
    from genrel.data import mapping_from_pairs

    assert mapping_from_pairs(["query=search_term", "fields=a, b"]).fields == ["a", "b"]
    with pytest.raises(ConfigError, match="querry"):
        mapping_from_pairs(["querry=x"])


# -- labels ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("perfect", "perfect"), ("Perfect", "perfect"), (2, "highly"), ("0", "irrelevant"), (3.0, "perfect")],
)
def test_label_by_name_or_id(value, expected):
    assert label_name(value, TREC) == expected


@pytest.mark.parametrize(
    "value, expected",
    [(1, "irrelevant"), (1.33, "irrelevant"), (1.5, "partial"), ("2.33", "partial"), (2.5, "perfect"), (3, "perfect")],
)
def test_label_by_grade_bins(value, expected):
    assert label_name(value, HOMEDEPOT) == expected


@pytest.mark.parametrize("value", ["great", 7, 1.5, True])
def test_unknown_label_lists_the_valid_ones(value):
    with pytest.raises(ValueError, match="labels: irrelevant, related, highly, perfect; or ids 0, 1, 2, 3"):
        label_name(value, TREC)


def test_grade_below_the_first_bin():
    with pytest.raises(ValueError, match="grade 0.5 is below the lowest grade bin 1"):
        label_name(0.5, HOMEDEPOT)


# -- bad rows --------------------------------------------------------------------------------------

BAD_ROWS = [
    ({"query": "q", "text": "t", "label": "great"}, "label", "unknown label 'great' (labels: irrelevant"),
    ({"query": " ", "text": "t", "label": 1}, "query", "empty (column 'query')"),
    ({"query": "q", "text": "", "label": 1}, "text", "empty (column 'text')"),
    ({"query": "q", "text": "t"}, "label", "missing (column 'label')"),
    ({"query": "q", "text": "t", "label": 1, "verdicts": {"tpoic": "yes"}}, "verdicts.tpoic", "unknown step 'tpoic'"),
    ({"query": "q", "text": "t", "label": 1, "verdicts": {"topic": "maybe"}}, "verdicts.topic",
     "unknown verdict 'maybe' (verdicts: yes, no)"),
    ({"query": "q", "text": "t", "label": 1, "verdicts": {"need": "yes"}}, "verdicts.need", "free step"),
    ({"query": "q", "text": "t", "label": 1, "verdicts": "yes"}, "verdicts", "must hold a JSON object"),
    ("{not json", "row", "invalid JSON"),
    ("[1, 2]", "row", "expected a JSON object, got list"),
]


@pytest.mark.parametrize("row, field, message", BAD_ROWS)
def test_each_bad_row_names_file_line_and_field(tmp_path, row, field, message):
    good = {"query": "q", "text": "t", "label": 1}
    path = write_jsonl(tmp_path / "d.jsonl", [good, row, good])
    with pytest.raises(DataError) as info:
        load_pairs(path, TREC)
    text = str(info.value)
    assert text.startswith(f"{path}:2: {field}: ") and message in text
    assert "1 bad row(s) in all" in text
    result = load_pairs(path, TREC, on_error="skip")
    assert [p.source for p in result.pairs] == [f"{path}:1", f"{path}:3"]
    assert result.problems[0].source == f"{path}:2" and result.problems[0].field == field


def test_fail_names_the_first_bad_row_and_counts_them_all(tmp_path):
    path = write_text(tmp_path / "d.csv", "query,text,label\nq,t,1\nq,t,bad\n,,1\nq,t,2,extra\n")
    with pytest.raises(DataError) as info:
        load_pairs(path, TREC)
    assert str(info.value).startswith(f"{path}:3: label: unknown label 'bad'")
    assert "3 bad row(s) in all" in str(info.value)
    result = load_pairs(path, TREC, on_error="skip")
    assert len(result.pairs) == 1 and result.bad_rows == 3
    assert [str(p) for p in result.problems[1:]] == [
        f"{path}:4: query: empty (column 'query')",
        f"{path}:4: text: empty (column 'text')",
        f"{path}:5: row: has 4 fields, the header has 3",
    ]


def test_verdict_prefix_columns(tmp_path):
    path = write_text(
        tmp_path / "d.csv", "query,text,label,verdict.topic,verdict.answer,verdict.bogus\nq,t,2,yes,,\nq,t,2,no,x,y\n"
    )
    result = load_pairs(path, TREC, on_error="skip")
    assert result.pairs[0].verdicts == {"topic": "yes"}
    assert [(p.source, p.field) for p in result.problems] == [
        (f"{path}:3", "verdicts.answer"), (f"{path}:3", "verdicts.bogus")
    ]


def test_csv_verdicts_and_fields_as_json_cells(tmp_path):
    csv_text = 'query,text,label,verdicts,fields\nq,t,2,"{""topic"": ""yes""}","{""a"": 1}"\n'
    path = write_text(tmp_path / "d.csv", csv_text)
    (pair,) = load_pairs(path, TREC).pairs
    assert pair.verdicts == {"topic": "yes"} and pair.fields == {"a": "1"}


def test_non_utf8_line_is_a_row_problem(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("query,text,label\nq,t,1\nq,caf\xe9,1\n".encode("latin-1"))
    result = load_pairs(path, TREC, on_error="skip")
    assert len(result.pairs) == 1 and str(result.problems[0]) == f"{path}:3: row: not UTF-8 text"


def test_unterminated_quote_is_reported_where_it_starts(tmp_path):
    path = write_text(tmp_path / "d.csv", 'query,text,label\nq,t,1\nq,"open,1\nq,t,1\n')
    result = load_pairs(path, TREC, on_error="skip")
    assert str(result.problems[0]) == (
        f"{path}:3: row: has 2 fields, the header has 3 (a quote left open may have joined lines 3-4)"
    )


# -- writing ---------------------------------------------------------------------------------------


def test_written_jsonl_reads_back_unchanged(tmp_path):
    pairs = [
        Pair(row_id="r1", query="笔记 搜索", text="正文 😀", title="T", fields={"brand": "Acme"}, qid="1",
             docid="d", label="highly", verdicts={"topic": "yes", "answer": "yes"}),
        Pair(row_id="r2", query="q", text="t", label="irrelevant"),
    ]
    path = write_pairs_jsonl(pairs, tmp_path / "out" / "p.jsonl")
    back = load_pairs(path, TREC).pairs
    assert [p.model_copy(update={"source": None}) for p in back] == pairs
    assert "😀" in path.read_text(encoding="utf-8")


# -- splits ----------------------------------------------------------------------------------------


def _pairs(n_queries: int, per_query: int = 3) -> list[Pair]:
    return [
        Pair(row_id=f"{q}-{d}", query=f"query {q}", text="t", qid=str(q) if q % 2 else None)
        for q in range(n_queries)
        for d in range(per_query)
    ]


def test_split_is_query_disjoint_and_complete():
    pairs = _pairs(50)
    splits = split_by_query(pairs, {"train": 0.7, "dev": 0.2, "test": 0.1}, seed=3)
    keys = {name: {p.query_key for p in part} for name, part in splits.items()}
    assert {name: len(k) for name, k in keys.items()} == {"train": 35, "dev": 10, "test": 5}
    assert not (keys["train"] & keys["dev"]) and not (keys["train"] & keys["test"]) and not (keys["dev"] & keys["test"])
    assert sum(len(p) for p in splits.values()) == len(pairs)


def test_split_is_deterministic_and_order_free():
    pairs = _pairs(30)
    a = split_by_query(pairs, seed=1)
    b = split_by_query(list(reversed(pairs)), seed=1)
    assert {p.row_id for p in a["dev"]} == {p.row_id for p in b["dev"]}
    assert split_by_query(pairs, seed=1) == a
    assert {p.row_id for p in split_by_query(pairs, seed=2)["dev"]} != {p.row_id for p in a["dev"]}


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ConfigError):
        split_by_query(_pairs(3), {"train": 0.8, "dev": 0.3})


# -- TREC ------------------------------------------------------------------------------------------


def test_trec_tsv(tmp_path):
    qrels = write_text(tmp_path / "qrels.txt", "1 0 d1 2\n1 0 d2 0\n2 Q0 d1 3\n")
    docs = write_text(tmp_path / "docs.tsv", "d1\tFleas live a year.\nd2\tUnrelated.\nd3\tnot judged\n")
    queries = write_text(tmp_path / "queries.tsv", "1\tflea life\n2\tflea\n")
    pairs = load_trec(qrels, docs, queries, TREC).pairs
    assert [(p.qid, p.docid, p.label, p.query, p.row_id) for p in pairs] == [
        ("1", "d1", "highly", "flea life", "1"), ("1", "d2", "irrelevant", "flea life", "2"),
        ("2", "d1", "perfect", "flea", "3"),
    ]
    assert pairs[0].source == f"{qrels}:1" and pairs[0].text == "Fleas live a year."


def test_trec_jsonl_with_titles(tmp_path):
    qrels = write_text(tmp_path / "qrels", "q1\t0\tD1\t1\n")
    docs = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "D1", "title": "Fleas", "text": "Body"}])
    queries = write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "fleas"}])
    (pair,) = load_trec(qrels, docs, queries, TREC).pairs
    assert (pair.title, pair.text, pair.query, pair.label) == ("Fleas", "Body", "fleas", "related")


def test_trec_problems(tmp_path):
    qrels = write_text(tmp_path / "qrels.txt", "1 0 d1 2\n1 0 d9 1\n1 d1\n9 0 d1 1\n1 0 d1 7\n")
    docs = write_text(tmp_path / "docs.tsv", "d1\tText\n")
    queries = write_text(tmp_path / "queries.tsv", "1\tq\n")
    with pytest.raises(DataError, match=r"qrels.txt:3: row: expected 'qid iteration docid grade'"):
        load_trec(qrels, docs, queries, TREC)
    result = load_trec(qrels, docs, queries, TREC, on_error="skip")
    assert len(result.pairs) == 1
    assert sorted((p.source.rsplit(":", 1)[1], p.field) for p in result.problems) == [
        ("2", "text"), ("3", "row"), ("4", "query"), ("5", "label")
    ]
    assert f"{qrels}:2: text: no document with id 'd9' in {docs}" in [str(p) for p in result.problems]


# -- speed -----------------------------------------------------------------------------------------


def test_large_csv_loads_quickly(tmp_path):
    import time

    path = tmp_path / "big.csv"
    rows = "".join(f"{i},{i // 7},Product title number {i},query {i // 7},{1 + (i % 5) / 2}\n" for i in range(20000))
    path.write_text("id,product_uid,product_title,search_term,relevance\n" + rows, encoding="utf-8")
    start = time.perf_counter()
    result = load_pairs(path, HOMEDEPOT)
    assert len(result.pairs) == 20000
    assert time.perf_counter() - start < 5
