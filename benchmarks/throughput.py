"""Training FLOP/s of a dense stack: aepipe's training helper and plain Keras
`fit`, each against the FLOP/s of the bare matmuls of the same shapes and dtype
(float32; and bfloat16, aepipe's ``finetune.precision = "bfloat16"``). aepipe's
``train.fit`` runs in-memory rows through ``nn/loop.py`` with the optimizer the
supervised stages (finetune, baseline, head) compile, whose update is one
XLA-compiled call (``nn/fused.py``); the row "Keras' Adam update" is the same
fit with Keras' own update (``fused=False``: what pretraining and unrolling
run), the row "over tf.data" the fused fit through Keras' ``fit`` over
``feed.training_batches`` (``in_memory=False``), the path streamed inputs take.

    python benchmarks/throughput.py [--dims 784,1000,1000,1000,10] [--batch 256] [--rows 60000] [--rounds 3]

Each epoch and the matmul reference (the same FLOPs as one epoch) are timed
interleaved, ``--rounds`` times, and the best of each kept: the machine may be
shared, and the ratios compare figures taken under the same load.

FLOPs of one training step, counted exactly: forward 2*b*in*out per layer,
weight gradient the same, input gradient the same except for the first layer
(its input needs none). The matmul reference runs exactly those matmuls in a
compiled TensorFlow loop.

Then where a float32 step's time goes (``--no-breakdown`` skips it): one batch
already in memory, each piece traced once and timed over the same number of
calls, as a share of the bare matmuls' rate: the forward and backward passes
alone (gradients, no update), Keras' train_step with SGD and with Adam (the
difference: the optimizer update, loss and metrics), the train_step with the
fused Adam the supervised stages run, and the Adam update of every variable
alone, as Keras runs it and fused by XLA (``jit_compile``: the same update to
float rounding, not bit for bit).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import aepipe.nn._quiet  # noqa: E402,F401
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from aepipe.nn import train  # noqa: E402
from aepipe.nn.precision import compute_dtype  # noqa: E402


def step_flops(dims, batch):
    pairs = list(zip(dims[:-1], dims[1:]))
    mm = [2 * batch * i * o for i, o in pairs]
    return 2 * sum(mm) + sum(mm[1:])


def matmul_step(dims, batch, dtype=tf.float32):
    """One training step's matmuls, compiled (called once here: traced)."""
    rng = np.random.default_rng(0)

    def const(shape):
        return tf.cast(tf.constant(rng.standard_normal(shape, dtype=np.float32)), dtype)

    ws = [const((i, o)) for i, o in zip(dims[:-1], dims[1:])]
    xs = [const((batch, i)) for i in dims[:-1]]
    gs = [const((batch, o)) for o in dims[1:]]

    @tf.function
    def step():
        acc = tf.constant(0.0, dtype)
        for k, (x, w, g) in enumerate(zip(xs, ws, gs)):
            acc += tf.reduce_sum(tf.matmul(x, w)[:1, :1])  # forward
            acc += tf.reduce_sum(tf.matmul(x, g, transpose_a=True)[:1, :1])  # weight gradient
            if k:
                acc += tf.reduce_sum(tf.matmul(g, w, transpose_b=True)[:1, :1])  # input gradient
        return acc

    step()
    return step


def classifier(dims, precision="float32"):
    """As aepipe builds it: hidden layers in the compute dtype, softmax in float32."""
    keras.utils.set_random_seed(0)
    with compute_dtype(precision):
        layers = [keras.Input((dims[0],))]
        layers += [keras.layers.Dense(d, activation="relu") for d in dims[1:-1]]
        layers.append(keras.layers.Dense(dims[-1], activation="softmax", dtype="float32"))
        return keras.Sequential(layers)


