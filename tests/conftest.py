"""Shared fixtures: quiet TensorFlow, tiny pipelines, an in-process CLI."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# a developer's own MLflow server must not collect the suite's runs (tests that track say where)
os.environ.pop("MLFLOW_TRACKING_URI", None)

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

# A digits run small enough for the default test suite (a few seconds): greedy ReLU
# layers and no unroll, the default pipeline before issue 30 gave it tanh layers and an
# unroll stage, so the stage graph these tests check is the plain greedy one.
GREEDY = ["--set", "pretrain.mode=greedy", "--set", "pretrain.activation=relu", "--set", "unroll.epochs=0"]
FAST = ["--set", "pretrain.epochs=2", "--set", "head.epochs=2", "--set", "finetune.epochs=2",
        "--set", "evaluate.baseline=false", "--set", "evaluate.tsne=false", *GREEDY]


@pytest.fixture
def artifacts(tmp_path):
    return tmp_path / "artifacts"


@pytest.fixture
def aepipe(artifacts):
    """Invoke the CLI in-process; returns click's Result (stdout and stderr apart)."""
    from aepipe.cli import main

    def invoke(*args, expect=0):
        result = CliRunner().invoke(main, [*map(str, args), "--artifacts", str(artifacts)])
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    return invoke


def stage_statuses(result) -> dict:
    return {s["name"]: s["status"] for s in json.loads(result.stdout)["stages"]}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished digits run in a real process (clirun.TINY), shared by the
    reliability tests; they copy it before damaging anything."""
    from clirun import TINY, run_json

    art = tmp_path_factory.mktemp("tiny-run")
    return art, run_json(art, *TINY)
