"""Data in the formats relevance teams have: BEIR folders, TREC qrels (3/4 columns, with or without a
header) with a run file as the candidate set, headerless MS MARCO TSVs, ``datasets`` folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrel.criteria import load_criteria
from genrel.data import ColumnMapping, TrecSource, load_pairs
from genrel.errors import DataError

TREC = load_criteria("trec-dl")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def beir_folder(root: Path) -> Path:
    jsonl(root / "corpus.jsonl", [
        {"_id": "d1", "title": "Fleas", "text": "Adult fleas live up to a year."},
        {"_id": "d2", "title": "", "text": "Flea collars come in five colours."},
        {"_id": "d3", "title": "Ticks", "text": "Ticks are not insects."},
    ])
    jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "how long do fleas live"}, {"_id": "q2", "text": "ticks"}])
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t3\nq1\td2\t0\nq2\td3\t2\n")
    write(root / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\nq2\td3\t1\n")
    return root


def test_beir_folder_and_its_qrels_files_load(tmp_path):
    root = beir_folder(tmp_path / "scifact")
    pairs = load_pairs(root, TREC).pairs
    assert [(p.qid, p.docid, p.label) for p in pairs] == [("q1", "d1", "perfect"), ("q1", "d2", "irrelevant"),
                                                          ("q2", "d3", "highly")]
    assert pairs[0].title == "Fleas" and pairs[0].query == "how long do fleas live" and pairs[1].title is None
    assert pairs[0].source == f"{root / 'qrels' / 'test.tsv'}:2"  # the header is line 1
    dev = load_pairs(root / "qrels" / "dev.tsv", TREC).pairs
    assert [(p.qid, p.docid, p.label) for p in dev] == [("q2", "d3", "related")]


def test_trec_run_is_the_candidate_set_labelled_from_qrels(tmp_path):
    write(tmp_path / "docs.tsv", "d1\tAdult fleas live up to a year.\nd2\tFlea collars.\nd3\tTicks.\nd4\tCats.\n")
    write(tmp_path / "queries.tsv", "1\thow long do fleas live\n2\tticks\n")
    write(tmp_path / "qrels.txt", "1 0 d1 3\n2 0 d3 2\n")  # 4 columns, no header
    write(tmp_path / "bm25.run", "1 Q0 d2 1 9.5 bm25\n1 Q0 d1 2 7.25 bm25\n1 Q0 d4 3 1.0 bm25\n"
                                 "2 Q0 d3 1 3.0 bm25\n2 Q0 d4 2 2.0 bm25\n")
    source = write(tmp_path / "rerank.yaml", "docs: docs.tsv\nqueries: queries.tsv\nqrels: qrels.txt\n"
                                             "run: bm25.run\ndepth: 2\n")
    pairs = load_pairs(source, TREC, require_label=False).pairs
    assert [(p.qid, p.docid, p.label) for p in pairs] == [("1", "d2", None), ("1", "d1", "perfect"),
                                                          ("2", "d3", "highly"), ("2", "d4", None)]
    judged = load_pairs(source, TREC).pairs  # stages that need labels keep the judged candidates
    assert [(p.qid, p.docid) for p in judged] == [("1", "d1"), ("2", "d3")]
    assert pairs[1].source == f"{tmp_path / 'bm25.run'}:2" and pairs[1].text == "Adult fleas live up to a year."
    no_qrels = TrecSource(docs=tmp_path / "docs.tsv", queries=tmp_path / "queries.tsv", run=tmp_path / "bm25.run")
    assert [p.label for p in load_pairs(no_qrels, TREC, require_label=False).pairs] == [None] * 5
    with pytest.raises(DataError, match="needs the documents and queries"):
        load_pairs(tmp_path / "bm25.run", TREC)


def test_three_column_qrels_without_header(tmp_path):
    write(tmp_path / "docs.tsv", "d1\ttext one\n")
    write(tmp_path / "queries.tsv", "q1\tquery one\n")
    write(tmp_path / "qrels.tsv", "q1\td1\t1\n")
    source = TrecSource(docs=tmp_path / "docs.tsv", queries=tmp_path / "queries.tsv", qrels=tmp_path / "qrels.tsv")
    assert [(p.qid, p.label, p.row_id) for p in load_pairs(source, TREC).pairs] == [("q1", "related", "1")]


def test_headerless_ms_marco_tsv_is_detected_or_declared(tmp_path):
    top1000 = write(tmp_path / "top1000.dev.tsv", "188714\t1000052\tfoods and supplements\tThe Food and Drug "
                                                  "Administration \"regulates\" supplements.\n"
                                                  "188714\t1000084\tfoods and supplements\tUnrelated passage.\n")
    pairs = load_pairs(top1000, TREC, require_label=False).pairs
    assert [(p.qid, p.docid, p.query, p.row_id) for p in pairs] == [
        ("188714", "1000052", "foods and supplements", "1"), ("188714", "1000084", "foods and supplements", "2")]
    assert pairs[0].text.endswith('"regulates" supplements.') and pairs[0].label is None
    labelled = write(tmp_path / "judged.tsv", "q\tsome text\t2\nq\tother text\t0\n")
    assert [p.label for p in load_pairs(labelled, TREC).pairs] == ["highly", "irrelevant"]
    unlabelled = load_pairs(labelled, TREC, ColumnMapping(header=False, label=""), require_label=False).pairs
    assert [(p.text, p.label) for p in unlabelled] == [("some text", None), ("other text", None)]
    wide = write(tmp_path / "wide.tsv", "a\tb\tq\tx\ty\tdoc text\n")  # no layout of 6 columns: column1..6
    (pair,) = load_pairs(wide, TREC, ColumnMapping(query="column3", text="column6"), require_label=False).pairs
    assert (pair.query, pair.text) == ("q", "doc text")
    headed = write(tmp_path / "headed.tsv", "query\ttext\tlabel\nq\tt\t1\n")
    assert [p.row_id for p in load_pairs(headed, TREC).pairs] == ["2"]


def test_datasets_folder_from_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"query": ["red shoes", "red shoes"], "text": ["red running shoes", "garden hose"], "label": [3, 0]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    pairs = load_pairs(tmp_path / "ds", TREC).pairs
    assert [(p.text, p.label, p.row_id) for p in pairs] == [("red running shoes", "perfect", "1"),
                                                            ("garden hose", "irrelevant", "2")]
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match="several splits"):
        load_pairs(tmp_path / "dd", TREC)
    assert len(load_pairs(tmp_path / "dd" / "train", TREC).pairs) == 2
