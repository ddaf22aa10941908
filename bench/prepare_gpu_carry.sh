#!/usr/bin/env bash
# What a GPU machine without network needs beside the working tree for bench_gpu.py --all:
# the wheels of the packages its image lacks (faiss-cpu for the kNN, lightly for the parity
# check) in .whl/, and CIFAR-10 in .devdata/; for bench_ddp.py overhead, the tree before
# distributed training came in, in .devdata/before/ (the copy there may have no git history).
# Both folders are git-ignored; carry them.
# There, before the benchmark:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
ARCHIVE=${CIFAR10:-../shared/data/cifar10-jpg.tar.gz}
mkdir -p .whl .devdata
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "lightly==1.6.0" "faiss-cpu==$("$PY" -c 'import faiss; print(faiss.__version__)')"
cp -n "$ARCHIVE" .devdata/
BEFORE=$(sed -n 's/^FIRST_DDP_COMMIT = "\(.*\)"$/\1/p' bench/bench_ddp.py)^
rm -rf .devdata/before && mkdir -p .devdata/before
git archive "$BEFORE" | tar -x -C .devdata/before
du -sh .whl .devdata
