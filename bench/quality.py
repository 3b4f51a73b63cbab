"""Quality benchmark: every model and baseline evaluated by ``genrel.eval.evaluate`` (the code behind
``genrel eval``) on real judged data, printed as one table (model × dataset → trec_eval nDCG@10, MAP,
MRR@10, accuracy, macro-F1, QWK, ECE, pairs/s, n) and saved to ``bench/results/quality.md``.

    python bench/quality.py                                   # everything (hours on 2 busy CPU cores)
    python bench/quality.py --datasets qbqtc --skip-train     # reuse the trained students
    python bench/quality.py --only bm25,bi-encoder            # the untrained rows only

Datasets (read from ``$GENREL_SHARED_DATA``, else ``../shared/data`` beside the repository; never
copied into it):

- ``trec-dl20``, criteria ``trec-dl``: students trained on ``train.jsonl``, evaluated on ``dev.jsonl``
  (the full judged pool of its 14 queries);
- ``homedepot``, criteria ``homedepot``: ``train.csv`` split query-disjoint 80/20 (``split_by_query``,
  seed 0); students trained on the 80%, evaluated on the 20% test split;
- ``qbqtc``, criteria ``qbqtc`` (Chinese): students trained on ``train.jsonl``, evaluated on ``dev.jsonl``.

Rows: ``bm25``; ``bi-encoder`` (all-MiniLM-L6-v2 untrained: cosine ranking, a flat label head, so its
label metrics mean nothing); the two sentence-transformers students (``bi-encoder-student``,
``st-cross-encoder``: ``genrel.distill.st_train.train_student`` on gold labels with the settings in
``STUDENTS``, chosen before any evaluation and bounded for a CPU: a cap on training pairs, one epoch;
20% of the *training* queries held out for the label head and the bi-encoder's guard); and the
zero-shot SmolLM2 rows on ``sample<N>`` (``--limit``): a seeded sample of pairs for trec-dl20, whole
queries in seeded order for the others, since generation is the slow part on CPU.

Run folders go under ``--out`` (``<dataset>/<set>/<model>/``, students in ``<dataset>/<student>-model/``,
``genrel compare`` tables in ``<dataset>/compare-<set>/``). A rerun reuses everything already there:
finished runs are only re-reported, interrupted ones resume, and a student trained with the same
settings is not trained again. ``--skip-train`` never trains. Predictions hold the data's queries:
keep ``--out`` out of version control; only the table file is meant to be committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SEED = 0
LM = "smollm2-135m"
STUDENT_SETTINGS = "bench_quality.json"  # what the bench trained a student with; a change retrains
COLUMNS = ["model", "dataset", "eval set", "nDCG@10", "MAP", "MRR@10", "accuracy", "macro-F1", "QWK", "ECE",
           "format err.", "pairs/s", "n"]
METRICS = ("ndcg@10", "map", "mrr@10", "accuracy", "macro_f1", "qwk", "ece", "format_error_rate")
# Student settings per dataset, fixed before evaluating (max_length from the texts' lengths: TREC
# passages ~100 tokens, Home Depot titles ~20, QBQTC titles ~25 characters); caps bound a CPU run.
STUDENTS = {
    "bi-encoder-student": {"kind": "bi-encoder", "batch_size": 32},
    "st-cross-encoder": {"kind": "st-cross-encoder", "batch_size": 4, "docs_per_query": 16},
}
MAX_LENGTH = {"trec-dl20": 128, "homedepot": 48, "qbqtc": 64}
# Training-pair caps: what 2 shared CPU cores train in minutes (TREC passages are ~5x longer per pair).
TRAIN_PAIRS = {"trec-dl20": 480, "homedepot": 1200, "qbqtc": 2000}
HOMEDEPOT_TEST_PAIRS = 2000  # whole test queries, seeded, until this many pairs: the encoders' eval set

log = logging.getLogger("bench.quality")


@dataclass
class Dataset:
    """One benchmark dataset: its criteria, training pairs, evaluation sets and the models on each."""

    name: str
    criteria: str
    data: str  # the evaluated file, for the reports
    train: list = field(default_factory=list)
    eval_sets: dict = field(default_factory=dict)  # set name -> (pairs, [model key])
    notes: list = field(default_factory=list)


# model key -> genrel eval --model value; None: the dataset's trained student directory
MODELS = {  # in order of cost: the runs go in this order
    "bm25": "bm25",
    "bi-encoder": "bi-encoder:minilm",
    "bi-encoder-student": None,
    "st-cross-encoder": None,
    "bi-encoder-student+bm25": None,
    "st-cross-encoder+bm25": None,
    "zero-shot-nosteps": f"zero-shot-nosteps:{LM}",
    "zero-shot": f"zero-shot:{LM}",
}
NAMES = {"bi-encoder": "bi-encoder (MiniLM-L6, untrained)", "bi-encoder-student": "bi-encoder student (MiniLM-L6)",
         "st-cross-encoder": "cross-encoder student (MiniLM-L6)",
         "bi-encoder-student+bm25": "bi-encoder student + BM25 fusion",
         "st-cross-encoder+bm25": "cross-encoder student + BM25 fusion"}
RANKERS = ["bm25", "bi-encoder", "bi-encoder-student", "st-cross-encoder", "bi-encoder-student+bm25",
           "st-cross-encoder+bm25"]
FUSED = "+bm25"
SAMPLED = ["zero-shot-nosteps", "zero-shot"]


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else set(MODELS) - {"zero-shot"}
    datasets = [LOADERS[name](data_root(), args) for name in args.datasets.split(",")]
    models: dict[tuple[str, str], str] = {}  # (dataset, key) -> --model value
    for ds in datasets:
        for key in only:
            if MODELS[key] is not None:
                models[ds.name, key] = MODELS[key]
            else:
                student_dir = student(key, ds, args.out / ds.name, args)
                if student_dir is not None:
                    models[ds.name, key] = str(student_dir)
    # cheap models first, so a run cut short on a busy machine still fills most of the table
    reports = {}
    for key in MODELS:
        for ds in datasets:
            for set_name, (pairs, keys) in ds.eval_sets.items():
                run_dir = args.out / ds.name / set_name / key
                if key not in keys or key not in only:
                    continue
                if args.report_only:
                    reports[ds.name, set_name, key] = existing_report(run_dir, ds)
                elif (ds.name, key) in models:
                    reports[ds.name, set_name, key] = evaluate_run(models[ds.name, key], pairs, ds, run_dir, args)
    rows, notes = [], []
    for ds in datasets:
        for set_name, (pairs, keys) in ds.eval_sets.items():
            done = [key for key in keys if reports.get((ds.name, set_name, key))]
            rows += [table_row(key, ds.name, set_name, reports[ds.name, set_name, key], len(pairs)) for key in done]
            if len(done) > 1:
                runs = [args.out / ds.name / set_name / key for key in done]
                compare_runs(runs, args.out / ds.name / f"compare-{set_name}")
        notes += [f"{ds.name}: {note}" for note in ds.notes]
    text = markdown(rows, notes, args)
    print(text)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(text, encoding="utf-8")
    print(f"table saved to {args.table}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/quality", help="Run folders.")
    parser.add_argument("--table", type=Path, default=REPO / "bench/results/quality.md", help="Table file.")
    parser.add_argument("--datasets", default="trec-dl20,homedepot,qbqtc",
                        help="Comma-separated: trec-dl20, homedepot, qbqtc.")
    parser.add_argument("--only", default=None,
                        help=f"Comma-separated model keys to run: {', '.join(MODELS)} (default: all but zero-shot).")
    parser.add_argument("--limit", type=int, default=100, help="Pairs of the sample every model is scored on.")
    parser.add_argument("--skip-train", action="store_true", help="Never train: reuse the students there.")
    parser.add_argument("--report-only", action="store_true",
                        help="Score nothing: tabulate the runs already in --out, unfinished ones as they stand.")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="Zero-shot reasoning budget (tokens).")
    parser.add_argument("--lm-batch-size", type=int, default=8, help="Prompts per generate() call.")
    parser.add_argument("--epochs", type=int, default=1, help="Student epochs.")
    parser.add_argument("--train-pairs", type=int, default=None,
                        help="Override the students' cap on training pairs (default: STUDENTS in this file).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    return parser.parse_args()


def data_root() -> Path:
    root = Path(os.environ.get("GENREL_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not root.is_dir():
        sys.exit(f"no shared data at {root}: set GENREL_SHARED_DATA")
    return root


# -- datasets -------------------------------------------------------------------------------------------
def trec_dl20(root: Path, args) -> Dataset:
    from genrel.data import load_pairs

    dev_file = root / "trec-dl20" / "dev.jsonl"
    dev = load_pairs(dev_file, "trec-dl").pairs
    train = load_pairs(root / "trec-dl20" / "train.jsonl", "trec-dl").pairs
    ds = Dataset("trec-dl20", "trec-dl", str(dev_file), train=train)
    ds.eval_sets = {f"sample{args.limit}": (sample_pairs(dev, args.limit), SAMPLED), "dev": (dev, RANKERS)}
    ds.notes.append(f"sample{args.limit}: seeded sample of pairs (seed {SEED}) of dev.jsonl, input order kept")
    return ds


def homedepot(root: Path, args) -> Dataset:
    from genrel.data import load_pairs, split_by_query

    path = root / "homedepot" / "train.csv"
    split = split_by_query(load_pairs(path, "homedepot").pairs, {"train": 0.8, "test": 0.2}, seed=SEED)
    train = split["train"]
    ds = Dataset("homedepot", "homedepot", f"{path} (20% test split)", train=train)
    test_set = f"test{HOMEDEPOT_TEST_PAIRS}"
    ds.eval_sets = {f"sample{args.limit}": (sample_queries(split["test"], args.limit), SAMPLED),
                    test_set: (sample_queries(split["test"], HOMEDEPOT_TEST_PAIRS), RANKERS)}
    ds.notes.append(f"split_by_query 80/20 seed {SEED}: {len(train)} train / {len(split['test'])} test pairs")
    ds.notes.append(f"sample{args.limit}, {test_set}: whole test queries in seeded order (seed {SEED}) until "
                    f"{args.limit} / {HOMEDEPOT_TEST_PAIRS} pairs (the encoders cannot score all 11,866 on "
                    "2 busy cores)")
    return ds


def qbqtc(root: Path, args) -> Dataset:
    from genrel.data import load_pairs

    dev_file = root / "qbqtc" / "dev.jsonl"
    dev = load_pairs(dev_file, "qbqtc").pairs
    ds = Dataset("qbqtc", "qbqtc", str(dev_file), train=load_pairs(root / "qbqtc" / "train.jsonl", "qbqtc").pairs)
    ds.eval_sets = {f"sample{args.limit}": (sample_queries(dev, args.limit), SAMPLED), "dev": (dev, RANKERS)}
    ds.notes.append(f"sample{args.limit}: whole dev queries in seeded order (seed {SEED}) until {args.limit} pairs")
    return ds


LOADERS = {"trec-dl20": trec_dl20, "homedepot": homedepot, "qbqtc": qbqtc}


def sample_pairs(pairs: list, n: int) -> list:
    """A seeded sample of ``n`` pairs, in input order."""
    keep = set(random.Random(SEED).sample(range(len(pairs)), min(n, len(pairs))))
    return [p for i, p in enumerate(pairs) if i in keep]


def sample_queries(pairs: list, n: int) -> list:
    """Whole queries, in a seeded order, until at least ``n`` pairs; in input order."""
    keys = sorted({p.query_key for p in pairs})
    random.Random(SEED).shuffle(keys)
    sizes: dict[str, int] = {}
    for p in pairs:
        sizes[p.query_key] = sizes.get(p.query_key, 0) + 1
    chosen, total = set(), 0
    for key in keys:
        if total >= n:
            break
        chosen.add(key)
        total += sizes[key]
    return [p for p in pairs if p.query_key in chosen]


# -- students -------------------------------------------------------------------------------------------
def student_settings(key: str, ds: Dataset, args) -> dict:
    key = key.removesuffix(FUSED)
    settings = {**STUDENTS[key], "base": "minilm", "epochs": args.epochs, "max_length": MAX_LENGTH[ds.name],
                "max_train_pairs": TRAIN_PAIRS[ds.name], "seed": SEED, "lr": 2e-5, "holdout": 0.2, "progress": False}
    if args.train_pairs is not None:
        settings["max_train_pairs"] = args.train_pairs
    return settings


def student(key: str, ds: Dataset, out: Path, args) -> Path | None:
    """The dataset's trained student directory: trained here on gold labels, or reused when the saved
    settings match."""
    from genrel.distill.st_config import StudentSettings
    from genrel.distill.st_train import fit_bm25_fusion, train_student

    if key.endswith(FUSED) and not (args.skip_train or args.report_only):
        base_dir = student(key.removesuffix(FUSED), ds, out, args)
        if base_dir is None:
            return None
    model_dir = out / f"{key}-model"
    settings = student_settings(key, ds, args)
    finished = (model_dir / "genrel_model.json").is_file()
    saved = _read_json(model_dir / STUDENT_SETTINGS)
    if args.skip_train or args.report_only:
        if not finished:
            log.warning("no %s in %s, its rows are left out", key, model_dir)
            return None
        ds.notes.append(student_note(key, model_dir, saved or settings))
        return model_dir
    if finished and saved == settings:
        log.info("%s in %s was trained with these settings: reused", key, model_dir)
        ds.notes.append(student_note(key, model_dir, settings))
        return model_dir
    for set_name in ds.eval_sets:  # their predictions came from another model under the same name
        shutil.rmtree(out / set_name / key, ignore_errors=True)
    log.info("training the %s %s", ds.name, key)
    started = time.perf_counter()
    if key.endswith(FUSED):
        fusion = fit_bm25_fusion(base_dir, ds.train, ds.criteria, model_dir, StudentSettings(**settings))
        log.info("fused in %.0f s: BM25 weight %s", time.perf_counter() - started, fusion["bm25_weight"])
    else:
        run = train_student(ds.train, ds.criteria, model_dir, StudentSettings(**settings))
        log.info("trained in %.0f s: %s", time.perf_counter() - started, run)
    (model_dir / STUDENT_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    ds.notes.append(student_note(key, model_dir, settings))
    return model_dir


def student_note(key: str, model_dir: Path, settings: dict) -> str:
    """The student's training settings and the guard's decision, for the table's notes."""
    run = _read_json(model_dir / "student_run.json") or {}
    fusion = (_read_json(model_dir / "genrel_model.json") or {}).get("fusion")
    if fusion:
        grid = fusion["holdout_ndcg10"]
        return (f"{NAMES[key]}: the student above, ranking by (1 − β) · its score + β · BM25 / the query's best "
                f"BM25; β = {fusion['bm25_weight']:.2f} of 0, 0.05 … 1 by held-out training nDCG@10 "
                f"({grid[str(fusion['bm25_weight'])]:.3f}; student alone {grid['0.0']:.3f}); head refitted")
    held = ", ".join(f"{k} {v:.3f}" for k, v in (run.get("holdout_ndcg10") or {}).items())
    rate = run.get("train_pairs_per_s")
    return (f"{NAMES[key]}: {settings.get('epochs')} epoch, max_length {settings.get('max_length')}, "
            f"lr {settings.get('lr')}, batch {settings.get('batch_size')}, {run.get('train_pairs', '?')} training "
            f"pairs (cap {settings.get('max_train_pairs')}), {run.get('added_tokens', 0)} characters added to the "
            f"vocabulary, head and guard on {run.get('holdout_pairs', '?')} held-out training pairs "
            f"(nDCG@10 {held or '?'}); kept: {run.get('kept', '?')}"
            + (f"; {rate:.1f} training pairs/s" if rate else ""))


