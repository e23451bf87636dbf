"""Training progress on stderr: which stage of how many, its epoch, the latest metrics.

Why not Keras' own bar: with several steps per execution it overshoots (an
epoch of 38 steps shows ``64/38``), and a pipeline of many stages prints one
bar per epoch with no sense of the whole. On a terminal this keeps one line
that updates in place; elsewhere (logs, CI) it prints one line per epoch.
"""

from __future__ import annotations

import sys
import time

import keras

SHOWN = ("loss", "val_loss", "accuracy", "val_accuracy")


class EpochProgress(keras.callbacks.Callback):
    """``live``: rewrite one line on every update (a terminal); else one line per epoch."""

    def __init__(self, label: str, epochs: int, live: bool, stream=None):
        super().__init__()
        self.label, self.epochs, self.live = label, epochs, live
        self.stream = stream or sys.stderr

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.perf_counter()
        if self.live:
            self._write(self._line(epoch, {}), end="")

    def on_train_batch_end(self, batch, logs=None):
        if self.live:
            self._write(self._line(self.epoch, logs or {}), end="")

    def on_epoch_end(self, epoch, logs=None):
        self._write(self._line(epoch, logs or {}, seconds=time.perf_counter() - self.started),
                    end="" if self.live and epoch + 1 < self.epochs else "\n")

    def _line(self, epoch: int, logs: dict, seconds: float | None = None) -> str:
        parts = [f"{self.label}  epoch {epoch + 1}/{self.epochs}"]
        parts += [f"{k} {float(logs[k]):.4f}" for k in SHOWN if k in logs]
        if seconds is not None:
            parts.append(f"{seconds:.1f} s")
        return "  ".join(parts)

    def _write(self, text: str, end: str) -> None:
        if self.live:
            text = "\r" + text + "\x1b[K"  # back to the line start, clear what was longer
        self.stream.write(text + end)
        self.stream.flush()
