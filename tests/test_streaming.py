"""Streaming: memmapped inputs fed batch by batch, encodings written chunk by chunk,
with the same order and the same numbers as the in-memory path."""

import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

from pathlib import Path

import numpy as np
import pytest

from aepipe.data import feed
from aepipe.data import sources as data
from aepipe.data.fingerprint import fingerprint
from aepipe.errors import DataError, SpecError
from aepipe.config import DataSpec

from conftest import FAST


@pytest.fixture
def stream_everything(monkeypatch):
    """Stream every memmap, however small, so tiny tests take the big-data path."""
    monkeypatch.setenv("AEPIPE_STREAM_MIN_BYTES", "0")


def _memmap(tmp_path, array, name="x.npy"):
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


def _batches(dataset):
    return [(np.asarray(a), np.asarray(b)) for a, b in dataset]


def _epochs(x, y, *, start, epochs, **kw):
    """Batches of epochs ``start..epochs-1``, iterating once per epoch as Keras does."""
    dataset, epoch = feed.training_batches(x, y, start=start, **kw)
    out = []
    for e in range(start, epochs):
        epoch.assign(e)
        out += _batches(dataset)
    return out


def test_mapping_is_found_through_views(tmp_path):
    x = _memmap(tmp_path, np.arange(40, dtype=np.float32).reshape(20, 2))
    assert feed.mapping(x) is not None
    assert feed.mapping(np.ascontiguousarray(np.asarray(x[5:], dtype=np.float32))) is not None
    assert feed.mapping(np.ones(3)) is None


def test_streamed_batches_equal_in_memory_batches(tmp_path, stream_everything):
    rng = np.random.default_rng(0)
    x_mem = rng.random((103, 5), dtype=np.float32)
    y_mem = rng.integers(0, 3, 103).astype(np.int32)
    x_map, y_map = _memmap(tmp_path, x_mem), _memmap(tmp_path, y_mem, "y.npy")
    assert feed.is_streamed(x_map) and not feed.is_streamed(x_mem)
    kw = dict(batch_size=16, seed=7, start=1, epochs=3)
    a, b = _epochs(x_mem, y_mem, **kw), _epochs(x_map, y_map, **kw)
    assert len(a) == len(b) == 14
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # each epoch is a permutation of every row, and epochs differ
    rows = np.concatenate([xb for xb, _ in b[:7]])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), np.sort(x_mem[:, 0]))
    assert not np.array_equal(b[0][0], b[7][0])


def test_autoencoder_targets_are_the_inputs(tmp_path, stream_everything):
    x = _memmap(tmp_path, np.random.default_rng(1).random((30, 4), dtype=np.float32))
    for xb, yb in _epochs(x, x, batch_size=8, seed=0, start=0, epochs=1):
        np.testing.assert_array_equal(xb, yb)


def test_data_parallel_trims_only_the_unsplittable_rows():
    x = np.zeros((103, 2), np.float32)
    batches = _epochs(x, np.zeros(103, np.int32), batch_size=16, seed=0, start=0, epochs=1, replicas=2)
    assert [len(a) for a, _ in batches] == [16] * 6 + [6]  # 103 rows: 7 % 2 leaves one out
    assert feed.kept_rows(103, 16, 1) == 103
    with pytest.raises(SpecError, match="batch_size 15 is not a multiple of the 2 devices"):
        feed.kept_rows(100, 15, 2)


def test_chunked_scans_match_numpy(tmp_path):
    a = np.random.default_rng(2).normal(size=(10_000, 3)).astype(np.float32)
    a[9_001, 2] = np.inf
    x = _memmap(tmp_path, a)
    assert feed.value_range(x[:9000]) == (float(a[:9000].min()), float(a[:9000].max()))
    bad = feed.nonfinite_rows(x)
    assert bad.shape == (10_000,) and np.flatnonzero(bad).tolist() == [9_001]
    assert b"".join(bytes(b) for b in feed.byte_blocks(x)) == a.tobytes()


