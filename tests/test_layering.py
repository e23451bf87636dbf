"""The layer order: each subpackage of aepipe imports only itself and those below it.

Every import is read from the source with ``ast`` (those inside functions too),
so a lazy import that reaches upward fails here as a top-level one would.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aepipe"
# bottom to top; the README's layout sentence states the same order
ORDER = ["config", "engine", "data", "nn", "analysis", "stages", "pipeline", "tracking", "tune", "estimators", "cli"]
BASE = {"errors"}  # aepipe/errors.py: below every layer
SIDE_EFFECT = {"aepipe.nn._quiet"}  # imported for what importing does (TensorFlow's notices off stderr), before keras


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every aepipe module ``path`` imports, absolute, e.g. ``aepipe.engine.layout``."""
    package = ["aepipe", *path.relative_to(SRC).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "aepipe"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "aepipe":
                continue
            if module == "aepipe" or (node.level and not node.module):  # `from .. import config`
                out += [(node.lineno, f"{module}.{a.name}" if _is_module(module, a.name) else module)
                        for a in node.names]
            else:
                out.append((node.lineno, module))
    return out


def _is_module(package: str, name: str) -> bool:
    where = SRC.parent.joinpath(*package.split("."), name)
    return where.is_dir() or where.with_suffix(".py").is_file()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_order_names_every_subpackage():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ORDER)


@pytest.mark.parametrize("layer", ORDER)
def test_each_layer_imports_only_itself_and_those_below(layer):
    allowed = set(ORDER[:ORDER.index(layer) + 1]) | BASE
    upward = [f"{p.relative_to(SRC)}:{line} imports {module}"
              for p in sorted((SRC / layer).rglob("*.py")) for line, module in _imported(p)
              if _layer(module) is not None and _layer(module) not in allowed]
    assert not upward, "\n".join(upward)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_package_reaches_into_another_ones_private_names():
    """``from ..pipeline.sweep import _helper`` and ``sweep._helper(...)`` from outside pipeline/."""
    found = []
    for p in sorted(SRC.rglob("*.py")):
        package = ["aepipe", *p.relative_to(SRC).parent.parts]
        here = _layer(".".join(package))
        tree = ast.parse(p.read_text(), str(p))
        modules = set()  # local names bound to another layer's modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
                if _layer(module) == here:
                    continue
                found += [f"{p.relative_to(SRC)}:{node.lineno} imports {module}.{a.name}"
                          for a in node.names if _private(a.name) and f"{module}.{a.name}" not in SIDE_EFFECT]
                modules |= {a.asname or a.name for a in node.names}
        found += [f"{p.relative_to(SRC)}:{node.lineno} uses {node.value.id}.{node.attr}"
                  for node in ast.walk(tree) if isinstance(node, ast.Attribute) and _private(node.attr)
                  and isinstance(node.value, ast.Name) and node.value.id in modules]
    assert not found, "\n".join(found)


def test_relative_imports_resolve_to_their_layer():
    sample = SRC / "pipeline" / "sweep.py"
    assert {_layer(m) for _, m in _imported(sample)} >= {"config", "analysis", "pipeline"}
