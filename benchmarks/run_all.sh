#!/usr/bin/env bash
# Every performance figure of the README in one run, each next to its reference.
#   AEPIPE_MNIST=../shared/data/mnist.npz bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/seed004.py "$@"
echo
python benchmarks/throughput.py
echo
python benchmarks/overhead.py
