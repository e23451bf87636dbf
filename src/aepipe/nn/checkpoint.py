"""Per-epoch checkpoints: what makes a killed stage resume bit-for-bit.

Weights alone are not enough: the optimizer's variables (moments, step
count) and the history come back too, each published atomically.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from ..engine.atomic import atomic_write_bytes, atomic_write_json, fsync_path
from ..engine.layout import MODEL_WEIGHTS
from ..errors import StoreError


class Checkpoint:
    """``checkpoint/epoch-NNNN/`` (weights + optimizer variables) and
    ``checkpoint/state.json`` pointing at the newest one, both published atomically."""

    def __init__(self, root: Path):
        self.root = root

    def exists(self) -> bool:
        return (self.root / "state.json").is_file()

    def restore(self, model) -> tuple[int, dict]:
        try:
            state = json.loads((self.root / "state.json").read_text())
            d = self.root / state["dir"]
            opt = model.optimizer
            opt.build(model.trainable_variables)  # built first, or Keras skips its saved variables with a warning
            model.load_weights(d / MODEL_WEIGHTS)
            with np.load(d / "optimizer.npz", allow_pickle=False) as f:
                arrays = [f[f"arr_{i}"] for i in range(len(f.files))]
            if len(arrays) != len(opt.variables):
                raise ValueError(f"{len(arrays)} optimizer variables, the model has {len(opt.variables)}")
            for var, value in zip(opt.variables, arrays):
                var.assign(value)
            return int(state["epoch"]), state.get("history", {})
        except Exception as e:  # noqa: BLE001 - whatever is wrong, the fix is the same
            raise StoreError(f"checkpoint {self.root} cannot be resumed ({type(e).__name__}: {e}); "
                             f"{self._fix()}") from None

    def _fix(self) -> str:
        """What to do: retrain this one stage (``aepipe clean`` would also delete every
        other pipeline's resumable partial stages)."""
        partial = next((p.name for p in (self.root, *self.root.parents) if p.name.endswith(".partial")), "")
        kind, _, key = partial.removesuffix(".partial").rpartition("-")
        which = f" (the {kind} stage `aepipe status` lists with key {key})" if kind and key else ""
        return f"rerun with `--rebuild STAGE`{which} to train it from scratch"

    def save(self, model, epoch: int, history: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        tmp = self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(tmp / MODEL_WEIGHTS)
        buf = io.BytesIO()
        np.savez(buf, *[np.asarray(v) for v in model.optimizer.variables])
        atomic_write_bytes(tmp / "optimizer.npz", buf.getvalue())
        for f in tmp.iterdir():  # h5py does not fsync: after a power cut state.json must not point at lost bytes
            fsync_path(f)
        final = self.root / name
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        atomic_write_json(self.root / "state.json", {"epoch": epoch, "dir": name, "history": history})
        for old in self.root.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def callback(self, history: dict) -> keras.callbacks.Callback:
        ckpt = self

        class _Save(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                ckpt.save(self.model, epoch + 1, history)

        return _Save()
