#!/usr/bin/env bash
# Every performance figure of the README in one run, each next to its reference,
# written to benchmarks/results/<UTC stamp>-<short commit>.md with the machine,
# the commit and the exact command of every figure (see benchmarks/results/README.md).
#   AEPIPE_MNIST=/path/to/mnist.npz bash benchmarks/run_all.sh [seed004.py options]
# AEPIPE_BENCH_PIPELINES: space-separated pipeline files whose accuracy runs
# (default pipelines/mnist.toml; set it empty to skip the accuracy runs).
# AEPIPE_BENCH_SET: space-separated K=V overrides for every accuracy run, e.g.
# "evaluate.replicates=5" (pretrained vs random init over 5 seeds) or "data.labels=100".
# AEPIPE_BENCH_SPEED=0 skips the speed and small-table benchmarks (accuracy runs only).
# AEPIPE_BENCH_TOOLS=1 adds the tracking-overhead, tune-sharing and remote-store benchmarks.
# AEPIPE_BENCH_CURVE=1 adds the few-label curve of pipelines/mnist-few.toml
# (benchmarks/label_curve.py: one pretraining; 600 labels first, a cold single
# run; 3 label draws at 100; AEPIPE_BENCH_CURVE_LABELS picks the label counts).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3

commit=$(git rev-parse --short HEAD)
now=$(date -u +%s)
out="benchmarks/results/$(date -u -d "@$now" +%Y%m%dT%H%M%SZ)-$commit.md"
mkdir -p benchmarks/results
dirty="" envs="" args="" gpu=""
[ -z "$(git status --porcelain --untracked-files=no)" ] || dirty=" (dirty)"
for v in AEPIPE_MNIST AEPIPE_BENCH_PIPELINES AEPIPE_BENCH_SET AEPIPE_BENCH_SPEED AEPIPE_BENCH_TOOLS AEPIPE_BENCH_CURVE AEPIPE_BENCH_CURVE_LABELS; do  # the variables that change figures
    if [ "$v" = AEPIPE_MNIST ]; then  # this machine's path, not part of a figure: a placeholder to fill in
        [ -z "${!v+set}" ] || envs+="AEPIPE_MNIST=/path/to/mnist.npz "
    else
        [ -z "${!v+set}" ] || envs+="$v=$(printf '%q' "${!v}") "
    fi
done
[ "$#" -eq 0 ] || args=$(printf ' %q' "$@")
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | paste -sd, -) || true
{
    echo "# Benchmarks of $commit$dirty, $(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "- run: \`${envs}bash benchmarks/run_all.sh$args\`"
    echo "- CPU: $(lscpu 2>/dev/null | grep 'Model name' | sed 's/^Model name:[[:space:]]*//' || echo unknown)"
    echo "- cores (nproc): $(nproc)"
    echo "- GPU: ${gpu:-none}"
    echo "- bfloat16 (precision = \"auto\"): $(python -c 'from aepipe.config.hardware import native_bfloat16; print("native" if native_bfloat16() else "not native: auto is float32")' 2>/dev/null || echo unknown)"
    echo "- $(python --version 2>&1)"
    echo "- $(python -c 'import keras, tensorflow as tf; print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")' 2>/dev/null || echo "TensorFlow/Keras: not importable")"
    echo
} > "$out"
# shellcheck disable=SC2064  # $out is fixed from here on
trap "[ \$? -eq 0 ] || echo 'benchmarks stopped early; partial results: $out' >&2" EXIT

record() { python benchmarks/record.py "$out" -- "$@"; echo; }
if [ "${AEPIPE_BENCH_SPEED-1}" != 0 ]; then
    record python benchmarks/seed004.py "$@"
    record python benchmarks/throughput.py
    record python benchmarks/overhead.py
    record python benchmarks/small_tables.py
    record python benchmarks/estimator_speed.py  # StackedAutoencoderClassifier() vs MLPClassifier() in a 5-fold CV: time ratio
    record python benchmarks/minimal_table.py  # a two-line [[layers]] pipeline on a new table vs MLPClassifier()
fi
if [ "${AEPIPE_BENCH_TOOLS-0}" = 1 ]; then
    record python benchmarks/tracking_overhead.py --repeats 3 --epochs 3
    record python benchmarks/tune_sharing.py
    record python benchmarks/remote_store.py  # a moto S3 server on this machine (pip install 'aepipe[test]')
fi
if [ "${AEPIPE_BENCH_CURVE-0}" = 1 ]; then  # one store: the pretraining is trained once
    curve_store=$(mktemp -d -t aepipe-curve-XXXXXXXX)
    record python benchmarks/label_curve.py --labels "${AEPIPE_BENCH_CURVE_LABELS:-600,100,1000,3000}" \
        --artifacts "$curve_store"
    cp "$curve_store/sweeps/label-curve/labels.png" "${out%.md}-labels.png"  # the README shows it from here
fi
read -r -a pipelines <<< "${AEPIPE_BENCH_PIPELINES-pipelines/mnist.toml}"
read -r -a sets <<< "${AEPIPE_BENCH_SET-}"
set_args=()
for kv in "${sets[@]}"; do set_args+=(--set "$kv"); done
for p in "${pipelines[@]}"; do
    record python benchmarks/pipeline_accuracy.py "$p" "${set_args[@]}"
done
echo "results: $out"
