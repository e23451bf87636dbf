"""What the tool itself costs, each figure next to its reference, measured in one run.

    python benchmarks/overhead.py [--repeats 5]

- `aepipe --help` vs `python -c "import click"` (start-up, no TensorFlow)
- a fully cached `aepipe run` (digits) vs `python -c "import tensorflow"`
- `AutoencoderTransformer.transform` vs `model.predict` of the same Keras encoder
Wall times are the best of --repeats, commands run as fresh processes.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
AEPIPE = [sys.executable, "-m", "aepipe.cli"]


def best_wall(cmd, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, env=ENV, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times)


def transform_vs_predict(repeats, rows=60000):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from aepipe import AutoencoderTransformer

    x = np.random.default_rng(0).random((rows, 784), dtype=np.float32)
    ae = AutoencoderTransformer(layers=(128, 64), epochs=1, random_state=0).fit(x[:5000])
    encoder = ae.keras_model_
    ae.transform(x[:100]), encoder.predict(x[:100], verbose=0)  # warm up both

    def best(fn):
        out = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return min(out)

    t_ours = best(lambda: ae.transform(x))
    t_keras = best(lambda: encoder.predict(x, batch_size=256, verbose=0))
    return rows / t_ours, rows / t_keras


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    r = args.repeats
    rows = []
    rows.append(("aepipe --help", best_wall([*AEPIPE, "--help"], r),
                 'python -c "import click"', best_wall([sys.executable, "-c", "import click"], r)))
    with tempfile.TemporaryDirectory() as art:
        run = [*AEPIPE, "run", "-q", "--artifacts", art]
        subprocess.run(run, env=ENV, check=True, capture_output=True)  # cold run builds the cache
        rows.append(("aepipe run (all cached)", best_wall(run, r),
                     'python -c "import tensorflow"', best_wall([sys.executable, "-c", "import tensorflow"], r)))
        rows.append(("aepipe status", best_wall([*AEPIPE, "status", "--artifacts", art], r),
                     'python -c "import click"', rows[0][3]))
    print(f"{'aepipe':28}{'s':>8}   {'reference':32}{'s':>8}{'ratio':>8}")
    for name, t, ref_name, ref in rows:
        print(f"{name:28}{t:8.2f}   {ref_name:32}{ref:8.2f}{t / ref:8.2f}")
    ours, keras_rate = transform_vs_predict(r)
    print(f"{'transform rows/s':28}{ours:8.0f}   {'encoder.predict rows/s':32}{keras_rate:8.0f}"
          f"{ours / keras_rate:8.2f}")


if __name__ == "__main__":
    main()
