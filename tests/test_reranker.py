"""``from genrel import Reranker``: rank / predict / judge on a saved cross-encoder student and on a tiny
GRM (a genrel causal-LM directory in reasoning form), and the README's Python snippet run as written."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO
from genrel.criteria import load_criteria
from genrel.score import load_scorer
from score_helpers import save_tiny_cross_encoder_dir

TREC = load_criteria("trec-dl")
QUERY = "red running shoes"
DOCS = ["red running shoes size", "garden hose drill battery", "blue cotton shirt", "trail shoe"]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    return save_tiny_cross_encoder_dir(tmp_path_factory.mktemp("student") / "student", TREC)


@pytest.fixture(scope="module")
def grm_dir(tmp_path_factory):
    from genrel.models.tiny import save_tiny
    from genrel.models.model_dir import write_model_info

    path = save_tiny(tmp_path_factory.mktemp("grm"))
    write_model_info(path, kind="causal-lm", form="reasoning", criteria=TREC, created_by="tests", max_length=512)
    return path


def test_import_genrel_stays_torch_free():
    code = "import sys, genrel; assert 'torch' not in sys.modules and 'transformers' not in sys.modules; genrel.Reranker"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_rank_on_a_student_matches_the_scorer_and_cuts_top_k(student_dir):
    from genrel import Reranker

    reranker = Reranker(str(student_dir), device="cpu")
    hits = reranker.rank(QUERY, DOCS, top_k=3, return_documents=True)
    direct = load_scorer(str(student_dir)).score_pairs(
        [reranker._pair(QUERY, d, i) for i, d in enumerate(DOCS)]
    )
    expected = sorted(range(len(DOCS)), key=lambda i: -direct[i].score)[:3]
    assert [h["corpus_id"] for h in hits] == expected
    for h in hits:
        assert h["score"] == pytest.approx(direct[h["corpus_id"]].score, abs=1e-5)
        assert h["relevance_score"] == pytest.approx(h["score"] / 3.0, abs=1e-6)
        assert h["text"] == DOCS[h["corpus_id"]] and set(h["probs"]) == set(TREC.label_names)
    scores = reranker.predict([(QUERY, d) for d in DOCS])
    assert scores == pytest.approx([r.score for r in direct], abs=1e-5)
    assert reranker.predict((QUERY, DOCS[0])) == pytest.approx(scores[0], abs=1e-5)
    judged = reranker.judge(QUERY, {"text": DOCS[0], "title": "Shoe"})
    assert judged["label"] in TREC.label_names and judged["reasoning"] is None and judged["verdicts"] == {}


def test_rank_and_judge_on_a_tiny_grm(grm_dir):
    from genrel import Reranker

    reranker = Reranker(str(grm_dir), dtype="float32", max_new_tokens=4, max_explain_tokens=4, batch_size=4)
    hits = reranker.rank(QUERY, DOCS[:3])
    assert sorted(h["corpus_id"] for h in hits) == [0, 1, 2]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for h in hits:
        assert sum(h["probs"].values()) == pytest.approx(1.0) and 0.0 <= h["relevance_score"] <= 1.0
    judged = reranker.judge(QUERY, DOCS[0], explain=True)
    assert isinstance(judged["reasoning"], str) and "verdicts" in judged and "format_error" in judged


def test_readme_python_snippet_runs_as_is(tmp_path, student_dir, monkeypatch, capsys):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "student").symlink_to(student_dir)
    monkeypatch.chdir(tmp_path)  # the snippet's "runs/student" is relative, as a user would run it
    exec(compile(snippet, "README.md", "exec"), {"__name__": "__main__"})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.split()[1] in TREC.label_names for line in lines)
