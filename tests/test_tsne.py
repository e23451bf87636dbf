"""Embedding metrics and the ``aepipe tsne`` command."""

import json

import numpy as np
import pytest

from aepipe.analysis import metrics as ev
from aepipe.data.subset import stratified_subset
from conftest import FAST

RNG = np.random.default_rng(0)


def _blobs(n_per=30, k=3, dims=5, spread=0.1):
    centers = RNG.normal(scale=10, size=(k, dims))
    x = np.concatenate([c + spread * RNG.normal(size=(n_per, dims)) for c in centers])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


def test_knn_accuracy_separated_classes_vs_shuffled_labels():
    x, y = _blobs()
    assert ev.knn_accuracy(x[:, :2], y) == 1.0
    shuffled = np.random.default_rng(1).permutation(y)
    assert ev.knn_accuracy(x[:, :2], shuffled) < 0.6


def test_trustworthiness_perfect_for_identity_and_worse_for_noise():
    x = RNG.normal(size=(80, 2))
    assert ev.trustworthiness(x, x) == pytest.approx(1.0)
    assert ev.trustworthiness(x, RNG.normal(size=(80, 2))) < 0.8


def test_feature_sets_pca_as_wide_as_codes():
    x, codes = RNG.random((50, 64)), RNG.random((50, 12))
    sets = ev.feature_sets(x, codes)
    assert list(sets) == ["raw", "pca", "ae"]
    assert sets["raw"].shape == (50, 64) and sets["pca"].shape == (50, 12) and sets["ae"].shape == (50, 12)
    with pytest.raises(ValueError, match="needs autoencoder codes"):
        ev.feature_sets(x, None, ("ae",))
    with pytest.raises(ValueError, match="unknown feature set 'umap'"):
        ev.feature_sets(x, codes, ("umap",))


def test_subsample_is_stratified_and_seeded():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    idx = stratified_subset(y, 40, seed=3)
    assert len(idx) == 40 and np.all(np.diff(idx) > 0)
    assert np.bincount(y[idx]).tolist() == [20, 10, 6, 4]
    assert np.array_equal(idx, stratified_subset(y, 40, seed=3))
    assert not np.array_equal(idx, stratified_subset(y, 40, seed=4))
    assert len(stratified_subset(y, 10_000, seed=0)) == 200


def test_image_side_for_square_inputs_only():
    assert (ev.image_side(64), ev.image_side(784), ev.image_side(30), ev.image_side(4)) == (8, 28, None, None)


def test_tsne_table_scores_each_feature_set():
    x, y = _blobs(n_per=25, dims=10)
    table, emb = ev.tsne_table({"raw": x, "pca": x[:, :3]}, y, seed=0)
    assert list(table) == ["raw", "pca"] and emb["raw"].shape == (75, 2)
    row = table["raw"]
    assert set(row) == {"knn_accuracy", "trustworthiness", "seconds", "dims", "points", "engine"}
    assert row["knn_accuracy"] > 0.95 and row["trustworthiness"] > 0.9
    assert (row["dims"], row["points"], table["pca"]["dims"]) == (10, 75, 3)


def test_tsne_command_on_digits(aepipe, artifacts, tmp_path):
    out = tmp_path / "tsne-out"
    res = aepipe("tsne", *FAST, "--n", "80", "--features", "raw,ae", "-o", out, "--json")
    doc = json.loads(res.stdout)
    assert list(doc["tsne"]) == ["raw", "ae"]
    assert doc["tsne"]["ae"]["dims"] == 24 and doc["tsne"]["raw"]["points"] == 80
    assert 0 <= doc["tsne"]["raw"]["knn_accuracy"] <= 1
    assert json.loads((out / "tsne.json").read_text())["tsne"] == doc["tsne"]
    with np.load(out / "tsne.npz") as f:
        assert sorted(f.files) == ["ae", "labels", "raw"] and f["raw"].shape == (80, 2)
    assert (out / "tsne.png").stat().st_size > 10_000
    # pretraining it needed is now cached; raw alone needs none
    text = aepipe("tsne", *FAST, "--n", "40", "--features", "raw", "-o", out).stdout
    assert text.splitlines()[0].split() == ["features", "dims", "10-NN", "acc", "trust", "seconds"]
    assert text.splitlines()[1].split()[:2] == ["raw", "64"]


def test_tsne_command_rejects_unknown_features(aepipe):
    res = aepipe("tsne", "--features", "raw,umap", expect=2)
    assert "raw,pca,ae" in res.stderr
