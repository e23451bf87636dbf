"""``aepipe export``: the fine-tuned classifier (or the encoder stack) as a plain ``.keras`` file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import make_runner, pipeline_command


@pipeline_command("Save the fine-tuned classifier as a .keras file plain Keras opens.")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="MODEL.keras",
              help="Where to write the model; must end in .keras.")
@click.option("--encoder", is_flag=True, help="Export the pretrained encoder stack instead of the classifier.")
def export(spec, store, opts, out, encoder):
    """Write PIPELINE's fine-tuned classifier (softmax outputs in the order of
    the classes printed) as a standard .keras file that
    keras.saving.load_model opens with safe_mode on, without aepipe
    installed. With --encoder, write the pretrained encoder stack, whose
    outputs are the top-layer codes. Stages that are not cached are built first.
    The file's outputs equal the estimator's to float32 rounding (relative
    1e-5, the same predicted class): aepipe runs a net on fixed blocks of 256
    rows, so that a row's result never depends on the rows beside it, while
    plain Keras computes on whatever batch it is given."""
    if out.suffix != ".keras":
        raise click.BadParameter(f"{str(out)!r} must end in .keras", param_hint="'-o' / '--out'")
    if not out.resolve().parent.is_dir():  # before any training; never create directories
        from ..errors import BadArgument

        raise BadArgument(f"-o {str(out)!r}: the directory {str(out.parent)!r} does not exist")
    from ..estimators.load import pipeline_estimator, save_keras

    estimator = pipeline_estimator(make_runner(spec, store, opts), "pretrain" if encoder else "finetune")
    model = estimator.keras_model_
    save_keras(model, out)
    result = {"output": str(out), "model": "encoder" if encoder else "classifier",
              "input_shape": list(model.input_shape[1:]), "output_shape": list(model.output_shape[1:])}
    if not encoder:
        result["classes"] = estimator.classes_.tolist()
    if opts["json"]:
        click.echo(json.dumps(result))
        return
    click.echo(f"wrote {out}: {result['model']} {tuple(result['input_shape'])} -> {tuple(result['output_shape'])}")
    if not encoder:
        click.echo(f"output columns are classes {result['classes']}")
