"""`aepipe runs` and `aepipe diff`: the run history, read from run directories."""

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from clirun import TINY


def cli(*args, artifacts, expect=0):
    from aepipe.cli import main

    result = CliRunner().invoke(main, [*map(str, args), "--artifacts", str(artifacts)])
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture(scope="module")
def two_runs(tiny_run, tmp_path_factory):
    """Run A: the shared tiny run. Run B: the same plus t-SNE on 50 points
    (trains the tsne stage only, everything else cached)."""
    art = tmp_path_factory.mktemp("history") / "artifacts"
    shutil.copytree(tiny_run[0], art)
    b = json.loads(cli("run", "--json", *TINY, "--set", "evaluate.tsne=true", "--set", "evaluate.tsne_samples=50",
                       artifacts=art).stdout)
    return art, tiny_run[1], b


def name(result: dict) -> str:
    parts = result["run_dir"].rstrip("/").split("/")
    return f"{parts[-2]}/{parts[-1]}"


def test_runs_lists_every_run_newest_first(two_runs):
    art, a, b = two_runs
    rows = json.loads(cli("runs", "--json", artifacts=art).stdout)["runs"]
    assert [r["run"] for r in rows] == [name(b), name(a)]
    newest, oldest = rows
    assert newest["test_accuracy"] == pytest.approx(b["metrics"]["test_accuracy"])
    assert (newest["trained"], newest["cached"]) == (1, len(b["stages"]) - 1)  # only tsne trained
    assert (oldest["trained"], oldest["cached"]) == (len(a["stages"]), 0)
    assert oldest["seconds"] == pytest.approx(sum(s["seconds"] for s in a["stages"]), abs=0.01)
    assert newest["baseline_test_accuracy"] is None and newest["verdict"] is None  # the baseline is off

    text = cli("runs", artifacts=art).stdout.splitlines()
    assert text[0].split() == ["time", "run", "test", "%", "baseline", "%", "verdict", "seconds", "trained", "cached",
                               "configuration"]
    assert [line.split()[2] for line in text[1:]] == [name(b), name(a)]
    assert text[1].split()[3] == f"{100 * b['metrics']['test_accuracy']:.2f}"


def test_runs_of_one_pipeline_by_name_or_file(two_runs, tmp_path):
    art, _, _ = two_runs
    by_name = json.loads(cli("runs", "digits", "--json", artifacts=art).stdout)["runs"]
    pipeline = tmp_path / "p.toml"
    pipeline.write_text('name = "digits"\n[[layers]]\nunits = 8\n')
    by_file = json.loads(cli("runs", pipeline, "--json", artifacts=art).stdout)["runs"]
    described = ("overrides", "compared_with")  # a file is what the runs' overrides are told against
    assert len(by_name) == 2 and [{k: v for k, v in r.items() if k not in described} for r in by_file] == [
        {k: v for k, v in r.items() if k not in described} for r in by_name]
    assert {r["compared_with"] for r in by_file} == {str(pipeline)}
    assert by_name[0]["compared_with"] == "the built-in pipeline"
    assert "layers=2" in by_file[0]["overrides"] and "layers=2" not in by_name[0]["overrides"]
    err = cli("runs", "nosuch", artifacts=art, expect=1).stderr.strip().splitlines()
    assert len(err) == 1 and "no runs of pipeline 'nosuch'" in err[0]


def test_diff_names_the_spec_fields_the_stage_keys_and_the_metrics(two_runs):
    art, a, b = two_runs
    d = json.loads(cli("diff", name(a), name(b), "--json", artifacts=art).stdout)
    assert d["spec"] == [{"field": "evaluate.tsne", "a": "false", "b": "true"},
                         {"field": "evaluate.tsne_samples", "a": "2000", "b": "50"}]
    tsne = next(s for s in b["stages"] if s["name"] == "tsne")
    assert d["stages"] == [{"stage": "tsne", "a": None, "b": tsne["key"], "a_status": None, "b_status": "trained"}]
    metrics = {m["metric"]: m for m in d["metrics"]}
    assert metrics["test_accuracy"]["delta"] == 0.0  # the same cached classifier
    assert metrics["tsne.ae.knn_accuracy"]["a"] is None
    assert metrics["tsne.ae.knn_accuracy"]["b"] == pytest.approx(b["metrics"]["tsne"]["ae"]["knn_accuracy"])
    assert not any(k.startswith("classification_report.") for k in metrics)  # --all shows them
    every = json.loads(cli("diff", name(a), name(b), "--json", "--all", artifacts=art).stdout)
    assert any(m["metric"].startswith("classification_report.") for m in every["metrics"])


def test_diff_as_text_and_by_path(two_runs):
    art, a, b = two_runs
    out = cli("diff", a["run_dir"], b["run_dir"], artifacts=art).stdout
    assert f"A: {name(a)}\nB: {name(b)}" in out
    assert any(line.split() == ["evaluate.tsne", "false", "true"] for line in out.splitlines())
    assert any(line.split()[:2] == ["tsne", "-"] for line in out.splitlines())
    same = cli("diff", name(a), name(a), artifacts=art).stdout
    assert "spec: identical" in same and "stages: same keys" in same


def test_diff_of_something_that_is_not_a_run_is_one_line_exit_1(two_runs):
    art, a, _ = two_runs
    err = cli("diff", name(a), "digits/19990101T000000Z", artifacts=art, expect=1).stderr.strip().splitlines()
    assert len(err) == 1 and "'digits/19990101T000000Z' is not an aepipe run directory" in err[0]


def test_runs_and_diff_never_import_tensorflow(two_runs):
    art, a, b = two_runs
    code = ("import sys; from click.testing import CliRunner; from aepipe.cli import main\n"
            f"for args in (['runs'], ['diff', {name(a)!r}, {name(b)!r}]):\n"
            f"    r = CliRunner().invoke(main, args + ['--artifacts', {str(art)!r}]); assert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