def breakdown(dims, batch, steps=40, rounds=2):
    """Per-step milliseconds and rate of the pieces of one float32 training step."""
    rng = np.random.default_rng(0)
    xb = tf.constant(rng.random((batch, dims[0]), dtype=np.float32))
    yb = tf.constant(rng.integers(0, dims[-1], batch).astype(np.int32))
    spec = (tf.TensorSpec([None, dims[0]]), tf.TensorSpec([None], tf.int32))

    def step_of(optimizer, fused=False):
        model = classifier(dims)
        train.compile_model(model, optimizer, None, "sparse_categorical_crossentropy", ["accuracy"], fused=fused)
        fn = tf.function(model.train_step, autograph=False).get_concrete_function(spec)
        return lambda: fn((xb, yb))

    bare = classifier(dims)
    loss = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(autograph=False)
    def forward_backward():
        with tf.GradientTape() as tape:
            value = loss(yb, bare(xb, training=True))
        return [tf.reduce_sum(g[:1]) for g in tape.gradient(value, bare.trainable_variables)]

    def adam_update(jit):
        model = classifier(dims)
        opt = train.make_optimizer("adam")
        opt.build(model.trainable_variables)
        grads = [tf.fill(v.shape, 1e-3) for v in model.trainable_variables]
        fn = tf.function(lambda: opt.apply(grads, model.trainable_variables), autograph=False, jit_compile=jit)
        return fn

    pieces = {"matmuls": matmul_step(dims, batch), "forward + backward, no update": forward_backward,
              "train_step, sgd": step_of("sgd"),
              "train_step, adam": step_of("adam"), "train_step, adam fused (XLA)": step_of("adam", "auto"),
              "adam update alone (Keras)": adam_update(False),
              "adam update alone (XLA-fused)": adam_update(True)}
    best = {name: [] for name in pieces}
    for fn in pieces.values():
        fn()
    for _ in range(rounds):  # interleaved, best of each
        for name, fn in pieces.items():
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name].append((time.perf_counter() - t) / steps)
    flops = step_flops(dims, batch)
    ref = flops / min(best.pop("matmuls"))
    print(f"\nwhere a float32 step goes (batch {batch}, {steps} calls each, best of {rounds})")
    print(f"{'':34}{'ms/step':>9}{'GFLOP/s':>9}{'of matmul':>11}")
    print(f"{'bare float32 matmuls (reference)':34}{flops / ref * 1e3:9.2f}{ref / 1e9:9.1f}{1:11.2f}")
    for name in best:
        sec = min(best[name])
        if name.startswith("adam update"):
            print(f"{name:34}{sec * 1e3:9.2f}{'':9}{sec * ref / flops:11.2f} of a matmul step's time")
        else:
            print(f"{name:34}{sec * 1e3:9.2f}{flops / sec / 1e9:9.1f}{flops / sec / ref:11.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="784,1000,1000,1000,10")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timings of each; the best is kept")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the per-step breakdown")
    args = ap.parse_args()
    dims = [int(d) for d in args.dims.split(",")]
    rng = np.random.default_rng(0)
    x = rng.random((args.rows, dims[0]), dtype=np.float32)
    y = rng.integers(0, dims[-1], args.rows).astype(np.int32)
    epoch_flops = step_flops(dims, 1) * args.rows

    plain = classifier(dims)
    plain.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def ours(precision="float32", fused="auto"):  # "auto": as the finetune stage compiles it
        model = classifier(dims, precision)
        train.compile_model(model, "adam", None, "sparse_categorical_crossentropy", ["accuracy"], fused=fused)
        return model

    def keras_epoch():
        plain.fit(x, y, batch_size=args.batch, epochs=1, shuffle=True, verbose=0)

    def aepipe_epoch(model, in_memory=None):
        return lambda: train.fit(model, x, y, epochs=1, batch_size=args.batch, seed=0, in_memory=in_memory)

    def matmul_epoch(dtype):  # the FLOPs of one epoch
        step, steps = matmul_step(dims, args.batch, dtype), -(-args.rows // args.batch)

        def run():
            for _ in range(steps):
                step()
        return run

    runs = {"matmul_float32": matmul_epoch(tf.float32), "keras": keras_epoch, "aepipe": aepipe_epoch(ours()),
            "aepipe_keras_update": aepipe_epoch(ours(fused=False)),
            "aepipe_tf_data": aepipe_epoch(ours(), False), "matmul_bfloat16": matmul_epoch(tf.bfloat16),
            "aepipe_bf16": aepipe_epoch(ours("bfloat16"))}
    for fn in runs.values():
        fn()  # warm up: tracing, thread pools
    best = {name: [] for name in runs}
    for _ in range(args.rounds):  # interleaved, best of each: the machine is shared
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            best[name].append(time.perf_counter() - t)
    matmul_flops = step_flops(dims, args.batch) * -(-args.rows // args.batch)
    ref = {dtype: matmul_flops / min(best[f"matmul_{dtype}"]) for dtype in ("float32", "bfloat16")}
    print(f"dense stack {args.dims}, batch {args.batch}, {args.rows} rows, {epoch_flops / 1e9:.0f} GFLOP an epoch, "
          f"best of {args.rounds}")
    print(f"{'':42}{'GFLOP/s':>9}{'of matmul':>11}")
    rows = [("float32", "bare float32 matmuls (reference)", None), ("float32", "plain Keras fit", "keras"),
            ("float32", "aepipe train.fit (fused Adam, finetune's)", "aepipe"),
            ("float32", "aepipe train.fit, Keras' Adam update", "aepipe_keras_update"),
            ("float32", "aepipe train.fit over tf.data", "aepipe_tf_data"),
            ("bfloat16", "bare bfloat16 matmuls (reference)", None),
            ("bfloat16", "aepipe train.fit, bfloat16", "aepipe_bf16")]
    for dtype, label, name in rows:
        rate = ref[dtype] if name is None else epoch_flops / min(best[name])
        print(f"{label:42}{rate / 1e9:9.1f}{rate / ref[dtype]:11.2f}")
    if not args.no_breakdown:
        breakdown(dims, args.batch, rounds=args.rounds)


if __name__ == "__main__":
    main()