# -- evaluation ------------------------------------------------------------------------------------------
def evaluate_run(model: str, pairs: list, ds: Dataset, run_dir: Path, args) -> dict:
    """``genrel eval`` into ``run_dir``; a finished run is only re-reported (no model is loaded)."""
    from genrel.eval import PREDICTIONS_FILE, evaluate, metrics_from_predictions, read_predictions, write_report
    from genrel.score import load_scorer

    path = run_dir / PREDICTIONS_FILE
    done = {r["row_id"] for r in read_predictions(path)} if path.is_file() else set()
    if done >= {p.row_id for p in pairs} and len(done) == len(pairs):
        report = metrics_from_predictions(path, ds.criteria)
        write_report(report, run_dir)
        log.info("%s: finished run reused", run_dir)
        return report
    options = {}
    if model.startswith("zero-shot"):
        options = {"max_new_tokens": args.max_new_tokens, "batch_size": args.lm_batch_size, "progress": False}
    scorer = load_scorer(model, criteria=ds.criteria, **options)
    log.info("%s: scoring %d pairs (%d already done)", run_dir, len(pairs), len(done))
    started = time.perf_counter()
    report = evaluate(scorer, pairs, ds.criteria, run_dir, batch_size=16 if model.startswith("zero-shot") else 64,
                      data=ds.data)
    log.info("%s: done in %.0f s", run_dir, time.perf_counter() - started)
    return report