def test_encodings_are_the_bytes_predict_and_np_save_give(tmp_path):
    import keras

    from aepipe.nn import inference

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="relu")])
    x = _memmap(tmp_path, np.random.default_rng(3).random((9000, 6), dtype=np.float32))
    out = inference.encode_to_npy(model, x, tmp_path / "codes.npy")
    buf = io.BytesIO()
    np.save(buf, inference.predict(model, np.asarray(x)))
    assert (tmp_path / "codes.npy").read_bytes() == buf.getvalue()
    assert feed.mapping(out) is not None and out.shape == (9000, 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_training_on_a_streamed_memmap_gives_the_same_weights(tmp_path, monkeypatch):
    import keras

    from aepipe.nn import train

    x_mem = np.random.default_rng(4).random((200, 8), dtype=np.float32)
    x_map = _memmap(tmp_path, x_mem)

    def weights(x, threshold):
        monkeypatch.setenv("AEPIPE_STREAM_MIN_BYTES", threshold)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(8, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        cut = 180
        train.fit(model, x[:cut], x[:cut], epochs=2, batch_size=32, seed=5, validation=(x[cut:], x[cut:]))
        return model.get_weights()

    for a, b in zip(weights(x_mem, str(1 << 30)), weights(x_map, "0")):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the npy source


def _write_npy_source(tmp_path, n=400, d=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d), dtype=np.float32)
    y = (x[:, :4].argmax(axis=1)).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "x.labels.npy", y)
    return x, y


def test_npy_source_is_memory_mapped_and_split_in_file_order(tmp_path):
    x, y = _write_npy_source(tmp_path)
    ds = data.load(DataSpec(source=f"npy:{tmp_path / 'x.npy'}", test_size=0.25))
    assert feed.mapping(ds.x_train) is not None and feed.mapping(ds.x_test) is not None
    np.testing.assert_array_equal(ds.x_train, x[:300])
    np.testing.assert_array_equal(ds.x_test, x[300:])
    np.testing.assert_array_equal(ds.classes[ds.y_test], y[300:])
    in_memory = data.Dataset("m", np.asarray(ds.x_train).copy(), ds.y_train, np.asarray(ds.x_test).copy(),
                             ds.y_test, classes=ds.classes)
    assert ds.fingerprint == fingerprint(in_memory)


def test_npy_source_with_explicit_labels_and_errors(tmp_path):
    x, y = _write_npy_source(tmp_path)
    (tmp_path / "x.labels.npy").rename(tmp_path / "labels.npy")
    with pytest.raises(DataError, match="labels file not found: .*x.labels.npy .*data.label_path"):
        data.load(DataSpec(source=f"npy:{tmp_path / 'x.npy'}"))
    ds = data.load(DataSpec(source=f"npy:{tmp_path / 'x.npy'}", label_path=str(tmp_path / "labels.npy")))
    assert len(ds.x_train) + len(ds.x_test) == 400
    np.save(tmp_path / "short.npy", y[:10])
    with pytest.raises(DataError, match="has 400 rows but .*short.npy has 10 labels"):
        data.load(DataSpec(source=f"npy:{tmp_path / 'x.npy'}", label_path=str(tmp_path / "short.npy")))


def test_streamed_pipeline_gives_the_same_stages(tmp_path, aepipe, artifacts, monkeypatch):
    """The same pipeline, once fed from memory and once streamed from the memmap
    (pretraining, head and fine-tune alike): identical stage keys, identical
    encodings and predictions, byte for byte."""
    _write_npy_source(tmp_path)
    args = ["run", "--json", "-q", "--set", f"data.source='npy:{tmp_path / 'x.npy'}'",
            "--set", "layers.0.units=8", "--set", "pretrain.epochs=2", "--set", "pretrain.batch_size=32",
            *FAST]
    monkeypatch.setenv("AEPIPE_STREAM_MIN_BYTES", str(1 << 30))
    first = json.loads(aepipe(*args).stdout)
    monkeypatch.setenv("AEPIPE_STREAM_MIN_BYTES", "0")
    from aepipe.cli import main
    from click.testing import CliRunner

    other = tmp_path / "other"
    result = CliRunner().invoke(main, [*args, "--artifacts", str(other)])
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert [s["key"] for s in first["stages"]] == [s["key"] for s in second["stages"]]
    for a, b in zip(first["stages"], second["stages"]):
        assert a["status"] == b["status"] == "trained"
        outputs = {"pretrain": ["encodings/train.npy", "encodings/test.npy"], "finetune": ["predictions.npy"]}
        for name in outputs.get(a["name"].split("-")[0], []):
            rel = f"{os.path.basename(a['path'])}/{name}"
            assert (artifacts / "stages" / rel).read_bytes() == (other / "stages" / rel).read_bytes()
    assert first["metrics"]["test_accuracy"] == second["metrics"]["test_accuracy"]


