"""The README's field table is generated from the spec; it must not drift."""

from pathlib import Path

from aepipe.config.docs import END, START, fields_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_field_table_matches_the_spec():
    text = README.read_text()
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == fields_markdown(), "run `python -m aepipe.config.docs --write README.md`"


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
