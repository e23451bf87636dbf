"""One store, several pipelines: a random-init baseline is shared only between
pipelines that would train it identically (same network, same seed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import TINY, run_json, statuses

BASELINE = ("--set", "evaluate.baseline=true")


def _manifest(result: dict, name: str) -> dict:
    path = next(s["path"] for s in result["stages"] if s["name"] == name)
    return json.loads(Path(path, "manifest.json").read_text())


@pytest.mark.slow
def test_one_and_two_layer_pipelines_each_get_their_own_baseline(tmp_path):
    one = tmp_path / "one.toml"
    digits = Path(__file__).parents[1] / "pipelines" / "digits.toml"
    one.write_text(digits.read_text().replace("[[layers]]\nunits = 24\n", ""))
    assert one.read_text().count("[[layers]]") == 1
    art = tmp_path / "art"
    two = run_json(art, *TINY, *BASELINE, "--set", "layers.1.units=32")  # 48-32: layer 1 at its default width
    single = run_json(art, str(one), *TINY, *BASELINE)
    assert statuses(single)["baseline"] == "trained", "the 48 pipeline was served the 48-32 baseline"
    k1, k2 = (next(s["key"] for s in r["stages"] if s["name"] == "baseline") for r in (single, two))
    assert k1 != k2


@pytest.mark.slow
def test_plain_and_few_label_pipelines_share_a_baseline_only_with_its_seed(tmp_path):
    art = tmp_path / "art"
    few = ("--set", "data.labels=150", *TINY, *BASELINE)
    vat = run_json(art, *few, "--set", "finetune.vat_weight=1", "--set", "finetune.unlabeled_batch_size=64")
    plain = run_json(art, *few)
    assert statuses(plain)["baseline"] == "cached"  # built by the few-label run as baseline-plain
    shared = _manifest(plain, "baseline")
    assert shared["seed"] == _manifest(vat, "baseline-plain")["seed"] == _manifest(plain, "finetune")["seed"]
    assert _manifest(vat, "baseline")["seed"] == _manifest(vat, "finetune")["seed"]