# ---------------------------------------------------------------- bigger than memory (slow)

# Peak memory of the child: VmHWM (its own high-water mark, reset at exec);
# ru_maxrss is printed too, but it carries the forking parent's RSS over exec.
RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from aepipe.cli import main
    try:
        main(sys.argv[1:], standalone_mode=False)
    finally:
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(json.dumps({"vm_hwm": int(status["VmHWM"].split()[0]) * 1024,
                          "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}),
              file=sys.stderr)
""")


def _write_big_npy(path, n, d, seed=0):
    """Rows of a smooth low-rank signal in [0, 1], written chunk by chunk."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(8, d)).astype(np.float32) / 2
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    labels = np.empty(n, np.int64)
    for sl in feed.chunks(n, 65536):
        z = rng.normal(size=(sl.stop - sl.start, 8)).astype(np.float32)
        x[sl] = 1 / (1 + np.exp(-(z @ w)))
        labels[sl] = z[:, :4].argmax(axis=1)
    x.flush()
    del x
    np.save(path.with_name(f"{path.stem}.labels.npy"), labels)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc for VmHWM")
@pytest.mark.slow
def test_greedy_stack_trains_on_data_three_times_its_peak_memory():
    with tempfile.TemporaryDirectory(prefix="aepipe-big-") as tmp:
        _train_big(Path(tmp))


def _train_big(tmp_path):
    """A 2-layer greedy stack on a memmapped .npy of 5.3 GB: the process's peak
    resident memory (VmHWM, TensorFlow included) stays under a third of it."""
    n, d = 2_600_000, 512
    path = tmp_path / "big.npy"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    writer = f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); " \
             f"from test_streaming import _write_big_npy; from pathlib import Path; " \
             f"_write_big_npy(Path({str(path)!r}), {n}, {d})"
    subprocess.run([sys.executable, "-c", writer], check=True, env=env, timeout=1800)  # keeps pytest small
    data_bytes = path.stat().st_size
    cmd = [sys.executable, "-c", RSS_SCRIPT, "pretrain", "--json", "-q", "--artifacts", str(tmp_path / "a"),
           "--set", f"data.source='npy:{path}'", "--set", "data.test_size=0.05",
           "--set", "pretrain.epochs=1", "--set", "pretrain.batch_size=2048",
           "--set", "layers.0.units=16", "--set", "layers.1.units=8",
           "--set", "unroll.epochs=0", "--set", "pretrain.activation=relu"]  # the greedy stack alone
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3000)
    seconds = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-3000:]
    mem = json.loads(proc.stderr.strip().splitlines()[-1])
    result = json.loads(proc.stdout)
    print(f"\ndata {data_bytes / 2**30:.2f} GiB; peak RSS (VmHWM) {mem['vm_hwm'] / 2**30:.2f} GiB "
          f"= data / {data_bytes / mem['vm_hwm']:.1f}; ru_maxrss {mem['ru_maxrss'] / 2**30:.2f} GiB; "
          f"{seconds:.0f} s; stages {[(s['name'], s['seconds']) for s in result['stages']]}")
    assert [s["status"] for s in result["stages"]] == ["trained", "trained"]
    assert mem["vm_hwm"] * 3 < data_bytes
