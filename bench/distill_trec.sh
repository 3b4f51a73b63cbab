#!/usr/bin/env bash
# Distillation on TREC DL 2020, end to end on CPU: a teacher labels part of train.jsonl with soft labels,
# a MiniLM cross-encoder student learns them mixed with the gold labels of the whole train.jsonl,
# `genrel eval` scores it on dev.jsonl (torch, then ONNX), then the speed and serving benches run.
#
#   bash bench/distill_trec.sh [WORK_DIR]        # default bench/results/distill-trec (git-ignored)
#
# Sizes are environment variables: TEACHER (default smollm2-135m, zero-shot: no RL model on a CPU
# machine), LABEL_PAIRS (48), SAMPLES (2), MAX_NEW_TOKENS (32), EPOCHS (1), MAX_LENGTH (192).
# The zero-shot SmolLM2 teacher reads ~0.1-0.2 pairs/s here, so it labels a slice; on a GPU use the
# RL model, --backend vllm and the whole file. Every step resumes when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${SHARED_DATA:-../shared/data}/trec-dl20
WORK=${1:-bench/results/distill-trec}
TEACHER=${TEACHER:-smollm2-135m}
mkdir -p "$WORK"

genrel label --model "$TEACHER" --data "$DATA/train.jsonl" --criteria trec-dl --out "$WORK/labels.jsonl" \
  --samples "${SAMPLES:-2}" --max-new-tokens "${MAX_NEW_TOKENS:-32}" --limit "${LABEL_PAIRS:-48}" --batch-size 8
genrel distill --student cross-encoder --labels "$WORK/labels.jsonl" --gold "$DATA/train.jsonl" \
  --criteria trec-dl --out "$WORK/student" --epochs "${EPOCHS:-1}" --set max_length="${MAX_LENGTH:-192}"
genrel eval --model "$WORK/student" --data "$DATA/dev.jsonl" --criteria trec-dl --out "$WORK/eval-torch" --batch-size 32
genrel export onnx "$WORK/student" --out "$WORK/student-onnx"
genrel eval --model "$WORK/student-onnx" --backend onnx --data "$DATA/dev.jsonl" --criteria trec-dl \
  --out "$WORK/eval-onnx" --batch-size 32
python bench/cross_encoder_speed.py "$WORK/student" --data "$DATA/dev.jsonl" --limit 256
python bench/serve_load.py --model "$WORK/student-onnx" --backend onnx --seconds 20 --requests 200
