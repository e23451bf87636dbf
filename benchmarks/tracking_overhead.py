"""What MLflow tracking adds to a digits run, measured against the same run untracked.

    python benchmarks/tracking_overhead.py [--repeats 3] [--epochs 5] [--cached]

Each repeat runs `aepipe run` twice as fresh processes, cold (a fresh artifacts
directory each, so every stage trains), once plain and once with
`--mlflow sqlite:///...`, interleaved so machine load hits both alike. The
tracking database is created once beforehand (as a team's database would
exist already); its one-time creation is printed apart. ``--cached``: every
run reuses one prebuilt artifacts directory, so both train nothing and the
difference is tracking alone (the same work: every stage's history is logged). Prints medians of
wall time and of the child's CPU time (user + sys): on a machine shared with
other jobs the wall time swings with their load, the CPU time much less.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
ENV.pop("MLFLOW_TRACKING_URI", None)
AEPIPE = [sys.executable, "-m", "aepipe.cli"]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wall(cmd) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh process."""
    t, c = time.perf_counter(), cpu()
    subprocess.run(cmd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - t, cpu() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5, help="pretrain and finetune epochs (head: half)")
    ap.add_argument("--cached", action="store_true", help="rerun one prebuilt artifacts directory")
    args = ap.parse_args()
    sets = ["--set", f"pretrain.epochs={args.epochs}", "--set", f"head.epochs={max(1, args.epochs // 2)}",
            "--set", f"finetune.epochs={args.epochs}"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        create = wall([sys.executable, "-c", f"import mlflow; mlflow.MlflowClient({uri!r}).search_experiments()"])[0]
        if args.cached:
            wall([*AEPIPE, "-q", "run", "--artifacts", str(tmp / "built"), *sets])
        art = (lambda kind, i: tmp / "built") if args.cached else (lambda kind, i: tmp / f"{kind}{i}")
        plain, tracked = [], []
        for i in range(args.repeats):
            plain.append(wall([*AEPIPE, "-q", "run", "--artifacts", str(art("plain", i)), *sets]))
            tracked.append(wall([*AEPIPE, "-q", "run", "--artifacts", str(art("tracked", i)), *sets,
                                 "--mlflow", uri]))
    print(f"digits run ({' '.join(sets[1::2])}), {'cached' if args.cached else 'cold'}, "
          f"{args.repeats} repeats interleaved, medians:")
    for i, what in enumerate(("wall", "CPU")):
        a, b = [x[i] for x in plain], [x[i] for x in tracked]
        p, t = statistics.median(a), statistics.median(b)
        print(f"  {what:4} untracked              {p:6.2f} s   (each: {', '.join(f'{x:.2f}' for x in a)})")
        print(f"  {what:4} --mlflow sqlite:///... {t:6.2f} s   (each: {', '.join(f'{x:.2f}' for x in b)})")
        print(f"  {what:4} overhead               {t - p:+6.2f} s   ratio {t / p:.3f}")
    print(f"  (one-time: creating the tracking database {create:.2f} s, not in the figures above)")


if __name__ == "__main__":
    main()
