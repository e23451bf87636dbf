"""The artifact store: atomic publish, verification, content-addressed keys."""

import json

import pytest

from aepipe.engine.atomic import atomic_write_text
from aepipe.engine.store import Store, stage_key


def _publish(store, key="k" * 64, payload=b"weights"):
    work = store.begin("pretrain", key)
    (work / "encoder.weights.h5").write_bytes(payload)
    (work / "encodings").mkdir()
    (work / "encodings" / "train.npy").write_bytes(b"codes")
    return store.publish("pretrain", key, {"params": {"units": 3}})


def test_publish_writes_manifest_with_every_file(tmp_path):
    store = Store(tmp_path)
    stage = _publish(store)
    manifest = json.loads((stage.path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"encoder.weights.h5", "encodings/train.npy"}
    assert manifest["files"]["encoder.weights.h5"]["size"] == len(b"weights")
    assert manifest["key"] == "k" * 64 and manifest["params"] == {"units": 3}
    assert store.status("pretrain", "k" * 64).status == "cached"
    assert not store.partial_path("pretrain", "k" * 64).exists()


def test_partial_directory_is_not_a_stage(tmp_path):
    store = Store(tmp_path)
    work = store.begin("pretrain", "a" * 64)
    (work / "encoder.weights.h5").write_bytes(b"half")
    assert store.status("pretrain", "a" * 64).status == "missing"
    (work / "checkpoint").mkdir()
    (work / "checkpoint" / "state.json").write_text("{}")
    assert store.status("pretrain", "a" * 64).status == "partial"


@pytest.mark.parametrize("damage, reason", [
    (lambda d: (d / "encoder.weights.h5").write_bytes(b"weightz"), "encoder.weights.h5 does not match its sha256"),
    (lambda d: (d / "encoder.weights.h5").write_bytes(b"w"), "encoder.weights.h5 has 1 bytes"),
    (lambda d: (d / "encodings" / "train.npy").unlink(), "encodings/train.npy is missing"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json is not valid JSON"),
    (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
])
def test_damage_is_detected_and_named(tmp_path, damage, reason):
    store = Store(tmp_path)
    stage = _publish(store)
    damage(stage.path)
    st = store.status("pretrain", "k" * 64)
    assert st.status == "corrupt"
    assert reason in st.reason


def test_republish_quarantines_the_old_stage(tmp_path):
    store = Store(tmp_path)
    stage = _publish(store)
    (stage.path / "encoder.weights.h5").write_bytes(b"bad!!!!")
    _publish(store, payload=b"weights")
    assert store.status("pretrain", "k" * 64).status == "cached"
    assert len(list(store.quarantine_dir.iterdir())) == 1


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_stage_key_is_canonical_and_sensitive():
    k = stage_key("pretrain", 1, {"a": 1, "b": [1, 2]}, ["up"], "fp")
    assert k == stage_key("pretrain", 1, {"b": [1, 2], "a": 1}, ["up"], "fp")  # key order does not matter
    assert len({k, stage_key("pretrain", 1, {"a": 2, "b": [1, 2]}, ["up"], "fp"),
                stage_key("pretrain", 1, {"a": 1, "b": [1, 2]}, ["up2"], "fp"),
                stage_key("pretrain", 1, {"a": 1, "b": [1, 2]}, ["up"], "fp2"),
                stage_key("pretrain", 2, {"a": 1, "b": [1, 2]}, ["up"], "fp"),  # the kind's code version
                stage_key("head", 1, {"a": 1, "b": [1, 2]}, ["up"], "fp")}) == 6


def test_artifacts_path_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "artifacts"
    f.write_text("")
    from aepipe.errors import StoreError

    with pytest.raises(StoreError, match="is a file, not a directory"):
        Store(f)
