"""Quality benchmark: every model and baseline evaluated by ``genrel.eval.evaluate`` (the code behind
``genrel eval``) on real judged data, printed as one table (model × dataset → accuracy, macro-F1,
nDCG@10, QWK, ECE, format-error rate, pairs/s, n) and saved to ``bench/results/quality.md``.

    python bench/quality.py                                   # everything (hours on 2 busy CPU cores)
    python bench/quality.py --datasets trec-dl20 --skip-train # reuse the trained cross-encoder
    python bench/quality.py --only bm25,cross-encoder         # the fast rows only

Datasets (read from ``$GENREL_SHARED_DATA``, else ``../shared/data`` beside the repository; never
copied into it):

- ``trec-dl20``, criteria ``trec-dl``: evaluation on ``dev.jsonl``; the cross-encoder is trained on
  ``train.jsonl`` as ``genrel train cross-encoder`` does (20% of the training queries held out, seed
  0, to fit the temperature).
- ``homedepot``, criteria ``homedepot``: ``train.csv`` split query-disjoint 80/20
  (``split_by_query``, seed 0); the cross-encoder trains on a capped sample of the 80% (again with
  20% of its queries held out for the temperature); evaluation on the 20%.

Evaluation sets: ``sample<N>`` (``--limit``, default 100) for every model — a seeded sample of
*pairs* for trec-dl20 (its 14 dev queries have about 95 pairs each, so whole queries would mean one
or two queries), *whole queries* in seeded order until N pairs are reached for homedepot (about 6
pairs per query) — and the whole evaluation split for BM25 and the cross-encoder. The zero-shot
SmolLM2 rows run only on the sample: generation is the slow part on CPU.

Run folders go under ``--out`` (``<dataset>/<set>/<model>/``, the cross-encoders in
``<dataset>/cross-encoder-model/``, ``genrel compare`` tables in ``<dataset>/compare-<set>/``). A
rerun reuses everything already there: finished runs are only re-reported, interrupted ones resume,
and a cross-encoder trained with the same settings is not trained again. ``--skip-train`` never
trains (cross-encoder rows are left out where no model exists). Predictions hold the data's queries:
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
CE_MODEL_DIR = "cross-encoder-model"
CE_SETTINGS = "bench_quality.json"  # what the bench trained the model with; a change retrains
COLUMNS = ["model", "dataset", "eval set", "accuracy", "macro-F1", "nDCG@10", "QWK", "ECE", "format err.",
           "pairs/s", "n"]

log = logging.getLogger("bench.quality")


@dataclass
class Dataset:
    """One benchmark dataset: its criteria, training pairs, evaluation sets and the models on each."""

    name: str
    criteria: str
    data: str  # the evaluated file, for the reports
    train: list = field(default_factory=list)
    eval_sets: dict = field(default_factory=dict)  # set name -> (pairs, [model key])
    ce_max_length: int = 256
    notes: list = field(default_factory=list)


# model key -> genrel eval --model value; "cross-encoder" is the dataset's trained model directory
MODELS = {  # in order of cost: the runs go in this order
    "bm25": "bm25",
    "cross-encoder": None,
    "zero-shot-nosteps": f"zero-shot-nosteps:{LM}",
    "zero-shot": f"zero-shot:{LM}",
}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else set(MODELS)
    datasets = [LOADERS[name](data_root(), args) for name in args.datasets.split(",")]
    models: dict[tuple[str, str], str] = {}  # (dataset, key) -> --model value
    for ds in datasets:
        for key in only - {"cross-encoder"}:
            models[ds.name, key] = MODELS[key]
        if "cross-encoder" in only:
            ce_dir = cross_encoder(ds, args.out / ds.name, args)
            if ce_dir is not None:
                models[ds.name, "cross-encoder"] = str(ce_dir)
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
    parser.add_argument("--datasets", default="trec-dl20,homedepot", help="Comma-separated: trec-dl20, homedepot.")
    parser.add_argument("--only", default=None, help=f"Comma-separated model keys to run: {', '.join(MODELS)}.")
    parser.add_argument("--limit", type=int, default=100, help="Pairs of the sample every model is scored on.")
    parser.add_argument("--skip-train", action="store_true", help="Never train: reuse the cross-encoders there.")
    parser.add_argument("--report-only", action="store_true",
                        help="Score nothing: tabulate the runs already in --out, unfinished ones as they stand.")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="Zero-shot reasoning budget (tokens).")
    parser.add_argument("--lm-batch-size", type=int, default=8, help="Prompts per generate() call.")
    parser.add_argument("--epochs", type=int, default=1, help="Cross-encoder epochs.")
    parser.add_argument("--train-pairs", type=int, default=6000,
                        help="Cap on cross-encoder training pairs (a seeded sample of the training queries' pairs).")
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
    every_model = ["zero-shot", "zero-shot-nosteps", "bm25", "cross-encoder"]
    ds.eval_sets = {
        f"sample{args.limit}": (sample_pairs(dev, args.limit), every_model),
        "dev": (dev, ["bm25", "cross-encoder"]),
    }
    ds.notes.append(f"sample{args.limit}: seeded sample of pairs (seed {SEED}) of dev.jsonl, input order kept")
    return ds


def homedepot(root: Path, args) -> Dataset:
    from genrel.data import load_pairs, split_by_query

    path = root / "homedepot" / "train.csv"
    split = split_by_query(load_pairs(path, "homedepot").pairs, {"train": 0.8, "test": 0.2}, seed=SEED)
    train = split["train"]
    ds = Dataset("homedepot", "homedepot", f"{path} (20% test split)", train=train, ce_max_length=64)
    ds.eval_sets = {
        f"sample{args.limit}": (sample_queries(split["test"], args.limit), ["zero-shot", "bm25", "cross-encoder"]),
        "test": (split["test"], ["bm25", "cross-encoder"]),
    }
    ds.notes.append(f"split_by_query 80/20 seed {SEED}: {len(train)} train / {len(split['test'])} test pairs")
    ds.notes.append(f"sample{args.limit}: whole test queries in seeded order (seed {SEED}) until {args.limit} pairs")
    return ds


LOADERS = {"trec-dl20": trec_dl20, "homedepot": homedepot}


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


# -- cross-encoder ---------------------------------------------------------------------------------------
def cross_encoder(ds: Dataset, out: Path, args) -> Path | None:
    """The dataset's trained cross-encoder directory: trained here (as ``genrel train cross-encoder``:
    20% of the training queries held out to fit the temperature), or reused."""
    from genrel.data import split_by_query
    from genrel.distill.cross_encoder_train import train_cross_encoder

    model_dir = out / CE_MODEL_DIR
    split = split_by_query(ds.train, {"train": 0.8, "dev": 0.2}, seed=SEED)
    train, dev = split["train"], split["dev"]
    train = sample_pairs(train, args.train_pairs)
    dev = sample_queries(dev, 500)
    settings = {"base": "minilm", "epochs": args.epochs, "max_length": ds.ce_max_length, "seed": SEED,
                "train_pairs": len(train), "dev_pairs": len(dev)}
    finished = (model_dir / "genrel_model.json").is_file()
    saved = _read_json(model_dir / CE_SETTINGS)
    if args.skip_train or args.report_only:
        if not finished:
            log.warning("no cross-encoder in %s, its rows are left out", model_dir)
            return None
        ds.notes.append(ce_note(saved or {}))
        return model_dir
    if finished and saved == settings:
        log.info("cross-encoder in %s was trained with these settings: reused", model_dir)
        ds.notes.append(ce_note(settings))
        return model_dir
    for set_name in ds.eval_sets:  # their predictions came from another model under the same name
        shutil.rmtree(out / set_name / "cross-encoder", ignore_errors=True)
    log.info("training the %s cross-encoder on %d pairs", ds.name, len(train))
    run = train_cross_encoder(train, ds.criteria, model_dir, epochs=args.epochs, max_length=ds.ce_max_length,
                              seed=SEED, dev_pairs=dev, device="cpu")
    log.info("trained: %.1f pairs/s, temperature %.3f, dev %s", run.train_pairs_per_s, run.temperature, run.dev)
    (model_dir / CE_SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    ds.notes.append(ce_note(settings))
    return model_dir


def ce_note(settings: dict) -> str:
    """The cross-encoder's training settings, for the table's notes."""
    s = {key: settings.get(key, "?") for key in ("epochs", "max_length", "train_pairs", "dev_pairs")}
    return (f"cross-encoder: MiniLM-L6, {s['epochs']} epoch(s), max_length {s['max_length']}, lr 3e-5, batch 16, "
            f"trained on {s['train_pairs']} pairs, temperature fitted on {s['dev_pairs']} held-out training pairs")


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

    model = MODELS[key] or "cross-encoder (MiniLM-L6)"
    values = [report.get(k) for k in ("accuracy", "macro_f1", "ndcg@10", "qwk", "ece", "format_error_rate")]
    rate = report.get("pairs_per_second")
    digits = 1 if rate is None or rate >= 10 else 2 if rate >= 1 else 3  # slow LMs: 0.021, not 0.0
    return [model, dataset, set_name, *(fmt(v, 3) for v in values), fmt(rate, digits),
            f"{report.get('n_judged')}" + ("" if report.get("n") == size else f" of {size} (unfinished)")]


def markdown(rows: list[list[str]], notes: list[str], args) -> str:
    from genrel.eval.markdown import md_table

    return (
        "# Quality benchmark (`python bench/quality.py`)\n\n"
        f"{time.strftime('%Y-%m-%d')}, commit {_commit()}, {os.cpu_count()} CPU cores, no GPU. "
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