def existing_report(run_dir: Path, ds: Dataset) -> dict | None:
    """The report of whatever ``run_dir`` holds (None when nothing was scored there)."""
    from genrel.eval import PREDICTIONS_FILE, metrics_from_predictions, write_report

    path = run_dir / PREDICTIONS_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return None
    report = metrics_from_predictions(path, ds.criteria)
    write_report(report, run_dir)
    return report


def compare_runs(dirs: list[Path], out: Path) -> None:
    from genrel.eval import compare

    compare(dirs, out, n_resamples=1000, seed=SEED)
    log.info("compare table: %s", out / "compare.md")


# -- the table -------------------------------------------------------------------------------------------
def table_row(key: str, dataset: str, set_name: str, report: dict, size: int) -> list[str]:
    from genrel.eval.markdown import fmt

    model = NAMES.get(key) or MODELS[key]
    values = [report.get(k) for k in METRICS]
    rate = report.get("pairs_per_second")
    digits = 1 if rate is None or rate >= 10 else 2 if rate >= 1 else 3  # slow LMs: 0.021, not 0.0
    return [model, dataset, set_name, *(fmt(v, 3) for v in values), fmt(rate, digits),
            f"{report.get('n_judged')}" + ("" if report.get("n") == size else f" of {size} (unfinished)")]


def markdown(rows: list[list[str]], notes: list[str], args) -> str:
    from genrel.eval.markdown import md_table

    return (
        "# Quality benchmark (`python bench/quality.py`)\n\n"
        f"{time.strftime('%Y-%m-%d')}, commit {_commit()}, {os.cpu_count()} CPU cores, no GPU. "
        "Ranking metrics are trec_eval's (pytrec_eval via ir-measures; judged pool, ties by docid descending). "
        f"Zero-shot: `{LM}` (bf16 where the CPU has it), greedy, max_new_tokens {args.max_new_tokens}. "
        "Settings and caveats: docs/quality.md. pairs/s is of the run that scored (shared machine).\n\n"
        + md_table(COLUMNS, rows, "lll" + "r" * (len(COLUMNS) - 3))
        + "\n" + "".join(f"- {note}\n" for note in notes)
    )


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


if __name__ == "__main__":
    main()
