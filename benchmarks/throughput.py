"""Training FLOP/s of a dense stack: aepipe's training helper and plain Keras
`fit`, each against the FLOP/s of the bare matmuls of the same shapes.

    python benchmarks/throughput.py [--dims 784,1000,1000,1000,10] [--batch 256] [--rows 60000]

FLOPs of one training step, counted exactly: forward 2*b*in*out per layer,
weight gradient the same, input gradient the same except for the first layer
(its input needs none). The matmul reference runs exactly those matmuls in a
compiled TensorFlow loop.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import aepipe._quiet  # noqa: E402,F401
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from aepipe import train  # noqa: E402


def step_flops(dims, batch):
    pairs = list(zip(dims[:-1], dims[1:]))
    mm = [2 * batch * i * o for i, o in pairs]
    return 2 * sum(mm) + sum(mm[1:])


def matmul_rate(dims, batch, repeats=200):
    rng = np.random.default_rng(0)
    ws = [tf.constant(rng.standard_normal((i, o), dtype=np.float32)) for i, o in zip(dims[:-1], dims[1:])]
    xs = [tf.constant(rng.standard_normal((batch, i), dtype=np.float32)) for i in dims[:-1]]
    gs = [tf.constant(rng.standard_normal((batch, o), dtype=np.float32)) for o in dims[1:]]

    @tf.function
    def step():
        acc = tf.constant(0.0)
        for k, (x, w, g) in enumerate(zip(xs, ws, gs)):
            acc += tf.reduce_sum(tf.matmul(x, w)[:1, :1])  # forward
            acc += tf.reduce_sum(tf.matmul(x, g, transpose_a=True)[:1, :1])  # weight gradient
            if k:
                acc += tf.reduce_sum(tf.matmul(g, w, transpose_b=True)[:1, :1])  # input gradient
        return acc

    step()
    t = time.perf_counter()
    for _ in range(repeats):
        step()
    return step_flops(dims, batch) * repeats / (time.perf_counter() - t)


def classifier(dims):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((dims[0],))]
    layers += [keras.layers.Dense(d, activation="relu") for d in dims[1:-1]]
    layers.append(keras.layers.Dense(dims[-1], activation="softmax"))
    return keras.Sequential(layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="784,1000,1000,1000,10")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rows", type=int, default=60000)
    args = ap.parse_args()
    dims = [int(d) for d in args.dims.split(",")]
    rng = np.random.default_rng(0)
    x = rng.random((args.rows, dims[0]), dtype=np.float32)
    y = rng.integers(0, dims[-1], args.rows).astype(np.int32)
    epoch_flops = step_flops(dims, 1) * args.rows

    plain = classifier(dims)
    plain.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ours = classifier(dims)
    train.compile_model(ours, "adam", None, "sparse_categorical_crossentropy", ["accuracy"])

    def keras_epoch():
        plain.fit(x, y, batch_size=args.batch, epochs=1, shuffle=True, verbose=0)

    def aepipe_epoch():
        train.fit(ours, x, y, epochs=1, batch_size=args.batch, seed=0)

    keras_epoch(), aepipe_epoch()  # warm up: tracing, thread pools
    best = {"keras": [], "aepipe": []}
    for _ in range(2):  # interleaved, best of two: the machine is shared
        for name, fn in (("keras", keras_epoch), ("aepipe", aepipe_epoch)):
            t = time.perf_counter()
            fn()
            best[name].append(time.perf_counter() - t)
    ref = matmul_rate(dims, args.batch)
    print(f"dense stack {args.dims}, batch {args.batch}, {args.rows} rows, {epoch_flops / 1e9:.0f} GFLOP an epoch")
    print(f"{'':28}{'GFLOP/s':>9}{'of matmul':>11}")
    print(f"{'bare matmuls (reference)':28}{ref / 1e9:9.1f}{1:11.2f}")
    for name, label in (("keras", "plain Keras fit"), ("aepipe", "aepipe train.fit")):
        rate = epoch_flops / min(best[name])
        print(f"{label:28}{rate / 1e9:9.1f}{rate / ref:11.2f}")


if __name__ == "__main__":
    main()
