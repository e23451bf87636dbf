"""Multi-device training: keras.distribution.DataParallel on JAX (simulated host
devices), tf.distribute.MirroredStrategy on TensorFlow."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aepipe.nn import distribution

AEPIPE = str(Path(sys.executable).with_name("aepipe"))
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="JAX is not installed (pip install 'aepipe[jax]')")

# A digits pipeline long enough to reach a stable accuracy (~95 %), short enough for two runs.
SHORT = ("--set", "pretrain.epochs=10", "--set", "head.epochs=10", "--set", "finetune.epochs=15",
         "--set", "evaluate.baseline=false", "--set", "evaluate.tsne=false")


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _run(artifacts, *args, **env):
    t = time.perf_counter()
    proc = subprocess.run([AEPIPE, "run", "--json", "-q", "--artifacts", str(artifacts), *args],
                          capture_output=True, text=True, env=_env(**env), timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), time.perf_counter() - t


def test_no_strategy_is_a_plain_single_device_run():
    with distribution.scope("none"):
        assert distribution.replicas() == 1
    assert distribution.describe("none") == {"strategy": "none", "backend": "tensorflow"}


def test_mirrored_strategy_scope_on_tensorflow():
    with distribution.scope("data_parallel"):
        import tensorflow as tf

        assert tf.distribute.has_strategy()
        assert distribution.replicas() == tf.distribute.get_strategy().num_replicas_in_sync >= 1
    assert distribution.replicas() == 1


MIRRORED_2_CPUS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import functools
    from aepipe.nn import distribution
    # MirroredStrategy() takes every GPU, else one CPU: name the two logical CPUs. One
    # strategy per process, as in distribution.py: two would reuse collective keys.
    distribution._mirrored_strategy = functools.cache(
        lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    from aepipe import config as spec_mod
    from aepipe.pipeline.runner import Runner
    from aepipe.engine.store import Store
    spec = spec_mod.load(None, sys.argv[2:])
    result = Runner(spec, Store(sys.argv[1])).run("evaluate")
    print(json.dumps(result.as_dict()))
""")


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path):
    """The TensorFlow path for real: two replicas, an odd-sized training set."""
    args = [*SHORT, "--set", "distribution.strategy=data_parallel", "--set", "pretrain.epochs=2",
            "--set", "head.epochs=2", "--set", "finetune.epochs=2", "--set", "unroll.epochs=0"]
    overrides = [a for a in args if a != "--set"]
    proc = subprocess.run([sys.executable, "-c", MIRRORED_2_CPUS, str(tmp_path / "a"), *overrides],
                          capture_output=True, text=True, env=_env(), timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [s["status"] for s in result["stages"]] == ["trained"] * 5
    manifest = json.loads(Path(result["stages"][0]["path"], "manifest.json").read_text())
    assert manifest["distribution"] == {"strategy": "data_parallel", "backend": "tensorflow", "replicas": 2}


@needs_jax
@pytest.mark.slow
def test_data_parallel_on_two_jax_devices_matches_one_device(tmp_path):
    flags = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    one, t1 = _run(tmp_path / "one", *SHORT, **flags)
    two, t2 = _run(tmp_path / "two", *SHORT, "--set", "distribution.strategy=data_parallel", **flags)
    acc1, acc2 = one["metrics"]["test_accuracy"], two["metrics"]["test_accuracy"]
    print(f"\n1 device: {100 * acc1:.2f} % in {t1:.0f} s; 2 devices (data parallel): "
          f"{100 * acc2:.2f} % in {t2:.0f} s")
    manifest = json.loads(Path(two["stages"][0]["path"], "manifest.json").read_text())
    assert manifest["distribution"]["backend"] == "jax" and manifest["distribution"]["replicas"] == 2
    assert "distribution" not in json.loads(Path(one["stages"][0]["path"], "manifest.json").read_text())
    assert abs(acc1 - acc2) <= 0.01
