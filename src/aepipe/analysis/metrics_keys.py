"""The keys of a run's ``metrics.json``, with what each holds.

One home for their meaning: the documentation's metrics reference is generated
from this table, and a test checks that a real run writes no key it lacks.
"""

from __future__ import annotations

METRICS_KEYS: dict[str, str] = {
    "test_accuracy": "accuracy of the fine-tuned (pretrained) net on the test split",
    "confusion_matrix": "the fine-tuned net's confusion matrix on the test split, rows true class, columns predicted",
    "classification_report": "scikit-learn's classification_report of the fine-tuned net, as a dict",
    "n_test": "number of test rows every figure is computed on",
    "baseline_test_accuracy": "(evaluate.baseline) accuracy of the random-init twin: same network, data order, "
                              "noise seeds and fine-tune budget, from random weights",
    "baseline_epochs": "(evaluate.baseline) the twin's epoch budget, the fine-tune's",
    "baseline_seconds": "(evaluate.baseline) seconds the twin took to train",
    "comparison": "(evaluate.baseline) the paired comparison of pretrained and twin on the same rows: n, "
                  "only_pretrained, only_baseline, both, neither, accuracy_difference, ci95, p_value "
                  "(exact McNemar), verdict",
    "plain_baseline_test_accuracy": "(few-label mode) accuracy of the random-init net fine-tuned on the labeled "
                                    "rows alone, without the options that learn from unlabeled inputs",
    "plain_comparison": "(few-label mode) the paired comparison of pretrained and that plain net",
    "reconstruction_mse": "per pretrain stage, its test reconstruction error on its own input (the codes below it)",
    "reconstruction_mse_input": "per depth, the test reconstruction error in input space, decoding down through "
                                "every pretrained decoder",
    "reconstruction": "the whole stack's test squared error per example (summed over its values): greedy, unroll "
                      "and unroll_random_init (with an unroll stage), pca of the same width; code_size, "
                      "pca_components",
    "replicates": "(evaluate.replicates > 1) n, per_replicate figures and the across-seed finding: means, "
                  "standard deviations, the paired t test, how many seeds pretraining helped or hurt",
    "tsne": "(evaluate.tsne) per input (raw, pca, ae): 10-NN accuracy of the 2-D embedding (5-fold CV), "
            "trustworthiness, seconds, dims, points",
    "clustering": "(a [cluster] section) the cluster stage's figures and those it is compared with",
    "stages": "per stage, the seconds it took to build (from its manifest, so a cached stage shows its original build time)",
}


def metrics_markdown() -> str:
    """The table of the documentation's metrics reference."""
    rows = ["| key | what it holds |", "|---|---|"]
    rows += [f"| `{key}` | {meaning} |" for key, meaning in METRICS_KEYS.items()]
    return "\n".join(rows)
