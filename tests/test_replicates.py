"""evaluate.replicates: several independent pretrained/random-init pairs, and
the finding over seeds (mean difference, t interval, paired t test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clirun import TINY, aepipe, run_json, statuses
from scipy import stats

from aepipe import config
from aepipe.analysis.replicates import across_seeds
from aepipe.engine.plan import Fingerprint, plan

PAIRS = ("--set", "evaluate.baseline=true")


def test_the_finding_over_seeds_is_a_paired_t_test_with_its_interval():
    a, b = [0.971, 0.975, 0.969, 0.980], [0.968, 0.970, 0.971, 0.972]
    s = across_seeds(a, b, [0, 1, 2, 3])
    d = (np.array(a) - b) * 100
    assert s["mean_difference"] == pytest.approx(d.mean())
    assert s["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    lo, hi = stats.t.interval(0.95, 3, loc=d.mean(), scale=stats.sem(d))
    assert s["ci95"] == pytest.approx([lo, hi])
    assert (s["helped"], s["hurt"], s["verdict"]) == (3, 1, "within noise")
    assert "helped in 3 and hurt in 1 of 4 seeds" in s["sentence"]
    sure = across_seeds([0.9, 0.91, 0.92], [0.8, 0.8, 0.81], [5, 6, 7])
    assert sure["verdict"] == "helped" and sure["sentence"].startswith("pretraining helped in 3 of 3 seeds")
    error = across_seeds([2.0, 2.1, 2.05], [3.0, 3.2, 3.1], [0, 1, 2], lower_is_better=True, scale=1, unit="SE")
    assert error["verdict"] == "helped" and error["mean_difference"] == pytest.approx(1.05)
    same = across_seeds([0.9, 0.9], [0.8, 0.8], [0, 1])  # no spread: the sign is not in doubt
    assert same["p_value"] == 0.0 and same["verdict"] == "helped"


def test_one_replicate_speaks_of_one_pair_of_nets_not_of_pretraining():
    s = across_seeds([0.95], [0.96], [0])
    assert s["verdict"] == "one pair" and s["p_value"] is None and s["ci95"] is None
    assert "one pair of nets, not a finding about pretraining" in s["sentence"]
    assert "lost to" in s["sentence"]


def test_replicate_r_is_the_pipeline_at_seed_plus_r():
    spec = config.load(None, ["evaluate.replicates=3", "evaluate.baseline=true", "unroll.epochs=0"])
    stages = plan(spec, Fingerprint("fp", "fp"))
    names = [s.name for s in stages]
    assert names[:6] == ["pretrain-0", "pretrain-1", "head", "finetune", "baseline", "evaluate"]
    assert "tsne" in names and "tsne@1" not in names  # t-SNE: replicate 0 only
    assert {s.replicate for s in stages} == {0, 1, 2}
    by_name = {s.name: s for s in stages}
    seed1 = {s.name: s for s in plan(config.load(None, ["seed=1", "evaluate.baseline=true", "unroll.epochs=0"]), Fingerprint("fp", "fp"))}
    for name in ("pretrain-0", "pretrain-1", "head", "finetune", "baseline", "evaluate"):
        assert by_name[f"{name}@1"].key == seed1[name].key and by_name[f"{name}@1"].seed == seed1[name].seed
        assert by_name[f"{name}@1"].key != by_name[name].key
    assert by_name["finetune@2"].upstream[-1] == "head@2"
    one = plan(config.load(None, ["evaluate.baseline=true", "unroll.epochs=0"]), Fingerprint("fp", "fp"))
    assert [s.key for s in one] == [by_name[s.name].key for s in one]  # the field keys nothing itself


@pytest.mark.slow
def test_replicates_train_once_share_with_seeds_and_reach_every_face(tmp_path):
    art = tmp_path / "art"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    two = run_json(art, *TINY, *PAIRS, "--set", "evaluate.replicates=2")
    three = run_json(art, *TINY, *PAIRS, "--set", "evaluate.replicates=3", "--mlflow", uri)
    st = statuses(three)
    assert {n for n, v in st.items() if v != "cached"} == {f"{n}@2" for n in
                                                          ("pretrain-0", "pretrain-1", "head", "finetune",
                                                           "baseline", "evaluate")}
    finding = three["metrics"]["replicates"]["classifier"]
    assert finding["n"] == 3 and finding["seeds"] == [0, 1, 2]
    per = three["metrics"]["replicates"]["per_replicate"]
    assert [r["comparison"]["n"] for r in per] == [three["metrics"]["comparison"]["n"]] * 3  # each keeps McNemar
    assert finding["pretrained"][:2] == two["metrics"]["replicates"]["classifier"]["pretrained"]
    report = Path(three["run_dir"], "report.md").read_text()
    assert "## Over seeds (3 replicates)" in report and finding["sentence"] in report
    # the plain output's summary line
    p = aepipe("run", "--artifacts", art, *TINY, *PAIRS, "--set", "evaluate.replicates=3")
    assert p.returncode == 0 and f"classifier, over seeds 0-2: {finding['sentence']}" in p.stdout
    # replicate 1 of seed 0 is replicate 0 of seed 1: nothing to train
    assert set(statuses(run_json(art, *TINY, *PAIRS, "--set", "seed=1")).values()) == {"cached"}
    runs = json.loads(aepipe("runs", "--artifacts", art, "--json").stdout)
    newest = next(r for r in runs["runs"] if Path(r["path"]).name == Path(three["run_dir"]).name)
    assert newest["verdict"] == f"{finding['verdict']} (over 3 seeds)" and newest["p_value"] == finding["p_value"]
    # a sweep over those seeds is the same finding, from the same stages
    sweep = aepipe("sweep", "--artifacts", art, "--json", "-q", *TINY, *PAIRS, "--grid", "seed=0,1,2")
    out = json.loads(sweep.stdout)
    assert {s["status"] for v in out["variants"] for s in v["stages"]} == {"cached"}
    assert out["over_seeds"][0]["mean_difference"] == pytest.approx(finding["mean_difference"])
    assert out["over_seeds"][0]["sentence"] == finding["sentence"]
    # aepipe diff and MLflow carry the finding's numbers
    diff = aepipe("diff", two["run_dir"], three["run_dir"], "--artifacts", art, "--json")
    metrics = {m["metric"]: m for m in json.loads(diff.stdout)["metrics"]}
    assert metrics["replicates.classifier.n"]["b"] == 3.0
    assert metrics["replicates.classifier.mean_difference"]["b"] == pytest.approx(finding["mean_difference"])
    import mlflow

    client = mlflow.MlflowClient(uri)
    run = client.search_runs([e.experiment_id for e in client.search_experiments()],
                             "attributes.run_name = 'digits'")[0]
    assert run.data.metrics["replicates.classifier.p_value"] == pytest.approx(finding["p_value"])
