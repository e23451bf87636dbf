"""``aepipe tsne``: t-SNE of raw inputs, PCA codes and autoencoder codes, scored."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import click

from .common import make_runner, pipeline_command

FEATURE_CHOICES = ("raw", "pca", "ae")


def _parse_features(ctx, param, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [n for n in names if n not in FEATURE_CHOICES]
    if bad or not names:
        raise click.BadParameter(f"{value!r}: give a comma-separated subset of {','.join(FEATURE_CHOICES)}")
    return names


@pipeline_command("t-SNE of raw, PCA and autoencoder features, with kNN accuracy and trustworthiness.",
)
@click.option("--features", default="raw,pca,ae", show_default=True, callback=_parse_features,
              metavar="LIST", help="Feature sets to embed: raw inputs, PCA codes as wide as the top "
                                   "autoencoder layer, and the top autoencoder codes.")
@click.option("--n", "n_points", type=click.IntRange(min=20), default=5000, show_default=True, metavar="N",
              help="Test points to embed (a seeded, stratified subset).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Where to write tsne.png, tsne.json, tsne.npz and report.md (for `aepipe report DIR`); "
                   "its parent directory must exist "
                   "[default: ARTIFACTS/runs/<pipeline>/tsne-<UTC time>].")
def tsne(spec, store, opts, features, n_points, out):
    """Embed test points of PIPELINE's data in 2-D with t-SNE and score each
    embedding: 5-fold cross-validated 10-NN accuracy and trustworthiness
    (10 neighbours). Autoencoder codes come from the pretrained top layer,
    which is trained first if it is not cached."""
    import numpy as np

    from ..analysis import metrics as ev
    from ..analysis.plots import save, tsne_figure
    from ..data.subset import stratified_subset
    from ..engine import layout
    from ..engine.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
    from ..errors import BadArgument
    from ..engine.plan import tsne_engine

    if out is not None and not out.resolve().parent.is_dir():  # before any training; never create directories
        raise BadArgument(f"-o {str(out)!r}: the directory {str(out.parent)!r} does not exist")
    runner = make_runner(spec, store, opts)
    codes = None
    if "ae" in features or "pca" in features:  # PCA is as wide as the top codes
        top = runner.run("pretrain").stages[-1]
        codes = np.load(Path(top.path) / layout.ENCODINGS_TEST, mmap_mode="r")
    data = runner.data
    idx = stratified_subset(data.y_test, n_points, spec.seed)
    sets = ev.feature_sets(data.x_test[idx], None if codes is None else np.asarray(codes[idx]),
                           features, spec.seed)
    engine = tsne_engine(spec.evaluate.tsne_engine)
    table, embeddings = ev.tsne_table(sets, data.y_test[idx], spec.seed, opts["log"], engine)

    if out is None:
        out = store.runs / spec.name / time.strftime("tsne-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "tsne.json", {"pipeline": spec.name, "tsne": table})
    # what `aepipe report DIR` reads: the scores as report.md, and as metrics.json for --json
    atomic_write_json(out / layout.RUN_METRICS, {"pipeline": spec.name, "tsne": table})
    atomic_write_text(out / layout.RUN_REPORT, _report(spec.name, table, len(idx)))
    buf = io.BytesIO()
    np.savez(buf, labels=data.y_test[idx], **embeddings)
    atomic_write_bytes(out / layout.TSNE_EMBEDDINGS, buf.getvalue())
    save(tsne_figure(embeddings, data.y_test[idx], table, data.classes), out / layout.TSNE_PNG)

    if opts["json"]:
        click.echo(json.dumps({"pipeline": spec.name, "out": str(out), "tsne": table}))
        return
    click.echo(f"{'features':<10} {'dims':>5} {'10-NN acc':>10} {'trust':>7} {'seconds':>8}")
    for name, row in table.items():
        click.echo(f"{name:<10} {row['dims']:>5} {_knn(row):>10} "
                   f"{row['trustworthiness']:>7.3f} {row['seconds']:>8.1f}")
    click.echo(f"plots: {out / 'tsne.png'}")


def _report(pipeline: str, table: dict, n: int) -> str:
    """The scores as Markdown, as a run's report.md gives its own."""
    lines = [f"# t-SNE of {pipeline}", "", f"{n} test points embedded in 2-D; scores of each embedding: 5-fold "
             "cross-validated 10-NN accuracy and trustworthiness (10 neighbours).", "",
             "| features | dims | 10-NN accuracy | trustworthiness | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['dims']} | {_knn(row)} | {row['trustworthiness']:.3f} | "
              f"{row['seconds']:.1f} |" for name, row in table.items()]
    return "\n".join([*lines, "", "Picture: tsne.png", ""])


def _knn(row: dict) -> str:
    """10-NN accuracy as shown: n/a on data without labels."""
    return "n/a" if row["knn_accuracy"] is None else f"{row['knn_accuracy']:.3f}"
