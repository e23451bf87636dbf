"""The search space: ``KEY=SPEC`` items -> distributions, checked against the pipeline.

A SPEC is ``LOW..HIGH`` (integers if both ends are, else floats), ``LOW..HIGH:log``
(log scale), ``LOW..HIGH:STEP`` (a grid step), or ``A,B,C`` (categorical, TOML
literals as in ``--set``). Each key is checked through the same ``--set`` path a
trial uses, at every end of its range, so a bad key or value fails before
anything trains, with the parser's own message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, Sequence

from .. import config
from ..errors import SpecError


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched field: a range (``low``/``high``, ``log``, ``step``) or ``choices``."""

    key: str
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: tuple = ()

    @property
    def is_int(self) -> bool:
        return not self.choices and isinstance(self.low, int) and isinstance(self.high, int)

    def ends(self) -> list:
        """The values that bound the range: checking them checks the whole range."""
        return list(self.choices) if self.choices else [self.low, self.high]

    def suggest(self, trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def describe(self) -> str:
        if self.choices:
            return ",".join(c if isinstance(c, str) else literal(c) for c in self.choices)
        tail = ":log" if self.log else (f":{literal(self.step)}" if self.step is not None else "")
        return f"{literal(self.low)}..{literal(self.high)}{tail}"


def literal(value: Any) -> str:
    """A value as the TOML literal ``--set`` reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a TOML basic string


def _number(text: str, item: str):
    value = config.parse_value(text.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"--param {item!r}: {text.strip()!r} is not a number (expected LOW..HIGH, "
                        "LOW..HIGH:log, LOW..HIGH:STEP or A,B,C)")
    return value


def parse_param(item: str) -> Param:
    key, sep, spec = item.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        raise SpecError(f"--param expects KEY=LOW..HIGH, KEY=LOW..HIGH:log or KEY=A,B,C, got {item!r}")
    if ".." not in spec:
        texts = [t.strip() for t in spec.split(",")]
        if not all(texts):
            raise SpecError(f"--param {key}: empty choice in {spec!r}")
        choices = tuple(config.parse_value(t) for t in texts)
        if len(choices) < 2:
            raise SpecError(f"--param {key}: one value ({spec!r}) is not a search; use --set {key}={spec}")
        if len(set(map(literal, choices))) < len(choices):
            raise SpecError(f"--param {key}: a choice is given twice in {spec!r}")
        if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise SpecError(f"--param {key}: choices must be numbers, booleans or strings, got {spec!r}")
        return Param(key, choices=choices)
    rng, _, tail = spec.partition(":")
    lo_text, _, hi_text = rng.partition("..")
    low, high = _number(lo_text, item), _number(hi_text, item)
    if not low < high:
        raise SpecError(f"--param {key}: LOW must be below HIGH, got {spec!r}")
    log, step = tail.strip() == "log", None
    if tail.strip() and not log:
        step = _number(tail, item)
        if step <= 0 or (isinstance(low, int) and isinstance(high, int) and not isinstance(step, int)):
            raise SpecError(f"--param {key}: STEP must be a positive number (an integer for an integer "
                            f"range), got {tail.strip()!r}")
    if log and low <= 0:
        raise SpecError(f"--param {key}: a log range needs LOW > 0, got {spec!r}")
    return Param(key, low, high, log=log, step=step)


def parse_space(items: Sequence[str]) -> dict[str, Param]:
    """``--param`` items by key, in the order given."""
    space: dict[str, Param] = {}
    for item in items:
        p = parse_param(item)
        if p.key in space:
            raise SpecError(f"--param {p.key} is given twice")
        space[p.key] = p
    if not space:
        raise SpecError("a search needs at least one --param KEY=LOW..HIGH (or KEY=A,B,C)")
    return space


def overrides_for(params: dict[str, Any]) -> list[str]:
    """Sampled values as ``--set`` items."""
    return [f"{k}={literal(v)}" for k, v in params.items()]


def _field_type(spec, key: str):
    """The declared type of a dotted field (``finetune.dropout`` -> float), or None."""
    node, parts = spec, key.split(".")
    for part in parts[:-1]:
        if isinstance(node, tuple):
            if not part.isdigit() or int(part) >= len(node):
                return None
            node = node[int(part)]
        elif dataclasses.is_dataclass(node) and hasattr(node, part):
            node = getattr(node, part)
        else:
            return None
    if not dataclasses.is_dataclass(node):
        return None
    hint = typing.get_type_hints(type(node)).get(parts[-1])
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def check_space(pipeline: Path | str | None, overrides: Sequence[str], space: dict[str, Param]):
    """Load the pipeline with every end of every range (others at their low end).
    Returns the base spec and the space, an integer range of a float field made a
    float range (``finetune.dropout=0..1``). Errors name the --param key, as the
    parser words them."""
    base = config.load(pipeline, overrides)
    space = {k: dataclasses.replace(p, low=float(p.low), high=float(p.high))
             if p.is_int and _field_type(base, k) is float else p for k, p in space.items()}
    lows = {k: p.ends()[0] for k, p in space.items()}
    for key, p in space.items():
        for value in p.ends():
            sets = overrides_for({**lows, key: value})
            try:
                spec = config.load(pipeline, [*overrides, *sets])
            except SpecError as e:
                if e.message.startswith("--set "):
                    raise SpecError("--param " + e.message.removeprefix("--set ")) from None
                raise SpecError(f"--param {key}={literal(value)}: {e.message}") from None
            if spec.data.validation_split == 0:
                raise SpecError("a search chooses by validation metrics, never by test accuracy, and "
                                f"data.validation_split is 0 (with {', '.join(sets)}); set it "
                                "(e.g. --set data.validation_split=0.1)")
    return base, space
