"""``aepipe tune``: the search space and its errors, a study on digits whose trials
share stages (each trained once), Ctrl-C and kill -9 resume, pruning, --write-best,
and the test split scored only once, after the study (slow: a dask study)."""

import importlib.util
import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import FAST

optuna = pytest.importorskip("optuna", reason="aepipe tune needs Optuna (pip install 'aepipe[tune]')")

from aepipe.errors import SpecError  # noqa: E402
from aepipe.tune import report, space as sp, study as tune_study  # noqa: E402
from aepipe.tune import trial as tune_trial  # noqa: E402

FAST_SETS = [v for v in FAST if v != "--set"]
# layer 0 is fixed, so every trial shares it; layer 1 and the fine-tune rate vary
SPACE = ["--space", "layers.1.units=int:8:16", "--space", "finetune.learning_rate=float:1e-4:1e-2:log"]
STUDY = ["tune", *FAST, "--set", "finetune.epochs=3", *SPACE, "--heartbeat", "2"]
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="dask.distributed is not installed (pip install 'aepipe[dask]')")


# ------------------------------------------------------------------ the space


def test_space_forms_parse_to_distributions():
    space = sp.parse_space(["layers.1.units=int:8:32", "layers.0.units=int:16:256:log",
                            "finetune.learning_rate=float:1e-4:1e-2:log", "finetune.dropout=float:0:0.5",
                            "finetune.optimizer=choice:adam,rmsprop"])
    units, units0, rate, dropout, opt = space.values()
    assert (units.low, units.high, units.is_int, units.log) == (8, 32, True, False)
    assert (units0.is_int, units0.log) == (True, True)
    assert (rate.low, rate.high, rate.log, rate.is_int) == (1e-4, 1e-2, True, False)
    assert (dropout.low, dropout.high) == (0.0, 0.5) and isinstance(dropout.low, float)
    assert opt.choices == ("adam", "rmsprop") and opt.describe() == "choice:adam,rmsprop"
    assert sp.overrides_for({"finetune.optimizer": "adam", "layers.1.units": 8, "finetune.dropout": 0.25}) == [
        'finetune.optimizer="adam"', "layers.1.units=8", "finetune.dropout=0.25"]


@pytest.mark.parametrize("item, message", [
    ("layers.1.units", "--space expects KEY=SPEC (int:LO:HI, int:LO:HI:log, float:LO:HI, float:LO:HI:log or "
                       "choice:A,B,C), got 'layers.1.units'"),
    ("layers.1.units=8:16", "--space layers.1.units: '8:16' is not one of int:LO:HI"),
    ("layers.1.units=int:8", "--space layers.1.units: 'int:8' is not one of"),
    ("layers.1.units=int:8:16:lg", "--space layers.1.units: 'int:8:16:lg' is not one of"),
    ("layers.1.units=int:8:x", "--space layers.1.units: 'x' is not an integer"),
    ("layers.1.units=int:8:16.5", "--space layers.1.units: '16.5' is not an integer"),
    ("finetune.dropout=float:0:y", "--space finetune.dropout: 'y' is not a number"),
    ("layers.1.units=int:16:8", "--space layers.1.units: LO must be below HI"),
    ("finetune.learning_rate=float:0:1e-2:log", "a log range needs LO > 0"),
    ("finetune.optimizer=choice:adam", "one value ('adam') is not a search"),
    ("finetune.optimizer=choice:adam,adam", "a choice is given twice"),
])
def test_bad_specs_are_named(item, message):
    with pytest.raises(SpecError) as e:
        sp.parse_space([item])
    assert message in e.value.message and e.value.exit_code == 2


