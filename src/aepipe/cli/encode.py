"""``aepipe encode``: top-layer codes of an array file, through AutoencoderTransformer.transform."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import click

from ..errors import BadArgument, DataError
from .common import make_runner, pipeline_command


def read_inputs(path: Path, key: str | None, label_column: str):
    """Rows from .npy, .npz (``key``, or its only array) or .csv (header optional,
    ``label_column`` dropped), scaled as the pipeline's own data is (uint8 -> [0, 1])."""
    import numpy as np

    from ..data.sources import as_float

    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if key is None and len(f.files) != 1:
                    raise DataError(f"{path} holds arrays {', '.join(f.files)}; choose one with --key")
                name = key or f.files[0]
                if name not in f.files:
                    raise DataError(f"{path} has no array {name!r} (it has {', '.join(f.files)})")
                x = f[name]
        elif suffix == ".csv":
            x = _read_csv(path, label_column)
        else:
            raise DataError(f"{path}: INPUT must be a .npy, .npz or .csv file")
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if x.ndim < 2:
        raise DataError(f"{path}: expected one row per sample, got an array of shape {x.shape}")
    x = as_float(x, str(path))
    return x.reshape(len(x), -1)


def _read_csv(path: Path, label_column: str):
    import numpy as np

    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    if rows and not _numeric(rows[0]):
        header, rows = rows[0], rows[1:]
        keep = [i for i, name in enumerate(header) if name != label_column]
        rows = [[row[i] for i in keep] for row in rows]
    for n, row in enumerate(rows, start=1):
        if not _numeric(row):
            raise DataError(f"{path} row {n}: non-numeric value")
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)


def _numeric(row) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


@pipeline_command("Encode an array file into the top layer's codes (.npy).", pipeline_option=True)
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="OUT.npy",
              help="Where to write the codes, one row per input row (float32).")
@click.option("--key", default=None, metavar="NAME", help="Array to read from an .npz INPUT [default: its only array].")
@click.option("--clusters", "clusters_out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              metavar="CLUSTERS.npy", help="Also write each row's cluster (int64) from the pipeline's [cluster] "
              "stage, as AutoencoderClusterer.predict gives it; the codes are then the clusterer's (for dec and "
              "idec, those of the refined encoder).")
def encode(spec, store, opts, input_path, out, key, clusters_out):
    """Encode INPUT (.npy, .npz or .csv, one sample per row, scaled like the
    pipeline's data) with the pretrained stack of -p PIPELINE (without it: the
    built-in digits pipeline) and write the top-layer codes to OUT.npy. Layers
    that are not cached are pretrained first. The codes are exactly what
    AutoencoderTransformer.transform gives for the estimator aepipe.load makes
    of the same stages. Rows well outside each feature's training range
    (another scale) get one warning on stderr."""
    import numpy as np

    from ..data.ranges import InputRangeWarning
    from ..engine.atomic import atomic_write_bytes
    from ..estimators.load import pipeline_estimator

    if input_path.is_dir():
        raise BadArgument(f"INPUT {str(input_path)!r} is a directory, not a file")
    if not input_path.is_file():
        raise BadArgument(f"INPUT file {str(input_path)!r} does not exist")
    if out.suffix != ".npy":
        raise BadArgument(f"-o {str(out)!r} must end in .npy (the codes are written as a NumPy array)")
    if not out.resolve().parent.is_dir():  # before any training; never create directories
        raise BadArgument(f"-o {str(out)!r}: the directory {str(out.parent)!r} does not exist")
    for path, option in ((clusters_out, "--clusters"),) if clusters_out is not None else ():
        if path.suffix != ".npy" or not path.resolve().parent.is_dir():
            raise BadArgument(f"{option} {str(path)!r} must end in .npy, in a directory that exists")
    if clusters_out is not None and spec.cluster.method == "none":
        raise BadArgument(f"--clusters: pipeline {spec.name!r} has no [cluster] section (set cluster.method)")
    x = read_inputs(input_path, key, spec.data.label_column)
    transformer = pipeline_estimator(make_runner(spec, store, opts), "pretrain" if clusters_out is None else "cluster")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputRangeWarning)
            codes = transformer.transform(x)
    except ValueError as e:
        raise DataError(f"{input_path}: {e}") from None
    for w in caught:  # one line on stderr, naming the file, whatever the warnings filters say
        if issubclass(w.category, InputRangeWarning):
            click.echo(f"warning: {input_path}: {str(w.message).split(': ', 1)[-1]}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    buf = io.BytesIO()
    np.save(buf, codes)
    if clusters_out is not None:  # both files or neither: the assignments are computed before either is written
        assigned, cbuf = transformer.predict(x), io.BytesIO()
        np.save(cbuf, assigned)
        atomic_write_bytes(clusters_out, cbuf.getvalue())
    atomic_write_bytes(out, buf.getvalue())
    if opts["json"]:
        click.echo(json.dumps({"output": str(out), "shape": list(codes.shape), "dtype": str(codes.dtype)}))
    else:
        click.echo(f"wrote {out}: {codes.shape[0]} rows x {codes.shape[1]} codes")
