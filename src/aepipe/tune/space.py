"""The search space: ``KEY=SPEC`` items -> distributions, checked against the pipeline.

A SPEC is ``int:LO:HI``, ``int:LO:HI:log``, ``float:LO:HI``, ``float:LO:HI:log``
or ``choice:A,B,C`` (TOML literals as in ``--set``). Each key is checked through
the same ``--set`` path a trial uses, at both ends of its range and at every
choice, so a bad key or value fails before anything trains, with the parser's
own message.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    choices: tuple = ()
    is_int: bool = False

    def ends(self) -> list:
        """The values that bound the range: checking them checks the whole range."""
        return list(self.choices) if self.choices else [self.low, self.high]

    def suggest(self, trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def describe(self) -> str:
        if self.choices:
            return "choice:" + ",".join(c if isinstance(c, str) else literal(c) for c in self.choices)
        kind = "int" if self.is_int else "float"
        return f"{kind}:{literal(self.low)}:{literal(self.high)}" + (":log" if self.log else "")


def literal(value: Any) -> str:
    """A value as the TOML literal ``--set`` reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a TOML basic string


FORMS = "int:LO:HI, int:LO:HI:log, float:LO:HI, float:LO:HI:log or choice:A,B,C"


def _number(text: str, key: str, kind: str):
    value = config.parse_value(text.strip())
    ok = (isinstance(value, int) if kind == "int" else isinstance(value, (int, float))) \
        and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise SpecError(f"--space {key}: {text.strip()!r} is not {'an integer' if kind == 'int' else 'a number'}")
    return value if kind == "int" else float(value)


def parse_param(item: str) -> Param:
    key, sep, spec = item.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        raise SpecError(f"--space expects KEY=SPEC ({FORMS}), got {item!r}")
    kind, _, rest = spec.partition(":")
    if kind == "choice":
        texts = [t.strip() for t in rest.split(",")]
        if not all(texts):
            raise SpecError(f"--space {key}: empty choice in {spec!r}")
        choices = tuple(config.parse_value(t) for t in texts)
        if len(choices) < 2:
            raise SpecError(f"--space {key}: one value ({rest!r}) is not a search; use --set {key}={rest}")
        if len(set(map(literal, choices))) < len(choices):
            raise SpecError(f"--space {key}: a choice is given twice in {spec!r}")
        if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise SpecError(f"--space {key}: choices must be numbers, booleans or strings, got {spec!r}")
        return Param(key, choices=choices)
    parts = rest.split(":")
    if kind not in ("int", "float") or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise SpecError(f"--space {key}: {spec!r} is not one of {FORMS}")
    low, high = _number(parts[0], key, kind), _number(parts[1], key, kind)
    if not low < high:
        raise SpecError(f"--space {key}: LO must be below HI, got {spec!r}")
    log = len(parts) == 3
    if log and low <= 0:
        raise SpecError(f"--space {key}: a log range needs LO > 0, got {spec!r}")
    return Param(key, low, high, log=log, is_int=kind == "int")


def parse_space(items: Sequence[str]) -> dict[str, Param]:
    """``--space`` items by key, in the order given."""
    space: dict[str, Param] = {}
    for item in items:
        p = parse_param(item)
        if p.key in space:
            raise SpecError(f"--space {p.key} is given twice")
        space[p.key] = p
    if not space:
        raise SpecError("a search needs at least one --space KEY=SPEC, e.g. --space layers.1.units=int:8:32")
    return space


def overrides_for(params: dict[str, Any]) -> list[str]:
    """Sampled values as ``--set`` items."""
    return [f"{k}={literal(v)}" for k, v in params.items()]


def check_space(pipeline: Path | str | None, overrides: Sequence[str], space: dict[str, Param]):
    """Load the pipeline with every end of every range and every choice (the other
    keys at their first value); returns the base spec and the space. Errors name
    the --space key, as the parser words them."""
    base = config.load(pipeline, overrides)
    lows = {k: p.ends()[0] for k, p in space.items()}
    for key, p in space.items():
        for value in p.ends():
            sets = overrides_for({**lows, key: value})
            try:
                spec = config.load(pipeline, [*overrides, *sets])
            except SpecError as e:
                if e.message.startswith("--set "):
                    raise SpecError("--space " + e.message.removeprefix("--set ")) from None
                raise SpecError(f"--space {key}={literal(value)}: {e.message}") from None
            if spec.data.validation_split == 0:
                raise SpecError("a search chooses by validation metrics, never by test accuracy, and "
                                f"data.validation_split is 0 (with {', '.join(sets)}); set it "
                                "(e.g. --set data.validation_split=0.1)")
    return base, space