@pytest.mark.parametrize("args, message", [
    (["--space", "layers.5.units=int:8:16"], "--space layers.5.units: no 'layers.5' (there are 2 layers)"),
    (["--space", "finetune.lr=float:1e-4:1e-2"], "--space finetune.lr=0.0001: <built-in digits>: finetune.lr: unknown key; valid keys: batch_norm"),
    (["--space", "layers.0.units=int:0:16"], "--space layers.0.units=0: <built-in digits>: layers.0.units: "
                                             "must be a positive number, got 0"),
    (["--space", "layers.1.units=float:8:16"], "layers.1.units: expected int, got 8.0"),
    (["--space", "finetune.dropout=float:0:1"], "finetune.dropout: must be a number in [0, 1), got 1.0"),
    (["--space", "finetune.optimizer=choice:adam,adamm"], "finetune.optimizer: must be one of"),
    (["--space", "layers.1.units=int:8:16", "--space", "layers.1.units=int:8:12"],
     "--space layers.1.units is given twice"),
    (["--set", "data.validation_split=0", "--space", "layers.1.units=int:8:16"], "never by test accuracy"),
    (["--space", "layers.1.units=int:8:16", "--scheduler", "tcp://x:1"], "--scheduler needs --backend dask"),
    (["--space", "layers.1.units=int:8:16", "--write-best", "no/such/dir/best.toml"],
     "--write-best 'no/such/dir/best.toml': the directory 'no/such/dir' does not exist"),
])
def test_bad_searches_exit_2_before_anything_is_written(aepipe, artifacts, args, message):
    result = aepipe("tune", *args, expect=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not artifacts.exists()  # no study file, no stage


def test_pruning_observer_reports_finetune_epochs_and_prunes_there_only():
    class FakeTrial:
        def __init__(self):
            self.reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return True

    trial = FakeTrial()
    obs = tune_trial.PruningObserver(trial, "val_accuracy")
    obs.epoch_end("head", 0, {"val_accuracy": 0.5})  # not the objective's stage: ignored
    assert trial.reports == []
    with pytest.raises(optuna.TrialPruned):
        obs.epoch_end("finetune", 2, {"val_accuracy": 0.75, "val_loss": 0.4})
    assert trial.reports == [(2, 0.75)]


# ------------------------------------------------------------------ one study, shared by the tests below


class _PruneTrial3(optuna.pruners.BasePruner):
    """Stands in for the median pruner, which needs more trials than a fast test runs."""

    def prune(self, study, trial):
        return trial.number == 3


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three finished trials, made the hard way: trial 1 is interrupted (Ctrl-C) in
    its fine-tune's second epoch; the same command then retries it (trial 2, resuming
    the fine-tune from its checkpoint) and runs trial 3, which the pruner stops."""
    from click.testing import CliRunner

    from aepipe.cli import main
    from aepipe.pipeline.runner import Runner

    art = tmp_path_factory.mktemp("tune") / "artifacts"
    calls = []
    real_run, real_epoch_end = Runner.run, tune_trial.PruningObserver.epoch_end

    def spy_run(self, phase="evaluate"):
        done = [p.name.split("-")[0] for p in (art / "stages").glob("*") if not p.name.endswith(".partial")]
        calls.append({"phase": phase, "evaluate_stages_before": done.count("evaluate"),
                      "finished_trials": _finished(art)})
        return real_run(self, phase)

    def ctrl_c_in_trial_1(self, stage_name, epoch, logs):
        if stage_name == "finetune" and self.trial.number == 1 and epoch == 1:
            raise KeyboardInterrupt
        return real_epoch_end(self, stage_name, epoch, logs)

    def invoke(*args):
        return CliRunner().invoke(main, [*STUDY, "-n", "3", *args, "--artifacts", str(art)])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Runner, "run", spy_run)
        mp.setattr(tune_study, "pruner", lambda kind, epochs: _PruneTrial3())
        mp.setattr(tune_trial.PruningObserver, "epoch_end", ctrl_c_in_trial_1)
        first = invoke()
        assert first.exit_code == 130, (first.stdout, first.stderr, first.exception)
        mp.setattr(tune_trial.PruningObserver, "epoch_end", real_epoch_end)
        best_toml = art.parent / "best.toml"
        second = invoke("--json", "--write-best", str(best_toml))
        assert second.exit_code == 0, (second.stdout, second.stderr, second.exception)
        third = invoke()  # the same command once more: nothing left to run, the table again
        assert third.exit_code == 0, (third.stdout, third.stderr, third.exception)
    return {"art": art, "out": json.loads(second.stdout), "calls": calls, "first": first, "text": third.stdout,
            "best_toml": best_toml}


def _finished(art: Path) -> int:
    dbs = list((art / "tune").glob("*.db"))
    if not dbs:
        return 0
    s = optuna.load_study(study_name=dbs[0].stem, storage=f"sqlite:///{dbs[0]}")
    return sum(t.state.name in ("COMPLETE", "PRUNED") for t in s.trials)


def test_interrupted_trial_is_retried_with_its_params_and_resumes(study):
    assert "rerun the same command to resume" in study["first"].stderr
    trials = {t["number"]: t for t in study["out"]["trials"]}
    assert [trials[n]["state"] for n in range(4)] == ["complete", "fail", "complete", "pruned"]
    assert trials[2]["retry_of"] == 1 and trials[2]["params"] == trials[1]["params"]
    finetune = {s["name"]: s["status"] for s in trials[2]["stages"]}["finetune"]
    assert finetune == "resumed"  # from the checkpoint trial 1's first epoch left


def test_pruned_trial_counts_and_keeps_its_finished_stages(study):
    pruned = study["out"]["trials"][3]
    statuses = {s["name"]: s["status"] for s in pruned["stages"]}
    assert statuses["pretrain-0"] == "cached" and statuses["finetune"] == "pruned"
    assert statuses["head"] in ("trained", "cached")
    head_key = next(s["key"] for s in pruned["stages"] if s["name"] == "head")
    assert list((study["art"] / "stages").glob(f"head-{head_key[:16]}/manifest.json"))  # published, reusable
    finished = [t for t in study["out"]["trials"] if t["state"] in ("complete", "pruned")]
    assert len(finished) == 3  # --trials 3: complete and pruned ones count, the failed one does not


def test_shared_stages_are_trained_once_across_trials(study):
    rows = study["out"]["trials"]
    counts = report.trained_counts(rows)
    assert counts and set(counts.values()) <= {0, 1}, counts  # no stage key trained (or resumed) twice
    layer0 = Counter(s["status"] for t in rows for s in t["stages"] if s["name"] == "pretrain-0")
    assert layer0 == {"trained": 1, "cached": 3}


def test_objective_is_the_finetune_validation_metric(study):
    from aepipe.engine.store import Store

    store = Store(study["art"])
    for t in study["out"]["trials"]:
        if t["state"] == "complete":
            key = next(s["key"] for s in t["stages"] if s["name"] == "finetune")
            assert t["value"] == tune_trial.final_metric(store, "finetune", key, "val_accuracy")[0]
    complete = [t for t in study["out"]["trials"] if t["state"] == "complete"]
    assert study["out"]["best"]["value"] == max(t["value"] for t in complete)


def test_test_split_is_scored_once_after_the_study(study):
    """Trials run the finetune phase only; the one evaluate run starts after every
    trial finished, and no evaluate stage existed before it."""
    phases = [c["phase"] for c in study["calls"]]
    evaluate = [c for c in study["calls"] if c["phase"] == "evaluate"]
    assert phases.count("finetune") == 4 and phases[-2:] == ["evaluate", "evaluate"]  # two complete commands
    assert all(c["phase"] == "finetune" for c in study["calls"][:4])
    assert evaluate[0]["evaluate_stages_before"] == 0 and evaluate[0]["finished_trials"] == 3
    assert study["out"]["best_test_accuracy"] is not None
    assert all(m.startswith("val_") for m in tune_trial.METRICS)  # the objective: validation metrics only
    assert "test accuracy of the best trial (reported once, not used to choose): " in study["text"]


def test_table_lists_every_trial(study):
    lines = study["text"].splitlines()
    assert lines[0].split() == ["trial", "layers.1.units", "finetune.learning_rate", "val_accuracy", "state",
                                "trained", "cached", "seconds"]
    assert [line.split()[0] for line in lines[1:5]] == ["0", "1", "2", "3"]
    assert "retry of 1" in study["text"] and "pruned" in study["text"]
    best = study["out"]["best"]["number"]
    assert any(line.startswith(f"{best} *") for line in lines)


def test_write_best_reproduces_the_best_trial(study):
    """`aepipe finetune best.toml` finds every stage of the best trial cached: same keys, same metric."""
    from click.testing import CliRunner

    from aepipe.cli import main
    from aepipe.engine.store import Store

    r = CliRunner().invoke(main, ["finetune", str(study["best_toml"]), "--json", "-q",
                                  "--artifacts", str(study["art"])])
    assert r.exit_code == 0, (r.stderr, r.exception)
    out = json.loads(r.stdout)
    best = next(t for t in study["out"]["trials"] if t["number"] == study["out"]["best"]["number"])
    assert {s["name"]: s["status"] for s in out["stages"]} == dict.fromkeys(
        ["pretrain-0", "pretrain-1", "head", "finetune"], "cached")
    assert [(s["name"], s["key"]) for s in out["stages"]] == [(s["name"], s["key"]) for s in best["stages"]]
    key = out["stages"][-1]["key"]
    val = Store(study["art"]).load("finetune", key).manifest["metrics"]["val_accuracy"]
    assert val == study["out"]["best"]["value"]


def test_autoencoder_search_runs_pretraining_only_and_minimizes_reconstruction(tmp_path):
    from aepipe.engine.store import Store

    study, *_ = tune_study.run_study(None, FAST_SETS, ["layers.1.units=int:8:16"], tmp_path / "art", trials=2,
                                     metric="val_reconstruction_loss", prune="none", heartbeat=2)
    rows = report.trial_rows(study)
    assert study.direction.name == "MINIMIZE" and [r["state"] for r in rows] == ["complete", "complete"]
    for r in rows:
        assert [s["name"] for s in r["stages"]] == ["pretrain-0", "pretrain-1"]  # no head, no fine-tune
        top = r["stages"][-1]["key"]
        assert r["value"] == tune_trial.final_metric(Store(tmp_path / "art"), "pretrain", top, "val_loss")[0]
    assert [s["status"] for r in rows for s in r["stages"]][:3] == ["trained", "trained", "cached"]


def test_autoencoder_search_of_an_unrolled_pipeline_scores_the_unrolled_reconstruction(tmp_path):
    from aepipe.engine.store import Store

    study, *_ = tune_study.run_study(None, [*FAST_SETS, "unroll.epochs=1"], ["layers.1.units=int:8:16"],
                                     tmp_path / "art", trials=1, metric="val_reconstruction_loss", prune="none",
                                     heartbeat=2)
    (row,) = report.trial_rows(study)
    assert [s["name"] for s in row["stages"]] == ["pretrain-0", "pretrain-1", "unroll"]
    unroll = row["stages"][-1]["key"]  # the deepest reconstruction trained, not the top layer's
    assert row["value"] == tune_trial.final_metric(Store(tmp_path / "art"), "unroll", unroll, "val_loss")[0]


# ------------------------------------------------------------------ real processes


@pytest.mark.slow
def test_kill_9_mid_study_then_the_same_command_finishes_it(tmp_path):
    """SIGKILL while trial 1 trains: its heartbeat stops, the rerun retries it with
    the same params (resuming its stages), tops the study up to 3, trains nothing twice."""
    from clirun import aepipe as run_cli, start

    args = [*STUDY, "--set", "finetune.epochs=6", "--set", "finetune.batch_size=8", "-n", "3",
            "--pruner", "none", "--artifacts", tmp_path / "art"]
    proc = start(*args)
    for line in proc.stderr:
        if line.startswith("tune: trial 0 "):
            break
    time.sleep(3)  # trial 1 is training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = run_cli(*args, "--json")
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    states = Counter(t["state"] for t in out["trials"])
    assert states["complete"] == 3 and states["fail"] == 1, states
    retry = next(t for t in out["trials"] if t["retry_of"] is not None)
    assert retry["params"] == out["trials"][retry["retry_of"]]["params"]
    assert set(report.trained_counts(out["trials"]).values()) <= {0, 1}


@needs_dask
@pytest.mark.slow
def test_two_dask_workers_share_one_study_and_one_cache(tmp_path):
    rows_study, _, _, _ = tune_study.run_study(
        None, [*FAST_SETS, "finetune.epochs=2"],
        ["layers.1.units=int:8:16", "finetune.learning_rate=float:1e-4:1e-2:log"],
        tmp_path / "art", trials=4, jobs=2, backend="dask", prune="none", heartbeat=2)
    rows = report.trial_rows(rows_study)
    assert sum(r["state"] == "complete" for r in rows) >= 4
    assert len({t.user_attrs["pid"] for t in rows_study.trials}) == 2  # both workers ran trials
    assert set(report.trained_counts(rows).values()) <= {0, 1}
    layer0 = Counter(s["status"] for r in rows for s in r["stages"] if s["name"] == "pretrain-0")
    assert layer0["trained"] == 1
