"""Every code block of the README, CONTRIBUTING.md and docs/ is checked against the code.

TOML blocks are pipelines: they must validate. Every `aepipe ...` line of a
shell block must name a real command with real options, and its `--set` keys
must be pipeline fields. Python blocks run (slow: each trains a small model).
The generated references (pipeline fields, metrics.json keys) come from the code.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from aepipe import config
from aepipe.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(lang: str) -> list[tuple[str, str]]:
    """(an id naming page and block, the code) of every fenced block in that language."""
    out = []
    for page in PAGES:
        for i, m in enumerate(FENCE.finditer(page.read_text())):
            if m.group(1) == lang:
                out.append((f"{page.relative_to(ROOT)}#{i}", m.group(2)))
    return out


def aepipe_lines() -> list[tuple[str, list[str]]]:
    """Every `aepipe ...` command in a shell block, as argv after `aepipe`."""
    out = []
    for where, code in blocks("bash"):
        for line in code.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|", line.split(" #", 1)[0]):
                words = shlex.split(part.strip()) if part.strip() else []
                if words and words[0] == "aepipe":
                    out.append((f"{where}: {part.strip()}", words[1:]))
    return out


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}


@pytest.mark.parametrize("where,code", blocks("toml"), ids=lambda v: v if "#" in str(v) else "")
def test_every_toml_block_is_a_valid_pipeline(where, code):
    config.loads(code if "[[layers]]" in code else code + "\n[[layers]]\nunits = 8\n", where)


@pytest.mark.parametrize("where,argv", aepipe_lines(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_aepipe_command_line_names_real_commands_options_and_fields(where, argv):
    group_opts = _options(main)
    while argv and argv[0] in group_opts:  # aepipe -q run ...
        argv = argv[1:]
    assert argv, where
    cmd = main.get_command(click.Context(main), argv[0])
    assert cmd is not None, f"{where}: no command {argv[0]!r}"
    rest = argv[1:]
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = cmd.get_command(click.Context(cmd), rest[0])
        assert sub is not None, f"{where}: no command {rest[0]!r}"
        cmd, rest = sub, rest[1:]
    known = _options(cmd) | group_opts
    for i, word in enumerate(rest):
        if word.startswith("-") and not re.fullmatch(r"-\d.*", word):
            assert word.split("=", 1)[0] in known, f"{where}: {cmd.name} has no option {word!r}"
        if i and rest[i - 1] == "--set":
            config.loads("[[layers]]\nunits = 8\n[[layers]]\nunits = 4\n", where, overrides=[word])


def test_the_field_reference_and_metrics_reference_are_generated():
    """The reference pages hold the markers the docs hook fills from the code, not copies of it."""
    assert "<!-- aepipe:fields -->" in (ROOT / "docs/reference/pipeline.md").read_text()
    assert "<!-- aepipe:metrics -->" in (ROOT / "docs/reference/metrics.md").read_text()
    assert "::: mkdocs-click" in (ROOT / "docs/reference/cli.md").read_text()


def test_every_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert str(page.relative_to(ROOT / "docs")) in nav, f"{page} is not in mkdocs.yml's nav"


def test_readme_links_point_at_files_that_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text()):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to missing {target}"


@pytest.mark.slow
@pytest.mark.parametrize("where,code", blocks("python"), ids=lambda v: v if "#" in str(v) else "")
def test_every_python_block_runs(where, code, tmp_path):
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{where}:\n{p.stderr[-2000:]}"
