"""Generate the README's pipeline-field reference from the spec itself.

    python -m aepipe.docs          # prints the markdown table
    python -m aepipe.docs --write  # rewrites it between the README markers
"""

from __future__ import annotations

import sys
from pathlib import Path

from .spec import field_table

START, END = "<!-- fields:start -->", "<!-- fields:end -->"


def fields_markdown() -> str:
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for key, default, help_text in field_table():
        rows.append(f"| `{key}` | `{default}` | {help_text.replace('|', '/')} |")
    return "\n".join(rows)


def rewrite(readme: Path) -> None:
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{fields_markdown()}\n{END}{tail}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        rewrite(Path(sys.argv[sys.argv.index("--write") + 1]) if len(sys.argv) > 2 else Path("README.md"))
    else:
        print(fields_markdown())
