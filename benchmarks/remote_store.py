"""What an S3-compatible artifact store costs, against a local directory, in one script.

    python benchmarks/remote_store.py [--repeats 3] [--trials 6]

A moto S3 server on 127.0.0.1 (started here) stands in for the bucket.

1. Cached runs: `aepipe run pipelines/digits.toml` is built once into
   s3://bench/digits (its local cache doubling as a plain artifacts directory),
   then timed --repeats times each (median wall seconds, a fresh process each):
   against that directory (the reference), against the bucket with the cache
   warm, and against the bucket with an empty cache (every stage downloaded and
   verified). Target: warm remote <= 1.5x the local directory.
2. A 2-worker dask `aepipe tune` of --trials trials on digits, each worker with
   its own cache and the bucket shared, against the same study (same sampler
   seed) with both workers on one local directory: wall seconds, stages trained,
   and whether any stage key was trained twice.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AEPIPE = str(Path(sys.executable).with_name("aepipe"))
PIPELINE = "pipelines/digits.toml"
SPACE = ["layers.1.units=int:8:32", "finetune.learning_rate=float:1e-4:1e-2:log"]
TUNE_SETS = ["pretrain.epochs=10", "head.epochs=5", "finetune.epochs=10", "evaluate.baseline=false",
             "evaluate.tsne=false"]


def start_s3() -> str:
    """A moto server on a free port; the AWS variables of this process (and its children) point at it."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    boto3.client("s3").create_bucket(Bucket="bench")
    return f"http://127.0.0.1:{port}"


def timed_run(artifacts: str, cache: Path | None = None) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **({"AEPIPE_CACHE": str(cache)} if cache else {})}
    t0 = time.perf_counter()
    p = subprocess.run([AEPIPE, "run", PIPELINE, "-q", "--json", "--artifacts", artifacts], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"aepipe run --artifacts {artifacts} failed: {p.stderr.strip()}")
    return seconds


def cached_runs(tmp: Path, repeats: int) -> None:
    url, warm = "s3://bench/digits", tmp / "cache-warm"
    cold_build = timed_run(url, warm)
    local = [timed_run(str(warm)) for _ in range(repeats)]  # the cache is a plain artifacts directory
    remote_warm = [timed_run(url, warm) for _ in range(repeats)]
    remote_cold = [timed_run(url, tmp / f"cache-cold-{i}") for i in range(repeats)]
    ref = statistics.median(local)
    stages = len(list((warm / "stages").glob("*/manifest.json")))
    print(f"## 1. cached `aepipe run {PIPELINE}` ({stages} stages), median of {repeats}, a process each\n")
    print(f"build into the bucket (trains every stage, publishes it): {cold_build:.1f} s\n")
    print("| store | wall s (median) | runs | vs local directory |")
    print("|---|---|---|---|")
    for label, xs in (("local directory (reference)", local), ("s3, local cache warm", remote_warm),
                      ("s3, local cache empty", remote_cold)):
        print(f"| {label} | {statistics.median(xs):.2f} | {', '.join(f'{x:.2f}' for x in xs)} | "
              f"{statistics.median(xs) / ref:.2f}x |")
    verdict = "met" if statistics.median(remote_warm) <= 1.5 * ref else "NOT met"
    print(f"\ntarget (warm remote <= 1.5x local): {verdict}\n")


def tune_arm(artifacts: str, trials: int, caches: Path | None):
    """One study on a fresh 2-worker LocalCluster; ``caches``: a cache per worker under it."""
    from dask.distributed import Client, LocalCluster

    from aepipe.tune import report, study

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        if caches is not None:
            base = str(caches)

            def own_cache(dask_worker):
                os.environ["AEPIPE_CACHE"] = f"{base}/{dask_worker.name}"

            client.run(own_cache)
        t0 = time.perf_counter()
        s, *_ = study.run_study(None, TUNE_SETS, SPACE, artifacts, trials=trials, jobs=2, backend="dask",
                                scheduler=cluster.scheduler_address, prune="none", seed=0, heartbeat=2)
        seconds = time.perf_counter() - t0
    rows = report.trial_rows(s)
    counts = report.trained_counts(rows)
    return seconds, sum(counts.values()), max(counts.values(), default=0), len(rows)


def tune_runs(tmp: Path, trials: int) -> None:
    os.environ["AEPIPE_CACHE"] = str(tmp / "tune-main-cache")  # the coordinating process's own
    local = tune_arm(str(tmp / "tune-local"), trials, None)
    remote = tune_arm("s3://bench/tune", trials, tmp / "tune-worker-caches")
    print(f"## 2. `aepipe tune` on digits, {trials} trials, 2 dask workers, TPE seed 0, no pruning\n")
    print(f"`--set {' --set '.join(TUNE_SETS)}`, `--space {' --space '.join(SPACE)}`\n")
    print("| store | wall s | trials | stages trained | most times one key trained |")
    print("|---|---|---|---|---|")
    for label, (seconds, trained, most, n) in (("one local directory (reference)", local),
                                                ("s3, a cache per worker", remote)):
        print(f"| {label} | {seconds:.1f} | {n} | {trained} | {most} |")
    print(f"\nremote / local wall time: {remote[0] / local[0]:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--skip-tune", action="store_true", help="Part 1 only.")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start_s3()
    print("S3 server: moto (ThreadedMotoServer) on 127.0.0.1, this machine\n")
    with tempfile.TemporaryDirectory(prefix="aepipe-remote-bench-") as tmp:
        cached_runs(Path(tmp), args.repeats)
        if not args.skip_tune:
            tune_runs(Path(tmp), args.trials)


if __name__ == "__main__":
    main()
