"""The evaluate stage: the fine-tuned net (and its random-init baseline) on the test split.

Both nets were scored by ``supervised.predict_classes`` from their saved
weights at float32 when their stages were built (``predictions.npy``); this
stage reads those predictions and compares them row by row
(``metrics.paired_comparison``).
It also stores what the run's pictures need, so a cached rerun draws them
without TensorFlow: reconstructions by depth, first-layer filters and a
variational layer's latent scatter (which needs the labels pretraining never sees).
"""

from __future__ import annotations

import numpy as np

from ..analysis.metrics import image_side, paired_comparison
from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan
from ..nn import inference
from .context import StageContext, pretrained_blocks


def run_evaluate(plan: StagePlan, ctx: StageContext) -> dict:
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    data, spec = ctx.data, ctx.spec
    pred = np.load(ctx.inputs["finetune"].file(layout.PREDICTIONS))
    names = [str(c) for c in data.classes]
    metrics = {
        "test_accuracy": float(accuracy_score(data.y_test, pred)),
        "confusion_matrix": confusion_matrix(data.y_test, pred, labels=range(data.n_classes)).tolist(),
        "classification_report": classification_report(
            data.y_test, pred, labels=range(data.n_classes), target_names=names, output_dict=True,
            zero_division=0),
        "n_test": int(len(data.y_test)),
    }
    if "baseline" in ctx.inputs:
        base_pred = np.load(ctx.inputs["baseline"].file(layout.PREDICTIONS))
        metrics.update(baseline_test_accuracy=float(np.mean(base_pred == data.y_test)),
                       baseline_epochs=spec.finetune.epochs, comparison=paired_comparison(data.y_test, pred, base_pred))
    if "baseline-plain" in ctx.inputs:  # random init, fine-tuned on the labeled rows alone
        plain = np.load(ctx.inputs["baseline-plain"].file(layout.PREDICTIONS))
        metrics.update(plain_baseline_test_accuracy=float(np.mean(plain == data.y_test)),
                       plain_comparison=paired_comparison(data.y_test, pred, plain))
    pictures, side = _pictures(ctx)
    metrics.update(pictures)
    metrics["reconstruction"] = _deep_reconstruction(ctx, pictures["reconstruction_mse_input"])
    atomic_write_json(ctx.workdir / layout.METRICS, metrics)
    return {"metrics": metrics, "image_side": side}


def _pictures(ctx: StageContext) -> tuple[dict, int | None]:
    """Reconstructions by depth (each layer's stored test codes decoded back down
    through the pretrained decoders), first-layer filters, variational latent
    scatters; and the input-space reconstruction error."""
    import keras

    data, spec = ctx.data, ctx.spec
    blocks = pretrained_blocks(spec, data.input_shape, ctx.inputs, decoders=True, unrolled=False)
    x = np.asarray(data.x_test, dtype=np.float32)
    show = _examples(data.y_test, 10)
    recons, mse = {}, {}
    for d, block in enumerate(blocks):
        codes = np.load(ctx.inputs[f"pretrain-{d}"].file(layout.ENCODINGS_TEST), mmap_mode="r")
        down = keras.Sequential([keras.Input(block.output_shape), *[b.decoder for b in reversed(blocks[:d + 1])]])
        recons[f"depth_{d}"] = inference.predict(down, np.asarray(codes[show]))
        mse[f"pretrain-{d}"] = inference.reconstruction_mse(down, codes, x)
    if "unroll" in ctx.inputs:  # the deep autoencoder the run fine-tuned end to end, input to input
        unrolled = pretrained_blocks(spec, data.input_shape, ctx.inputs, decoders=True, unrolled=True)
        whole = keras.Sequential([keras.Input(data.input_shape), *[b.encoder for b in unrolled],
                                  *[b.decoder for b in reversed(unrolled)]])
        recons["unrolled"] = inference.predict(whole, x[show])
    np.savez(ctx.workdir / layout.RECONSTRUCTIONS, originals=x[show], **recons)
    side = image_side(int(np.prod(data.input_shape)))
    kernel = next((w for w in blocks[0].encoder.get_weights() if w.ndim == 2), None)
    if side and kernel is not None and kernel.shape[0] == side * side:
        np.save(ctx.workdir / layout.FILTERS, kernel.T.astype(np.float32))
    _latent_scatters(ctx, blocks)
    return {"reconstruction_mse_input": mse}, side


def _deep_reconstruction(ctx: StageContext, mse_by_depth: dict) -> dict:
    """Test squared error per example (summed over its values) of the whole stack's
    reconstruction: greedy, unrolled, unrolled from random init, and PCA with as
    many components as the code, fitted on the training inputs in this run."""
    from ..analysis.metrics import pca_reconstruction

    data = ctx.data
    n_features = int(np.prod(data.input_shape))
    top = ctx.inputs[f"pretrain-{len(ctx.spec.layers) - 1}"]
    code = np.load(top.file(layout.ENCODINGS_TEST), mmap_mode="r")
    k = int(np.prod(code.shape[1:]))
    out = {"code_size": k, "greedy": mse_by_depth[top.manifest["name"]] * n_features}
    for name, key in (("unroll", "unroll"), ("unroll-baseline", "unroll_random_init")):
        if name in ctx.inputs:
            out[key] = ctx.inputs[name].manifest["metrics"]["squared_error_per_example"]
    if k >= n_features:  # a code as wide as the input: PCA with k components is exact, no comparison
        out["pca"] = out["pca_components"] = None
        return out
    pca = pca_reconstruction(data.x_train, data.x_test, k, ctx.spec.seed)
    out["pca"], out["pca_components"] = pca["squared_error_per_example"], pca["components"]
    if k == 2:  # the paper's Figure 3: the 2-D code by class, next to PCA's 2-D projection
        from ..analysis.latent_plots import code_and_pca_figure
        from ..analysis.plots import save

        source = ctx.inputs.get("unroll") or top
        codes = np.load(source.file(layout.ENCODINGS_TEST)).reshape(len(data.y_test), 2)
        title = "unrolled autoencoder" if "unroll" in ctx.inputs else "greedy autoencoder"
        save(code_and_pca_figure(codes, pca["test_projection"], data.y_test, title), ctx.workdir / layout.CODE_SCATTER)
    return out


def _latent_scatters(ctx: StageContext, blocks) -> None:
    from ..analysis.latent_plots import scatter_figure
    from ..analysis.plots import save

    for i, block in enumerate(blocks):
        if block.kind != "variational":
            continue
        z = np.load(ctx.inputs[f"pretrain-{i}"].file(layout.ENCODINGS_TEST))
        if z.shape[1] >= 2:
            save(scatter_figure(z, ctx.data.y_test), ctx.workdir / layout.latent_scatter(i))


def _examples(y: np.ndarray, n: int) -> np.ndarray:
    """The first test row of each class, then the next rows, ``n`` in all."""
    first = [int(np.flatnonzero(y == k)[0]) for k in np.unique(y)][:n]
    rest = [i for i in range(len(y)) if i not in set(first)][:max(0, n - len(first))]
    return np.array(first + rest)
