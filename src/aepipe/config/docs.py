"""The pipeline-field reference, generated from the spec itself.

The documentation's pipeline reference is filled from ``fields_markdown()``
when it is built (``docs/hooks.py``), so it cannot drift from the code.

    python -m aepipe.config.docs          # prints the markdown table
"""

from __future__ import annotations

import dataclasses
import json
import typing

from .spec import LayerSpec, PipelineSpec, public_fields


def field_table() -> list[tuple[str, str, str]]:
    """(key, default, help) for every field: the README's reference table."""
    rows = []

    def walk(cls, prefix):
        for f in public_fields(cls):
            hint = typing.get_type_hints(cls)[f.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{f.name}.")
                continue
            if f.name == "layers":
                walk(LayerSpec, "layers[].")
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((prefix + f.name, json.dumps(default), f.metadata.get("help", "")))

    walk(PipelineSpec, "")
    return rows


def fields_markdown() -> str:
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for key, default, help_text in field_table():
        rows.append(f"| `{key}` | `{default}` | {help_text.replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(fields_markdown())
