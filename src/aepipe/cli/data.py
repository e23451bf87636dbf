"""``aepipe data``: get a data set into the place aepipe looks for it."""

from __future__ import annotations

import click

from ..errors import DataError

MNIST_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


@click.group()
def data():
    """Get data sets aepipe reads by name."""


@data.command()
def mnist():
    """Download MNIST into Keras' cache (once), and print where it is.

    Uses keras.datasets.mnist.load_data(), so the copy lands where Keras keeps
    it ($KERAS_HOME/datasets/mnist.npz, else ~/.keras/datasets/mnist.npz) and
    `data.source = "mnist"` finds it with no setting. Needs the internet once.
    """
    import os

    from ..data.sources import keras_mnist_path

    path = keras_mnist_path()
    if path.is_file():
        click.echo(f"MNIST is already in Keras' cache: {path}")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    click.echo(f"downloading MNIST (11 MB) from {MNIST_ORIGIN} into {path.parent} ...", err=True)
    try:
        keras.datasets.mnist.load_data()
    except Exception as e:  # noqa: BLE001 - Keras wraps URLError, HTTPError and OSError in plain Exception
        raise DataError(f"could not download it from {MNIST_ORIGIN} (is this machine offline?): "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}. Copy mnist.npz to {path} "
                        "or point data.path or AEPIPE_MNIST at it", "mnist") from None
    if not path.is_file():  # Keras fell back to another cache directory (its own was not writable)
        raise DataError(f"Keras downloaded it, but not to {path} (is {path.parent} writable?); "
                        "point AEPIPE_MNIST at the copy Keras reported", "mnist")
    click.echo(f"MNIST is in Keras' cache: {path}")
