"""The README is short and its promises hold: two commands first, a valid smallest pipeline."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_commands():
    block = README.read_text().split("```", 2)[1]
    commands = [line for line in block.splitlines()[1:] if line.strip()]
    assert len(commands) == 2
    assert "aepipe run" in commands[0] and "pytest" in commands[1]


def test_the_readmes_smallest_pipeline_is_valid():
    from aepipe import config

    text = README.read_text().split("The smallest valid pipeline is", 1)[1]
    block = text.split("```toml", 1)[1].split("```", 1)[0]
    assert config.loads(block, "README").layers[0].units == 32


def test_readme_stays_short():
    """The manual lives in docs/; the README is what, install, a tour, results and links."""
    assert len(README.read_text().splitlines()) <= 200
