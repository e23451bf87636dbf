"""What a search gains from the shared stage cache, measured in one script.

    python benchmarks/tune_sharing.py [--trials 20] [--layer0-epochs 100]

A study of --trials trials over layers.1.units, finetune.learning_rate and
finetune.dropout (layer 0 fixed) on digits, pruning off, TPE seed 0, run twice:
(a) `aepipe tune`'s own path against one artifacts directory, (b) the same
objective with a fresh artifacts directory per trial (no sharing). Layer 0 is
pretrained for --layer0-epochs so that it takes at least half of one run's time
(the median run of (b), trial 0 left out: it also imports TensorFlow);
the script prints that share, the stages trained in each arm against
trials x stages of one run, both wall times and their ratio, and checks that the
two arms ran the same trials and that (a) trained no stage key twice.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPACE = ["layers.1.units=int:8:32", "finetune.learning_rate=float:1e-4:1e-2:log", "finetune.dropout=float:0:0.5"]


def overrides(layer0_epochs: int) -> list[str]:
    return [f"layers.0.epochs={layer0_epochs}", "layers.1.epochs=5", "head.epochs=5", "finetune.epochs=10",
            "evaluate.baseline=false", "evaluate.tsne=false"]


def shared_arm(sets, trials, root: Path):
    from aepipe.tune import report, study

    t0 = time.perf_counter()
    s, *_ = study.run_study(None, sets, SPACE, root / "shared", trials=trials, prune="none", seed=0)
    return report.trial_rows(s), time.perf_counter() - t0


def fresh_arm(sets, trials, root: Path):
    """The same objective and sampler, each trial in an empty artifacts directory."""
    import optuna

    from aepipe import config
    from aepipe.tune import report, space, trial

    base, sp = space.check_space(None, sets, space.parse_space(SPACE))
    objective = trial.Objective(None, sets, sp, "", base.name, "val_accuracy", lambda m: None)

    def fresh(t):
        objective.artifacts = str(root / f"fresh-{t.number}")
        return objective(t)

    s = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                            pruner=optuna.pruners.NopPruner())
    t0 = time.perf_counter()
    s.optimize(fresh, n_trials=trials)
    assert config.load(None, sets).name == base.name
    return report.trial_rows(s), time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--layer0-epochs", type=int, default=60)
    args = ap.parse_args()
    import optuna

    from aepipe.tune import report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sets = overrides(args.layer0_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fresh_rows, fresh_wall = fresh_arm(sets, args.trials, root)
        shared_rows, shared_wall = shared_arm(sets, args.trials, root)
    per_run = len(fresh_rows[0]["stages"])
    # trial 0 also pays TensorFlow's import inside its first stage: measure one run on the others
    later = fresh_rows[1:] or fresh_rows
    layer0 = statistics.median(s["seconds"] for r in later for s in r["stages"] if s["name"] == "pretrain-0")
    run = statistics.median(r["seconds"] for r in later)
    share = layer0 / run
    same = [r["params"] for r in fresh_rows] == [r["params"] for r in shared_rows]
    counts = report.trained_counts(shared_rows)
    trained = {arm: sum(r["trained"] for r in rows) for arm, rows in (("shared", shared_rows), ("fresh", fresh_rows))}
    best = {arm: max(r["value"] for r in rows) for arm, rows in (("shared", shared_rows), ("fresh", fresh_rows))}
    print(f"study: {args.trials} trials over {', '.join(SPACE)}; {' '.join(sets)}; TPE seed 0, pruning off")
    print(f"one run (median of trials 1.., fresh dir): {run:.1f} s, of which layer-0 pretraining "
          f"{layer0:.1f} s ({100 * share:.0f} %)")
    print(f"(a) one shared artifacts dir: {shared_wall:.1f} s, {trained['shared']} stages trained "
          f"of {args.trials} x {per_run} = {args.trials * per_run}; best val_accuracy {100 * best['shared']:.2f} %")
    print(f"(b) a fresh dir per trial:    {fresh_wall:.1f} s, {trained['fresh']} stages trained; "
          f"best val_accuracy {100 * best['fresh']:.2f} %")
    print(f"ratio (b)/(a) wall: {fresh_wall / shared_wall:.2f}x")
    print(f"same trials in both arms: {same}; stage keys trained twice in (a): "
          f"{sum(c > 1 for c in counts.values())} (of {len(counts)} distinct stages)")


if __name__ == "__main__":
    main()
