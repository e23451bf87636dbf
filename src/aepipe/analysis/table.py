"""Fixed-width text tables: what ``aepipe sweep``, ``tune``, ``runs`` and the label curve print."""

from __future__ import annotations


def fixed_width(rows: list[list[str]]) -> str:
    """Rows of cells, the header first, as left-aligned columns two spaces apart
    (no trailing blanks)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
