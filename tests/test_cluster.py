"""The cluster stages (issue 30): scores, keys without labels, labels that never
choose anything, resume after kill -9, the clusterer as scikit-learn sees it,
and the shipped digits recipe against k-means on the pixels."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from clirun import aepipe, file_tables, start
from sklearn.utils.estimator_checks import parametrize_with_checks

from aepipe import config
from aepipe.analysis.clustering import cluster_accuracy, contingency, label_scores
from aepipe.engine.plan import Fingerprint, plan

ROOT = Path(__file__).resolve().parents[1]

# DEC on a small digits stack: 12 target updates of 5 batches of 16 rows, fast enough for the
# default run and long enough to kill in the middle
DEC_TOML = """
name = "dec-tiny"
[pretrain]
optimizer = "adam"
batch_size = 32
epochs = 2
[[layers]]
units = 16
[[layers]]
units = 8
[cluster]
method = "dec"
n_clusters = 10
n_init = 2
max_iter = 60
update_interval = 5
batch_size = 16
tol = 0.0
"""


# ---------------------------------------------------------------- scores


def test_hungarian_accuracy_is_one_for_renamed_clusters_and_matches_nmi_ari():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    renamed = np.array([2, 2, 0, 0, 1, 1, 1])
    assert cluster_accuracy(renamed, y) == 1.0
    assert label_scores(renamed, y) == {"accuracy": 1.0, "nmi": 1.0, "ari": 1.0}
    one_off = np.array([2, 2, 0, 0, 1, 1, 0])
    assert cluster_accuracy(one_off, y) == pytest.approx(6 / 7)
    assert contingency(one_off, y).sum() == 7


# ---------------------------------------------------------------- keys


def _spec(extra: str = ""):
    return config.loads(DEC_TOML + extra, "<test>")


def _stage(spec, name, fp=Fingerprint("inputs", "labels")):
    return next(s for s in plan(spec, fp) if s.name == name)


def test_cluster_keys_hold_no_labels_and_only_the_fields_the_method_reads():
    spec = _spec()
    assert _stage(spec, "cluster").key == _stage(spec, "cluster", Fingerprint("inputs", "other")).key
    assert _stage(spec, "cluster-baseline").key == _stage(spec, "cluster-baseline",
                                                          Fingerprint("inputs", "other")).key
    kmeans = dataclasses.replace(spec, cluster=dataclasses.replace(spec.cluster, method="kmeans"))
    for field, value in (("gamma", 0.5), ("umap_neighbors", 5), ("max_iter", 7), ("baseline", False)):
        other = dataclasses.replace(kmeans, cluster=dataclasses.replace(kmeans.cluster, **{field: value}))
        assert _stage(other, "cluster").key == _stage(kmeans, "cluster").key, field
    assert _stage(kmeans, "cluster").key != _stage(spec, "cluster").key
    # the twin holds no pretraining field
    slower = config.loads(DEC_TOML.replace("epochs = 2", "epochs = 3"), "<test>")
    assert _stage(slower, "cluster-baseline").key == _stage(spec, "cluster-baseline").key
    assert _stage(slower, "cluster").key != _stage(spec, "cluster").key


def test_no_cluster_section_no_cluster_stage():
    names = [s.name for s in plan(config.loads("[[layers]]\nunits = 8\n"), Fingerprint("a", "b"))]
    assert not any(n.startswith("cluster") for n in names)


def test_unknown_cluster_key_and_bad_method_are_one_line_errors(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(DEC_TOML.replace("tol = 0.0", "tolerance = 0.1"))
    r = aepipe("status", p, "--artifacts", tmp_path / "art")
    assert r.returncode == 2 and "cluster.tolerance: unknown key" in r.stderr
    p.write_text(DEC_TOML.replace('method = "dec"', 'method = "spectral"'))
    r = aepipe("status", p, "--artifacts", tmp_path / "art")
    assert r.returncode == 2 and "cluster.method" in r.stderr


# ---------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def dec_run(tmp_path_factory):
    """One uninterrupted ``aepipe cluster --json``: its result and every stage file's sha256."""
    where = tmp_path_factory.mktemp("dec")
    (where / "dec.toml").write_text(DEC_TOML)
    p = aepipe("cluster", where / "dec.toml", "--artifacts", where / "art", "--json")
    assert p.returncode == 0, p.stderr
    return {"dir": where, "result": json.loads(p.stdout), "files": file_tables(where / "art")}


