"""Did pretraining help, over seeds: the replicates' pairs summarised.

One pair of nets (pretrained vs random init) answers "did this pretraining
beat this random start?"; McNemar's test covers which test rows were drawn,
not how results move between training seeds, which is usually the larger
spread. ``evaluate.replicates = N`` trains N independent pairs; this module
turns their figures into one finding:

- the mean difference (pretrained minus random init, in accuracy points, or
  random init minus pretrained in squared error, so positive always means
  pretraining helped), with its 95 % t interval;
- a paired t test over the replicates (``scipy.stats.ttest_rel``). Not the
  Wilcoxon signed-rank test: with 3 to 5 pairs its exact two-sided p-value
  cannot go below 0.25 (3) or 0.0625 (5), so it could never call a difference;
- how many seeds went each way, and a sentence saying so.

With one replicate the sentence speaks of this pair of nets, not of pretraining.
Pure numpy and scipy: the report, the CLI and ``aepipe diff`` share it without
TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05


def across_seeds(pretrained, random_init, seeds, *, lower_is_better: bool = False, unit: str = "points",
                 scale: float = 100.0) -> dict:
    """The replicates' pairs as one finding: ``{n, seeds, pretrained, random_init,
    differences, mean_difference, ci95, test, p_value, helped, hurt, verdict, sentence}``.

    ``scale`` turns differences into ``unit`` (100: accuracy as points)."""
    a, b = np.asarray(pretrained, dtype=float), np.asarray(random_init, dtype=float)
    d = (b - a if lower_is_better else a - b) * scale
    n, mean = len(d), float(np.mean(d))
    helped, hurt = int(np.sum(d > 0)), int(np.sum(d < 0))
    out = {"n": n, "seeds": [int(s) for s in seeds], "pretrained": a.tolist(), "random_init": b.tolist(),
           "differences": d.tolist(), "unit": unit, "mean_difference": mean, "helped": helped, "hurt": hurt,
           "test": "paired t test over replicates", "ci95": None, "p_value": None}
    if n >= 2:
        from scipy import stats

        sd = float(np.std(d, ddof=1))
        half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
        out["ci95"] = [mean - half, mean + half]
        out["ci95_low"], out["ci95_high"] = out["ci95"]  # scalars: MLflow and `aepipe diff` log numbers
        # identical differences have no spread: the t statistic is undefined, the sign is not in doubt
        out["p_value"] = (float(stats.ttest_rel(a, b).pvalue) if sd > 0 else (0.0 if mean else 1.0))
    p = out["p_value"]
    out["verdict"] = ("one pair" if n == 1 else "within noise" if p >= ALPHA else
                      "helped" if mean > 0 else "hurt")
    out["sentence"] = sentence(out)
    return out


def sentence(s: dict) -> str:
    """The finding in words, e.g. "pretraining helped in 5 of 5 seeds: +0.41 points (95 % interval
    +0.20 to +0.62; paired t test over seeds p = 0.004)"."""
    unit, n = s["unit"], s["n"]
    if n == 1:
        sign = "beat" if s["mean_difference"] > 0 else "lost to" if s["mean_difference"] < 0 else "tied"
        return (f"this pretrained net {sign} its random-init twin by {abs(s['mean_difference']):.2f} {unit}: "
                "one pair of nets, not a finding about pretraining (set evaluate.replicates = 3 or more)")
    lo, hi = s["ci95"]
    spread = (f"{s['mean_difference']:+.2f} {unit} (95 % interval {lo:+.2f} to {hi:+.2f}; "
              f"paired t test over seeds p = {s['p_value']:.2g})")
    if s["verdict"] == "within noise":
        return (f"pretraining made no difference the seeds can tell from chance: helped in {s['helped']} "
                f"and hurt in {s['hurt']} of {n} seeds, {spread}")
    count = s["helped"] if s["verdict"] == "helped" else s["hurt"]
    return f"pretraining {s['verdict']} in {count} of {n} seeds: {spread}"


def replicate_findings(per_replicate: list[dict]) -> dict:
    """From each replicate's metrics (``{seed, test_accuracy, baseline_test_accuracy,
    reconstruction}``): the classifier's finding and, where the pipeline unrolls
    with its random-init twin, the deep autoencoder's (squared error per example)."""
    out = {"n": len(per_replicate), "per_replicate": per_replicate}
    seeds = [r["seed"] for r in per_replicate]
    if all(r.get("baseline_test_accuracy") is not None for r in per_replicate):
        out["classifier"] = across_seeds([r["test_accuracy"] for r in per_replicate],
                                         [r["baseline_test_accuracy"] for r in per_replicate], seeds)
    deep = [r.get("reconstruction") or {} for r in per_replicate]
    if all(d.get("unroll") is not None and d.get("unroll_random_init") is not None for d in deep):
        out["unroll"] = across_seeds([d["unroll"] for d in deep], [d["unroll_random_init"] for d in deep], seeds,
                                     lower_is_better=True, unit="squared error per image", scale=1.0)
    return out


def findings_lines(m: dict) -> list[str]:
    """report.md's section: one row a replicate, then the finding in words."""
    f = m.get("replicates")
    if not f or not (f.get("classifier") or f.get("unroll")):
        return []
    lines = [f"## Over seeds ({f['n']} replicate{'s' if f['n'] != 1 else ''})", ""]
    c, u = f.get("classifier"), f.get("unroll")
    head = ["seed"] + (["pretrained", "random init", "McNemar p"] if c else []) + (
        ["unrolled SE", "twin SE"] if u else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(f["per_replicate"]):
        row = [str(r["seed"])]
        if c:
            p = (r.get("comparison") or {}).get("p_value")
            row += [f"{100 * c['pretrained'][i]:.2f} %", f"{100 * c['random_init'][i]:.2f} %",
                    "" if p is None else f"{p:.3g}"]
        if u:
            row += [f"{u['pretrained'][i]:.3f}", f"{u['random_init'][i]:.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if c:
        lines += [f"Classifier: {c['sentence']}.", ""]
    if u:
        lines += [f"Unrolled autoencoder: {u['sentence']}.", ""]
    return lines


def sweep_findings(rows: list[dict]) -> list[dict]:
    """``aepipe sweep --grid seed=...``: the finding over the seeds of each point
    of the rest of the grid (``{"point": {key: value}, **across_seeds}``), from
    rows with ``grid``, ``test_accuracy`` and ``baseline_test_accuracy``."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if "seed" in row["grid"] and row.get("baseline_test_accuracy") is not None:
            point = tuple((k, v) for k, v in row["grid"].items() if k != "seed")
            groups.setdefault(point, []).append(row)
    out = []
    for point, group in groups.items():
        group = sorted(group, key=lambda r: int(r["grid"]["seed"]))
        if len(group) > 1:
            out.append({"point": dict(point), **across_seeds([r["test_accuracy"] for r in group],
                                                             [r["baseline_test_accuracy"] for r in group],
                                                             [int(r["grid"]["seed"]) for r in group])})
    return out
