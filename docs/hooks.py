"""MkDocs hooks: references generated from the code at build time, and the results files.

``<!-- aepipe:fields -->`` becomes the pipeline field table (from the spec's
field metadata) and ``<!-- aepipe:metrics -->`` the metrics.json keys, so
neither can drift from the code. ``benchmarks/results/`` joins the site as
``results/``, so every figure on the benchmarks page links to its file, and
CONTRIBUTING.md becomes the contributing page (one home for both).
"""

from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

from aepipe.analysis.metrics_keys import metrics_markdown
from aepipe.config.docs import fields_markdown

GENERATED = {"<!-- aepipe:fields -->": fields_markdown, "<!-- aepipe:metrics -->": metrics_markdown}
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def on_files(files, config):
    files.append(File.generated(config, "contributing.md", abs_src_path=str(ROOT / "CONTRIBUTING.md")))
    for path in sorted(RESULTS.iterdir()):
        if path.suffix in (".md", ".png"):
            files.append(File.generated(config, f"results/{path.name}", abs_src_path=str(path),
                                        inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def on_page_markdown(markdown, page, config, files):
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