@pytest.mark.slow  # a few digits trainings (~1 min on 2 shared cores)
def test_cluster_run_scores_every_clustering_and_writes_the_picture(dec_run):
    m = dec_run["result"]["metrics"]["clustering"]
    assert set(m["scores"]) == {"clusters", "random_init", "kmeans_pixels", "kmeans_pca"}
    for s in m["scores"].values():
        assert 0 < s["test"]["accuracy"] <= 1 and -1 <= s["train"]["ari"] <= 1
    assert m["comparison"]["n"] == 450 and m["refinement"]["rounds"] == 12
    assert sum(m["unlabeled"]["sizes"]) == 450
    run_dir = Path(dec_run["result"]["run_dir"])
    assert (run_dir / "clusters.png").stat().st_size > 10_000
    report = (run_dir / "report.md").read_text()
    assert "## Clustering" in report and "k-means on the raw inputs" in report


@pytest.mark.slow  # a few digits trainings (~1 min on 2 shared cores)
def test_labels_scrambled_leave_every_assignment_unchanged(dec_run, tmp_path):
    """The same digits with their labels shuffled (an npz): the cluster stages build
    to the same bytes; only the scores move."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from aepipe.data.sources import load as load_data

    ds = load_data(config.loads(DEC_TOML).data)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "scrambled.npz", x_train=ds.x_train, y_train=rng.permutation(ds.y_train),
             x_test=ds.x_test, y_test=rng.permutation(ds.y_test))
    (tmp_path / "s.toml").write_text(DEC_TOML + f'[data]\nsource = "npz:{tmp_path / "scrambled.npz"}"\n')
    p = aepipe("cluster", tmp_path / "s.toml", "--artifacts", tmp_path / "art", "--json")
    assert p.returncode == 0, p.stderr

    def assignments(art):
        return {f.relative_to(f.parents[2]).as_posix(): f.read_bytes()
                for f in sorted(Path(art, "stages").glob("cluster*/assignments/*.npy"))}

    ours, theirs = assignments(dec_run["dir"] / "art"), assignments(tmp_path / "art")
    assert len(ours) == 8
    assert sorted(v for v in ours.values()) == sorted(v for v in theirs.values())
    scrambled = json.loads(p.stdout)["metrics"]["clustering"]["scores"]["clusters"]["test"]["accuracy"]
    assert scrambled < dec_run["result"]["metrics"]["clustering"]["scores"]["clusters"]["test"]["accuracy"]


@pytest.mark.slow  # a few digits trainings (~1 min on 2 shared cores)
def test_sigkill_mid_refinement_resumes_bit_identically(dec_run, tmp_path):
    (tmp_path / "dec.toml").write_text(DEC_TOML)
    art = tmp_path / "art"
    proc = start("cluster", tmp_path / "dec.toml", "--artifacts", art)
    deadline, reached = time.monotonic() + 240, -1
    while proc.poll() is None and time.monotonic() < deadline:
        states = list((art / "stages").glob("cluster-*.partial/checkpoint/state.json"))
        try:
            reached = json.loads(states[0].read_text())["epoch"] if states else -1
        except (OSError, ValueError):
            reached = -1
        if reached >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL and 3 <= reached < 12
    p = aepipe("cluster", tmp_path / "dec.toml", "--artifacts", art, "--json")
    assert p.returncode == 0, p.stderr
    assert f"resumed from target update {reached}" in p.stderr
    assert file_tables(art) == dec_run["files"]


@pytest.mark.slow  # a few digits trainings (~1 min on 2 shared cores)
def test_load_returns_the_clusterer_and_encode_writes_clusters(dec_run, tmp_path):
    import aepipe as ap

    est = ap.load(dec_run["result"]["run_dir"])
    assert type(est).__name__ == "AutoencoderClusterer"
    from sklearn.datasets import load_digits

    X = load_digits().data[:20] / 16
    labels = est.predict(X)
    assert labels.shape == (20,) and est.cluster_centers_.shape == (10, 8)
    np.save(tmp_path / "x.npy", X)
    p = aepipe("encode", "-p", dec_run["dir"] / "dec.toml", tmp_path / "x.npy", "-o", tmp_path / "codes.npy",
               "--clusters", tmp_path / "clusters.npy", "--artifacts", dec_run["dir"] / "art")
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "clusters.npy"), labels)
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), est.transform(X), rtol=1e-6)


# ---------------------------------------------------------------- the estimator


def _clusterer():
    from aepipe import AutoencoderClusterer

    return AutoencoderClusterer(n_clusters=3, layers=(4,), epochs=1, batch_size=32, random_state=0)


def test_clusterer_checks_that_need_no_fit():
    from sklearn.utils.estimator_checks import estimator_checks_generator
    from test_estimators import NO_FIT

    ran = set()
    for est, check in estimator_checks_generator(_clusterer(), mark="skip"):
        name = getattr(check, "func", check).__name__
        if name in NO_FIT:
            check(est)
            ran.add(name)
    assert len(ran) >= 10


@pytest.mark.slow  # each check fits small Keras models (~5 s a fit on 2 shared cores)
@parametrize_with_checks([_clusterer()])
def test_clusterer_passes_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
def test_clusterer_in_a_pipeline_after_a_scaler():
    from sklearn.datasets import load_digits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    from aepipe import AutoencoderClusterer

    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(MinMaxScaler(), AutoencoderClusterer(10, layers=(32, 10), epochs=20, random_state=0))
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),) and len(np.unique(labels)) == 10
    np.testing.assert_array_equal(pipe.predict(X[:50]), labels[:50])


@pytest.mark.slow
def test_digits_recipe_beats_kmeans_on_pixels(tmp_path):
    p = aepipe("cluster", ROOT / "pipelines" / "digits-cluster.toml", "--artifacts", tmp_path, "--json",
               timeout=900)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)["metrics"]["clustering"]["scores"]
    # accuracy and NMI on the 1,347 rows it was fitted on, NMI on the 450 test rows too (0.83 vs 0.75);
    # test accuracy is within noise of k-means on pixels' on 450 rows (0.787 vs 0.791 at the keys of
    # 2026-12-07, with k-means itself moving 0.784-0.791 with its seed), so one seed cannot order them
    for split, metrics in (("train", ("accuracy", "nmi")), ("test", ("nmi",))):
        for metric in metrics:
            assert s["clusters"][split][metric] > s["kmeans_pixels"][split][metric], (split, metric, s)


# ---------------------------------------------------------------- without labels


@pytest.mark.slow  # pretraining and two cluster stages (~30 s on 2 shared cores)
@pytest.mark.parametrize("source", ["csv", "npy"])
def test_unlabeled_data_runs_the_unsupervised_path(tmp_path, source):
    """A csv without a label column, an npy without a label file: pretrain, cluster and
    t-SNE run, head, fine-tune and the label metrics are skipped, said once."""
    from sklearn.datasets import load_digits

    X = load_digits().data[:600] / 16
    if source == "csv":
        header = ",".join(f"p{i}" for i in range(X.shape[1]))
        np.savetxt(tmp_path / "rows.csv", X, delimiter=",", header=header, comments="", fmt="%.4f")
        where = f"csv:{tmp_path / 'rows.csv'}"
    else:
        np.save(tmp_path / "rows.npy", X.astype(np.float32))
        where = f"npy:{tmp_path / 'rows.npy'}"
    (tmp_path / "u.toml").write_text(
        DEC_TOML.replace('method = "dec"', 'method = "kmeans"')
        + f'[data]\nsource = "{where}"\nlabeled = false\n[evaluate]\nbaseline = true\ntsne = true\n')
    p = aepipe("run", tmp_path / "u.toml", "--artifacts", tmp_path / "art", "--json")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("no labels") == 1
    result = json.loads(p.stdout)
    assert [s["name"] for s in result["stages"]] == ["pretrain-0", "pretrain-1", "cluster", "cluster-baseline",
                                                     "tsne"]
    tsne = result["metrics"]["tsne"]
    assert set(tsne) == {"raw", "pca", "ae"} and all(r["knn_accuracy"] is None for r in tsne.values())
    assert all(0.5 < r["trustworthiness"] <= 1 for r in tsne.values())
    m = result["metrics"]["clustering"]
    assert "scores" not in m and sum(m["unlabeled"]["sizes"]) == 150 and m["unlabeled"]["silhouette"] is not None
    report = (Path(result["run_dir"]) / "report.md").read_text()
    assert "No labels" in report and "n/a (no labels)" in report
    assert (Path(result["run_dir"]) / "clusters.png").is_file() and (Path(result["run_dir"]) / "tsne.png").is_file()


def test_without_labeled_false_a_missing_label_column_is_still_an_error(tmp_path):
    np.savetxt(tmp_path / "rows.csv", np.zeros((10, 3)), delimiter=",", header="a,b,c", comments="")
    (tmp_path / "u.toml").write_text(f'[[layers]]\nunits = 2\n[data]\nsource = "csv:{tmp_path / "rows.csv"}"\n')
    p = aepipe("run", tmp_path / "u.toml", "--artifacts", tmp_path / "art")
    assert p.returncode != 0 and "data.labeled = false" in p.stderr
