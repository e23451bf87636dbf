"""The seed 004 recipe written by hand in plain Keras: the reference aepipe is timed against.

784-128 (relu/sigmoid, BCE) -> 128-64 (relu/linear, MSE) -> softmax head ->
fine-tune the stack; rmsprop, batch 256, validation_split 0.1. Prints one JSON line.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
t0 = time.perf_counter()
import keras  # noqa: E402
import numpy as np  # noqa: E402


def main(path, epochs):
    keras.utils.set_random_seed(0)
    with np.load(path) as f:
        x_train = f["x_train"].reshape(-1, 784).astype("float32") / 255
        x_test = f["x_test"].reshape(-1, 784).astype("float32") / 255
        y_train, y_test = f["y_train"], f["y_test"]
    fit = dict(batch_size=256, epochs=epochs, validation_split=0.1, verbose=0)

    ae1 = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                            keras.layers.Dense(784, activation="sigmoid")])
    ae1.compile(optimizer="rmsprop", loss="binary_crossentropy")
    ae1.fit(x_train, x_train, **fit)
    enc1 = keras.Sequential([keras.Input((784,)), ae1.layers[0]])
    codes1 = enc1.predict(x_train, batch_size=4096, verbose=0)

    ae2 = keras.Sequential([keras.Input((128,)), keras.layers.Dense(64, activation="relu"),
                            keras.layers.Dense(128, activation="linear")])
    ae2.compile(optimizer="rmsprop", loss="mse")
    ae2.fit(codes1, codes1, **fit)
    enc2 = keras.Sequential([keras.Input((128,)), ae2.layers[0]])
    codes2 = enc2.predict(codes1, batch_size=4096, verbose=0)

    head = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    head.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(codes2, y_train, **fit)

    model = keras.Sequential([keras.Input((784,)), ae1.layers[0], ae2.layers[0], head.layers[0]])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, **fit)
    _, acc = model.evaluate(x_test, y_test, batch_size=4096, verbose=0)
    return acc


if __name__ == "__main__":
    acc = main(sys.argv[1], int(sys.argv[2]))
    print(json.dumps({"test_accuracy": acc, "seconds": time.perf_counter() - t0}))
