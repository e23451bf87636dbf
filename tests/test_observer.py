"""The run observer: what trackers and searches see of a run."""

from aepipe.config.parse import loads
from aepipe.engine.store import Store
from aepipe.pipeline.observer import RunObserver
from aepipe.pipeline.runner import Runner

TINY = """
[pretrain]
epochs = 2
[[layers]]
units = 16
[head]
epochs = 1
[finetune]
epochs = 3
"""


class Recorder(RunObserver):
    def __init__(self):
        self.events = []

    def run_started(self, spec, stages):
        self.events.append(("run", [s.name for s in stages]))

    def stage_started(self, plan):
        self.events.append(("start", plan.name))

    def epoch_end(self, stage_name, epoch, logs):
        self.events.append(("epoch", stage_name, epoch, sorted(logs)))

    def stage_finished(self, result, stage):
        self.events.append(("done", result.name, result.status))

    def run_finished(self, result):
        self.events.append(("finished", result.run_dir is not None))


def test_observer_sees_every_stage_and_every_trained_epoch(tmp_path):
    spec = loads(TINY)
    first = Recorder()
    Runner(spec, Store(tmp_path), observer=first).run("evaluate")
    names = first.events[0][1]
    assert names == ["pretrain-0", "head", "finetune", "evaluate"]
    finetune_epochs = [e for e in first.events if e[0] == "epoch" and e[1] == "finetune"]
    assert [e[2] for e in finetune_epochs] == [0, 1, 2]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(finetune_epochs[0][3])
    assert [e for e in first.events if e[0] == "done"] == [("done", n, "trained") for n in names]
    assert first.events[-1] == ("finished", True)

    again = Recorder()
    Runner(spec, Store(tmp_path), observer=again).run("evaluate")
    assert not [e for e in again.events if e[0] == "epoch"]  # nothing trains when everything is cached
    assert [e for e in again.events if e[0] == "done"] == [("done", n, "cached") for n in names]
