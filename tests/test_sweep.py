"""Sweeps: grid expansion, the results table, and shared prefixes trained once
(in-process with loky's sequential path; on a dask LocalCluster when slow)."""

import importlib.util
import json
from collections import Counter

import pytest

from aepipe.pipeline import sweep
from aepipe.errors import SpecError

from conftest import FAST

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="dask.distributed is not installed (pip install 'aepipe[dask]')")
FAST_SETS = [v for v in FAST if v != "--set"]


def test_grid_expands_to_every_combination_first_key_slowest():
    grid = sweep.parse_grid(["layers.0.units=8,16", "pretrain.noise.stddev=0.1,0.3,0.5"])
    points = sweep.expand(grid)
    assert len(points) == 6
    assert points[0] == {"layers.0.units": "8", "pretrain.noise.stddev": "0.1"}
    assert points[3] == {"layers.0.units": "16", "pretrain.noise.stddev": "0.1"}
    assert len({sweep.variant_name("p", p) for p in points}) == 6
    assert sweep.variant_name("p", points[0]) == sweep.variant_name("p", dict(points[0]))  # stable


@pytest.mark.parametrize("items, message", [
    (["layers.0.units"], "--grid expects KEY=V1,V2,..., got 'layers.0.units'"),
    (["a=1", "a=2"], "--grid a is given twice"),
    (["a=1,,2"], "--grid a: empty value"),
    ([], "at least one --grid"),
])
def test_bad_grids_are_named(items, message):
    with pytest.raises(SpecError, match=message):
        sweep.parse_grid(items)


def test_every_variant_is_validated_before_anything_runs():
    with pytest.raises(SpecError, match="layers.0.units: must be a positive number, got -4"):
        sweep.variants(None, [], sweep.parse_grid(["layers.0.units=8,-4"]))


def test_table_is_sorted_by_validation_accuracy():
    rows = [{"name": n, "grid": {"k": n}, "val_accuracy": v, "test_accuracy": 0.5, "seconds": 1.0,
             "stages": [{"status": "cached"}, {"status": "trained"}]}
            for n, v in (("a", 0.8), ("b", None), ("c", 0.9))]
    ranked = sorted(rows, key=sweep._rank)
    assert [r["name"] for r in ranked] == ["c", "a", "b"]
    lines = sweep.format_table(ranked).splitlines()
    assert lines[0].split() == ["rank", "name", "k", "val_acc", "test_acc", "trained", "cached", "seconds"]
    assert lines[1].split() == ["1", "c", "c", "90.00", "50.00", "1", "1", "1.0"]
    assert lines[3].split()[3] == "n/a"


def test_cli_usage_errors(aepipe):
    result = aepipe("sweep", "--grid", "nokey", expect=2)
    assert "--grid expects KEY=V1,V2" in result.stderr
    result = aepipe("sweep", "--grid", "layers.0.units=8,16", "--scheduler", "tcp://x:1", expect=2)
    assert "--scheduler needs --backend dask" in result.stderr
    result = aepipe("sweep", "--set", "data.validation_split=0", "--grid", "layers.0.units=8,16", expect=2)
    assert "never by test accuracy" in result.stderr and "data.validation_split is 0" in result.stderr


def test_a_label_count_sweep_pretrains_once(aepipe):
    out = aepipe("sweep", "--json", "-q", *FAST, "--grid", "data.labels=100,200,400").stdout
    variants = json.loads(out)["variants"]
    trained = Counter(s["name"] for v in variants for s in v["stages"] if s["status"] == "trained")
    assert trained == {"pretrain-0": 1, "pretrain-1": 1, "head": 3, "finetune": 3, "evaluate": 3}


def test_sequential_sweep_trains_the_shared_prefix_once(aepipe):
    """Two variants that differ in the fine-tune only: the second reuses every
    pretrain stage and the head, and the table lists both."""
    out = aepipe("sweep", "--json", "-q", *FAST, "--grid", "finetune.learning_rate=0.001,0.002").stdout
    variants = json.loads(out)["variants"]
    assert len(variants) == 2 and {v["grid"]["finetune.learning_rate"] for v in variants} == {"0.001", "0.002"}
    status = {v["grid"]["finetune.learning_rate"]: {s["name"]: s["status"] for s in v["stages"]} for v in variants}
    assert status["0.001"] == dict.fromkeys(["pretrain-0", "pretrain-1", "head", "finetune", "evaluate"], "trained")
    assert status["0.002"] == {"pretrain-0": "cached", "pretrain-1": "cached", "head": "cached",
                               "finetune": "trained", "evaluate": "trained"}
    assert set(sweep.trained_counts(variants).values()) == {1}
    vals = [v["val_accuracy"] for v in variants]
    assert vals == sorted(vals, reverse=True)


@needs_dask
@pytest.mark.slow
def test_four_config_sweep_on_a_dask_cluster_trains_shared_prefixes_once(tmp_path):
    from dask.distributed import LocalCluster

    grid = sweep.parse_grid(["layers.1.units=8,12", "finetune.epochs=2,3"])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        results = sweep.run_sweep(None, FAST_SETS, grid, tmp_path / "artifacts", backend="dask",
                                  scheduler=cluster.scheduler_address)
    print("\n" + sweep.format_table(results))
    assert len(results) == 4 and len({r["pid"] for r in results}) == 2  # both workers ran variants
    counts = sweep.trained_counts(results)
    assert set(counts.values()) == {1}  # every distinct stage trained by exactly one variant
    by_stage = Counter((s["name"], s["key"]) for r in results for s in r["stages"])
    distinct = Counter(name for name, _ in by_stage)
    # layer 0 is shared by all four, layer 1 and the head by pairs, fine-tune and evaluate by none
    assert distinct == {"pretrain-0": 1, "pretrain-1": 2, "head": 2, "finetune": 4, "evaluate": 4}
    statuses = Counter(s["status"] for r in results for s in r["stages"] if s["name"] == "pretrain-0")
    assert statuses == {"trained": 1, "cached": 3}


def test_a_sweep_reports_each_variant_as_it_finishes(aepipe):
    err = aepipe("sweep", *FAST, "--grid", "finetune.epochs=1,2").stderr
    done = [line for line in err.splitlines() if line.startswith("sweep: ") and " done: " in line]
    assert [line.split(" done: ")[0] for line in done] == ["sweep: 1/2", "sweep: 2/2"]
    assert all("validation accuracy" in line and "stages trained" in line for line in done)
