"""Clustering accuracy of a pipeline's cluster stage, beside k-means on the inputs and on PCA.

    AEPIPE_MNIST=/path/to/mnist.npz python benchmarks/cluster_accuracy.py pipelines/mnist-cluster.toml \
        [--artifacts DIR] [--png OUT.png] [--set KEY=VALUE ...]

Runs ``aepipe cluster PIPELINE --json`` (cached stages are reused: the build
seconds below are each stage's own, from its manifest, so a warm rerun still
reports the cold cost) and prints, for the pipeline's clustering, its
random-init twin, k-means on the raw inputs and k-means on PCA of the codes'
width: accuracy (Hungarian), NMI and ARI on the test rows through predict
(rows the clustering never saw), on the training rows it was fitted on, and on
all rows together (training assignments + test predictions). Labels only
score. Record it with ``benchmarks/record.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline")
    ap.add_argument("--artifacts", default=None, help="a kept store (default: a fresh temporary one, a cold run)")
    ap.add_argument("--png", default=None, help="copy the run's clusters.png here")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a pipeline override, as `aepipe cluster --set` takes it (repeatable)")
    args = ap.parse_args(argv)
    art = args.artifacts or tempfile.mkdtemp(prefix="aepipe-cluster-bench-")
    aepipe = str(Path(sys.executable).with_name("aepipe"))
    sets = [a for kv in args.overrides for a in ("--set", kv)]
    p = subprocess.run([aepipe, "cluster", args.pipeline, "--artifacts", art, "--json", *sets], capture_output=True,
                       text=True)
    if p.returncode:
        print(p.stderr[-3000:], file=sys.stderr)
        return p.returncode
    result = json.loads(p.stdout)
    from aepipe import config
    from aepipe.analysis.clustering import label_scores, stage_assignments
    from aepipe.data.sources import load

    spec = config.load(args.pipeline, args.overrides)
    data = load(spec.data)
    paths = {s["name"]: s["path"] for s in result["stages"]}
    runs = stage_assignments(paths["cluster"])
    if "cluster-baseline" in paths:
        runs["random_init"] = stage_assignments(paths["cluster-baseline"])["clusters"]
    y_all = np.concatenate([data.y_train, data.y_test])
    print(f"pipeline: {args.pipeline} ({spec.cluster.method}{' + UMAP' if spec.cluster.embed == 'umap' else ''}, "
          f"{spec.cluster.n_clusters} clusters); fitted on {len(data.y_train)} training rows, "
          f"{len(data.y_test)} test rows assigned through predict")
    print("\n| clustering | rows | accuracy | NMI | ARI |\n|---|---|---|---|---|")
    for name, split in runs.items():
        both = np.concatenate([split["train"], split["test"]])
        for rows, clusters, y in (("test (predict)", split["test"], data.y_test),
                                  ("train (fitted)", split["train"], data.y_train), ("all", both, y_all)):
            s = label_scores(clusters, y)
            print(f"| {name} | {rows} ({len(y)}) | {s['accuracy']:.4f} | {s['nmi']:.4f} | {s['ari']:.4f} |")
    metrics = result["metrics"]
    built = {}
    for s in result["stages"]:
        manifest = json.loads((Path(s["path"]) / "manifest.json").read_text())
        built[s["name"]] = round(manifest.get("seconds", 0.0), 1)
    print("\nstage build seconds (cold cost, from each stage's manifest):", json.dumps(built))
    print(f"total cold seconds: {sum(built.values()):.0f}")
    cmp = metrics.get("clustering", {}).get("comparison")
    if cmp:
        print(f"pretrained vs random init (test rows, clusters named on training rows): {cmp['verdict']}, "
              f"difference {cmp['accuracy_difference']:+.4f}, 95 % interval {cmp['ci95'][0]:+.4f} to "
              f"{cmp['ci95'][1]:+.4f}, McNemar p = {cmp['p_value']:.3g}")
    if args.png:
        shutil.copyfile(Path(result["run_dir"]) / "clusters.png", args.png)
        print(f"clusters.png copied to {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
