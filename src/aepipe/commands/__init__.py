"""CLI commands that live in their own modules, imported lazily by aepipe.cli."""
