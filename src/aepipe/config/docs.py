"""The pipeline-field reference, generated from the spec itself.

The documentation's pipeline reference is filled from ``fields_markdown()``
when it is built (``docs/hooks.py``), so it cannot drift from the code.

    python -m aepipe.config.docs          # prints the markdown table
"""

from __future__ import annotations

from .spec import field_table


def fields_markdown() -> str:
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for key, default, help_text in field_table():
        rows.append(f"| `{key}` | `{default}` | {help_text.replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(fields_markdown())
