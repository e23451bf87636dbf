"""The label curve of a sweep over data.labels: grouping, mean ± std over the
label draws, the table next to the published rows, and the sweep's files."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aepipe.analysis import label_curve as lc
from aepipe.pipeline import sweep

from conftest import FAST


def row(labels, seed=None, test=0.9, base=0.8, plain=None, **grid):
    point = {"data.labels": str(labels), **({} if seed is None else {"data.label_seed": str(seed)}), **grid}
    return {"name": f"v-{labels}-{seed}-{sorted(grid.items())}", "grid": point, "test_accuracy": test,
            "baseline_test_accuracy": base, "plain_baseline_test_accuracy": plain}


def test_rows_group_by_label_count_with_mean_and_population_std():
    rows = [row(600, 0, 0.95, 0.90), row(100, 0, 0.80, 0.60), row(100, 1, 0.84, 0.64), row(100, 2, 0.86, 0.68)]
    curve = lc.label_curve(rows)
    assert [p["labels"] for p in curve] == [100, 600]  # numeric order, not the grid's strings
    few = curve[0]
    assert few["n"] == 3 and sorted(few["label_seeds"]) == ["0", "1", "2"]
    assert few["test_accuracy"]["mean"] == pytest.approx(np.mean([0.80, 0.84, 0.86]))
    assert few["test_accuracy"]["std"] == pytest.approx(np.std([0.80, 0.84, 0.86], ddof=0))
    assert few["baseline_test_accuracy"]["mean"] == pytest.approx(0.64)
    assert curve[1]["n"] == 1 and curve[1]["test_accuracy"]["std"] == 0.0
    assert few["plain_baseline_test_accuracy"] is None  # never reported: no series


def test_published_rows_only_beside_an_mnist_curve():
    assert lc.published_for("mnist") == lc.PUBLISHED and lc.published_for("digits") == ()


def test_table_has_published_rows_and_plus_minus_only_where_drawn_more_than_once():
    rows = [row(100, s, t) for s, t in ((0, 0.80), (1, 0.84), (2, 0.86))] + [row(3000, 0, 0.97)]
    lines = lc.format_label_table(lc.label_curve(rows)).splitlines()
    assert lines[0].split("  ")[0] == "labels" and "random init, plain" not in lines[0]
    assert "Kingma et al. 2014 M1+TSVM" in lines[0] and "Lee 2013 dropNN+PL+DAE" in lines[0]
    assert lines[1].startswith("100 ") and "83.33 ± 2.49 (n=3)" in lines[1]
    assert lines[1].split()[-2:] == ["88.18", "89.51"]
    assert lines[2].startswith("3000") and "97.00" in lines[2] and "±" not in lines[2]
    assert lines[2].split()[-2:] == ["96.51", "97.31"]
    assert "from the papers, not from runs here" in lines[-1] and "ddof=0" in lines[-1]


def test_a_label_count_no_paper_reports_gets_a_dash_and_plain_init_a_column_when_present():
    curve = lc.label_curve([row(40, 0, plain=0.5), row(40, 1, plain=0.7)])
    assert curve[0]["plain_baseline_test_accuracy"]["mean"] == pytest.approx(0.6)
    lines = lc.format_label_table(curve).splitlines()
    assert "random init, plain" in lines[0]
    assert "60.00 ± 10.00 (n=2)" in lines[1] and lines[1].split()[-2:] == ["-", "-"]


def test_baseline_absent_everywhere_has_no_column_and_the_figure_still_draws():
    curve = lc.label_curve([row(100, 0, base=None), row(600, 0, base=None)])
    assert all(p["baseline_test_accuracy"] is None for p in curve)
    assert "random init" not in lc.format_label_table(curve).splitlines()[0]
    fig = lc.label_figure(curve)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "pretrained", "Kingma et al. 2014 M1+TSVM (published)", "Lee 2013 dropNN+PL+DAE (published)"]


@pytest.mark.parametrize("rows, reason", [
    ([row(100, 0, **{"layers.0.units": "8"}), row(100, 0, **{"layers.0.units": "16"})],
     "varies layers.0.units besides data.labels and data.label_seed"),
    ([row("none"), row(100)], "data.labels must be label counts, got 'none'"),
])
def test_a_grid_that_varies_more_than_the_label_draw_makes_no_curve(rows, reason):
    assert reason in lc.why_no_curve(rows)
    assert lc.label_curve(rows) is None


def test_a_grid_without_labels_is_not_a_label_sweep():
    rows = [{"name": "a", "grid": {"layers.0.units": "8"}}, {"name": "b", "grid": {"layers.0.units": "16"}}]
    assert lc.why_no_curve(rows) is None and lc.label_curve(rows) is None
    # a key given one value does not vary: the curve is drawn
    assert lc.label_curve([row(100, 0, **{"finetune.epochs": "3"}), row(600, 0, **{"finetune.epochs": "3"})])


def test_a_label_sweep_with_draws_pretrains_once_and_writes_the_curve(aepipe, artifacts):
    """Two label counts x two draws on digits: the printed table with ± per
    count, one shared pretraining (read back from each variant's run.json), and
    labels.png and labels.json agreeing with the variants' test accuracies."""
    result = aepipe("sweep", *FAST, "--set", "evaluate.baseline=true", "--grid", "data.labels=40,120",
                    "--grid", "data.label_seed=0,1")
    print("\n" + result.stdout)
    table = result.stdout.split("\n\n")[-1].splitlines()
    assert table[0].startswith("labels") and "random init" in table[0]
    assert [line.split()[0] for line in table[1:3]] == ["40", "120"]
    assert all(line.count("±") == 2 and "(n=2)" in line for line in table[1:3])
    logged = next(line for line in result.stderr.splitlines() if line.startswith("sweep: label curve: "))
    folder = Path(logged.removeprefix("sweep: label curve: ").split(" (and ")[0]).parent
    assert folder.parent == artifacts / "sweeps" / "digits" and folder.name.startswith("labels=40,120+label_seed=0,1-")

    runs = {p.parent.parent.name: json.loads(p.read_text()) for p in artifacts.glob("runs/*/*/run.json")}
    assert len(runs) == 4 and set(sweep.trained_counts(list(runs.values())).values()) == {1}
    trained = Counter(s["name"] for r in runs.values() for s in r["stages"] if s["status"] == "trained")
    assert trained["pretrain-0"] == 1 and trained["pretrain-1"] == 1 and trained["finetune"] == 4

    assert (folder / "labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((folder / "labels.json").read_text())
    assert [p["labels"] for p in saved["curve"]] == [40, 120]
    for point in saved["curve"]:
        metrics = [runs[name]["metrics"] for name in point["variants"]]
        assert point["n"] == 2 and sorted(point["label_seeds"]) == ["0", "1"]
        assert point["test_accuracy"]["values"] == [m["test_accuracy"] for m in metrics]
        assert point["baseline_test_accuracy"]["values"] == [m["baseline_test_accuracy"] for m in metrics]
        assert point["test_accuracy"]["mean"] == pytest.approx(np.mean(point["test_accuracy"]["values"]))
    # MNIST's published rows are not digits figures: none beside a digits curve
    assert saved["published"] == []
    assert "Kingma" not in result.stdout and "std: population std" in result.stdout

    # a second label sweep of the same pipeline with other settings keeps its own outputs
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = aepipe("sweep", *FAST, "--set", "evaluate.baseline=true", "--grid", "data.labels=40,120")
    other = next(p for p in (artifacts / "sweeps" / "digits").iterdir() if p != folder)
    assert f"sweep: label curve: {other / 'labels.png'}" in again.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first
    assert [p["n"] for p in json.loads((other / "labels.json").read_text())["curve"]] == [1, 1]
