"""The pipeline spec as frozen dataclasses: every field with its default, check and help.

The parser (``parse``), the ``--set`` overrides, the stage keys
(``relevance``) and the README's field table are all driven from the dataclass
metadata here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import training as rules

BLOCK_KINDS = ("dense", "conv", "lstm", "variational")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear", "selu", "elu", "gelu", "softplus", "swish")
LOSSES = ("binary_crossentropy", "mse", "mae")
OPTIMIZERS = ("rmsprop", "adam", "sgd", "adamw", "nadam")
TSNE_ENGINES = ("auto", "opentsne", "sklearn")


def _f(default, help, *, check=None, choices=None, factory=None):
    """A spec field: default, help text and validation in one place."""
    meta = {"help": help, "check": check, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


STOP_HELP = ("stop once the training loss (the validation loss with early_stopping) has not improved by more "
             "than tol for n_iter_no_change + 1 epochs in a row, as scikit-learn's MLPClassifier does; 0: train "
             "every epoch")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = "one path component: a letter or digit, then letters, digits, '.', '_' or '-'"


def is_path_component(v: str) -> bool:
    """A name that becomes a file or directory name: one component, no '..' (pipeline, study)."""
    return bool(_NAME.fullmatch(v)) and ".." not in v


_POSITIVE = (lambda v: v > 0, "a positive number")
_NON_NEGATIVE = (lambda v: v >= 0, "a number >= 0")
_FRACTION = (lambda v: 0 <= v < 1, "a number in [0, 1)")
_UNIT_FRACTION = (lambda v: 0 <= v <= 1, "a number in [0, 1]")
_OPTIONAL_POSITIVE = (lambda v: v is None or v > 0, "a positive number")
_OPTIONAL_NON_NEGATIVE = (lambda v: v is None or v >= 0, "a number >= 0")


@dataclass(frozen=True)
class NoiseSpec:
    """Input corruption for denoising autoencoders; the target stays clean."""

    kind: str = _f(rules.NOISE, "input noise: none, gaussian, masking or salt_pepper",
                   choices=("none", "gaussian", "masking", "salt_pepper"))
    stddev: float = _f(0.1, "standard deviation of gaussian noise (clipped to [0, 1] for a "
                       "binary_crossentropy layer, whose inputs are in [0, 1])",
                       check=_NON_NEGATIVE)
    fraction: float = _f(0.25, "fraction of inputs zeroed (masking) or set to 0/1 (salt_pepper)",
                         check=_UNIT_FRACTION)


@dataclass(frozen=True)
class TrainingSpec:
    """What every trained phase shares: a layer's pretraining, the head, fine-tuning."""

    optimizer: str = _f(rules.OPTIMIZER, "optimizer", choices=OPTIMIZERS)
    learning_rate: float | None = _f(None, "learning rate; none: the optimizer's default",
                                     check=_OPTIONAL_POSITIVE)
    batch_size: int | str = _f(rules.AUTO, rules.BATCH_HELP, check=rules.BATCH_CHECK)
    epochs: int = _f(rules.EPOCHS, "epochs (the budget, with n_iter_no_change)", check=_POSITIVE)
    n_iter_no_change: int = _f(rules.N_ITER_NO_CHANGE, STOP_HELP, check=_NON_NEGATIVE)
    tol: float = _f(rules.TOL, "the improvement n_iter_no_change asks for", check=_NON_NEGATIVE)
    early_stopping: bool = _f(False, "n_iter_no_change watches the validation loss (needs data.validation_split)")


@dataclass(frozen=True)
class LayerSpec(TrainingSpec):
    """One autoencoder block of the stack, and how it is pretrained (the TrainingSpec fields)."""

    kind: str = _f("dense", "block kind: dense, conv (conv + pooling, 2-D images), lstm (seq2seq on "
                   "(timesteps, features) sequences) or variational (Gaussian latent, KL term)",
                   choices=BLOCK_KINDS)
    units: int = _f(32, "width of the code this block learns (dense, lstm, variational latent)",
                    check=_POSITIVE)
    activation: str = _f("relu", "encoder activation", choices=ACTIVATIONS)
    decoder_activation: str = _f(
        "auto", "decoder activation; auto: for layer 0, sigmoid when the training inputs lie in [0, 1], else linear "
        "(chosen when the data are read; spec.json holds the result); above it, linear (with unroll: the activation "
        "of the layer below, so the unrolled decoder mirrors the encoder)", choices=ACTIVATIONS + ("auto",))
    loss: str = _f("auto", "reconstruction loss; auto: binary_crossentropy after a sigmoid decoder, else mse",
                   choices=LOSSES + ("auto",))
    l1: float = _f(0.0, "L1 activity penalty on the code (sparse autoencoder)", check=_NON_NEGATIVE)
    noise: NoiseSpec = _f(None, "input noise (denoising autoencoder)", factory=NoiseSpec)
    tied: bool = _f(False, "dense only: the decoder reuses the transpose of the encoder kernel (own bias)")
    filters: int = _f(16, "conv only: feature maps of the encoder convolution", check=_POSITIVE)
    kernel_size: int = _f(3, "conv only: square kernel size", check=_POSITIVE)
    pool_size: int = _f(2, "conv only: max-pooling factor after the convolution; 1: no pooling",
                        check=_POSITIVE)
    upsampling: str = _f("upsampling", "conv only: decoder upsampling: upsampling (UpSampling2D + Conv2D) "
                         "or transpose (strided Conv2DTranspose)", choices=("upsampling", "transpose"))
    hidden: int = _f(0, "variational only: width of a hidden layer before the latent (and after, in the "
                     "decoder); 0: none", check=_NON_NEGATIVE)
    kl_weight: float = _f(1.0, "variational only: weight of the KL term (1: the evidence lower bound)",
                          check=_NON_NEGATIVE)
    stop_gradient: bool = _f(False, "layer_matching only: the matching term at this layer's input does not "
                             "train the layers below, so this layer learns like a greedy stage")


LAYER_DEFAULT_KEYS = tuple(f.name for f in dataclasses.fields(LayerSpec) if f.name != "units")


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from and how it is split."""

    source: str = _f("digits", "digits | mnist | sequences (synthetic waveforms) | npz:PATH | npy:PATH | csv:PATH",
                     check=(lambda v: v in ("digits", "mnist", "sequences")
                            or v.split(":", 1)[0] in ("npz", "npy", "csv")
                            and ":" in v and len(v.split(":", 1)[1]) > 0,
                            "digits, mnist, sequences, npz:PATH, npy:PATH or csv:PATH"))
    path: str | None = _f(None, "path of mnist.npz (else $AEPIPE_MNIST, else Keras' cache: "
                          "$KERAS_HOME/datasets/mnist.npz, else ~/.keras/datasets/mnist.npz)")
    validation_split: float = _f(0.1, "last fraction of the training set held out for validation",
                                 check=_FRACTION)
    test_size: float = _f(0.25, "test fraction for sources without a test set: stratified (digits, csv), "
                          "the last rows of the file (npy)",
                          check=(lambda v: 0 < v < 1, "a number in (0, 1)"))
    labels: int | None = _f(None, "few-label mode: head and fine-tune see only this many labeled examples",
                            check=_OPTIONAL_POSITIVE)
    label_seed: int | None = _f(None, "few-label mode: seed of the labeled-subset draw and of the fine-tune "
                                "initialisation (pretraining keeps seed, so draws share it); none: seed",
                                check=(lambda v: v is None or (isinstance(v, int) and v >= 0),
                                       "a whole number >= 0"))
    validation_labels: int | None = _f(None, "few-label mode: validate head and fine-tune on this many more "
                                       "labeled rows, a seeded stratified draw from the training rows outside "
                                       "data.labels that then leave the unlabeled pool (at most data.labels); "
                                       "none: the last validation_split of the labeled subset",
                                       check=_OPTIONAL_POSITIVE)
    labeled: bool = _f(True, "false: the data has no labels (a csv without a label column, an npy without a "
                       "label file; other sources' labels are ignored): pretraining, unroll and cluster run, head, "
                       "fine-tune, evaluate and t-SNE are skipped, and clusters are scored without labels")
    label_column: str = _f("label", "name of the label column (csv)")
    label_path: str | None = _f(None, "labels of npy:PATH, one per row (.npy); none: the file beside it, "
                                "data/x.labels.npy for npy:data/x.npy")


@dataclass(frozen=True)
class PretrainSpec:
    """How the stack is pretrained. Any [[layers]] field except units may also be
    given here, as the default for every layer."""

    mode: str = _f("greedy", "greedy: one autoencoder per layer on the previous codes; joint: the deep "
                   "autoencoder trained end to end; layer_matching: joint, plus at each depth i the distance "
                   "between encoder input e_i and decoder output d_i (joint modes train with layer 0's "
                   "optimizer, learning_rate, batch_size and epochs)",
                   choices=("greedy", "joint", "layer_matching"))
    match_weight: float = _f(1.0, "layer_matching: weight of each depth's matching term", check=_NON_NEGATIVE)


@dataclass(frozen=True)
class UnrollSpec(TrainingSpec):
    """Hinton & Salakhutdinov 2006: after greedy pretraining, the encoders and
    then their decoders in mirror order, fine-tuned end to end on reconstruction
    of the inputs (with layer 0's loss, on clean inputs)."""

    epochs: int = _f(0, "epochs of end-to-end reconstruction fine-tuning of the unrolled deep autoencoder (the "
                     "unroll stage); 0: no unroll stage", check=_NON_NEGATIVE)
    schedule: str = _f("constant", "learning rate: constant, or cosine decay to 0 over the unroll epochs",
                       choices=("constant", "cosine"))
    warmup: int = _f(0, "epochs of linear learning-rate warm-up from 0 before the schedule starts (the cosine "
                     "then decays over the remaining epochs); 0: none", check=_NON_NEGATIVE)
    input_noise: float = _f(0.0, "standard deviation of Gaussian noise added to the inputs while the unrolled "
                            "autoencoder (and its random-init twin) trains; the target stays the clean input; "
                            "0: none", check=_NON_NEGATIVE)
    weight_decay: float | None = _f(None, "decoupled weight decay of the unroll optimizer (Keras' weight_decay, "
                                    "Loshchilov & Hutter 2019); none: the optimizer's default (adamw 0.004, "
                                    "else 0)", check=_OPTIONAL_NON_NEGATIVE)
    loss: str = _f("auto", "reconstruction loss of the inputs; auto: layer 0's", choices=LOSSES + ("auto",))
    precision: str = _f("float32", "compute dtype while unrolled training runs: float32, bfloat16 (mixed, as "
                        "finetune.precision; the codes and errors it reports are computed at float32), or auto",
                        choices=("float32", "bfloat16", "auto"))
    baseline: bool = _f(True, "with unroll: also train the same deep autoencoder from random init with the same "
                        "budget and seed (the unroll-baseline stage), to show what the greedy start bought")
    classifier: bool = _f(False, "with unroll: head and fine-tune start from the unrolled encoders instead of "
                          "the greedy ones")


@dataclass(frozen=True)
class HeadSpec(TrainingSpec):
    """The softmax classifier trained on the top codes before fine-tuning."""


@dataclass(frozen=True)
class FinetuneSpec(TrainingSpec):
    """The whole stacked classifier, initialised from the pretrained stages
    (and, for the baseline stage, from random weights)."""

    @property
    def semi_supervised(self) -> bool:
        """Does fine-tuning also learn from the unlabeled inputs?"""
        return self.pseudo_labels > 0 or self.reconstruction_weight > 0 or self.vat_weight > 0

    def plain(self) -> "FinetuneSpec":
        """The same fine-tuning without the options that use unlabeled inputs."""
        return dataclasses.replace(self, pseudo_labels=0.0, reconstruction_weight=0.0, vat_weight=0.0)

    steps_per_epoch: int = _f(0, "batches in each fine-tune epoch (the baselines' too), cycling through fresh "
                              "seeded shuffles of the labeled rows; few labels: the step count no longer shrinks "
                              "with the label count; 0: one pass over the labeled training rows",
                              check=_NON_NEGATIVE)
    dropout: float = _f(0.0, "dropout after every encoder layer while fine-tuning", check=_FRACTION)
    input_dropout: float = _f(0.0, "dropout on the inputs while fine-tuning (the random-init baseline too)",
                              check=_FRACTION)
    batch_norm: bool = _f(False, "batch normalization after every encoder layer while fine-tuning (the "
                          "random-init baseline too)")
    noise: float = _f(0.0, "standard deviation of Gaussian noise added after every encoder layer (after "
                      "batch_norm) while fine-tuning; with batch_norm, the noisy MLP of Rasmus et al. 2015, who "
                      "use 0.3; 0: none", check=_NON_NEGATIVE)
    input_noise: float = _f(0.0, "standard deviation of Gaussian noise added to the inputs while "
                            "fine-tuning; 0: none", check=_NON_NEGATIVE)
    schedule: str = _f("constant", "learning rate: constant, or cosine decay to 0 over the fine-tune epochs",
                       choices=("constant", "cosine"))
    max_norm: float = _f(0.0, "cap on the L2 norm of each unit's incoming weights while fine-tuning, "
                         "applied after every update (Srivastava et al. 2014 use 3-4 with dropout); 0: none",
                         check=_NON_NEGATIVE)
    pseudo_labels: float = _f(0.0, "few labels: final weight of the pseudo-label loss of Lee 2013 (each unlabeled "
                              "row's target is the net's current argmax; he uses 3); 0: off", check=_NON_NEGATIVE)
    pseudo_labels_start: int = _f(100, "epoch where the pseudo-label weight starts its linear ramp up from 0 (Lee "
                                  "2013: 100)", check=_NON_NEGATIVE)
    pseudo_labels_end: int = _f(600, "epoch where the ramp reaches pseudo_labels (Lee 2013: 600)",
                                check=_NON_NEGATIVE)
    pseudo_labels_targets: str = _f("dropout", "where pseudo-labels come from: dropout (the same noisy forward "
                                    "pass they train, as in Lee 2013), clean (the net without dropout and "
                                    "noise: a consistency target for the noisy pass), or mean_teacher (a clean "
                                    "pass of the exponential moving average of the weights, Tarvainen & Valpola "
                                    "2017: targets that lag the net's own latest mistakes)",
                                    choices=("dropout", "clean", "mean_teacher"))
    pseudo_labels_teacher_decay: float = _f(0.99, "with pseudo_labels_targets = \"mean_teacher\": the moving "
                                            "average's decay per step (0.99: about the last 100 steps)",
                                            check=_FRACTION)
    pseudo_labels_alignment: bool = _f(False, "distribution alignment (Berthelot et al. 2020, ReMixMatch): each "
                                       "unlabeled row's target probabilities are multiplied by the labeled rows' "
                                       "class frequencies and divided by the running mean of the net's predictions "
                                       "on unlabeled rows before the argmax, so a class the net over-predicts "
                                       "cannot keep absorbing another class's rows")
    pseudo_labels_threshold: float = _f(0.0, "unlabeled rows whose pseudo-label has a lower probability than "
                                        "this add no loss (FixMatch's confidence mask; 0: every row)",
                                        check=_FRACTION)
    reconstruction_weight: float = _f(0.0, "keep the pretrained decoders while fine-tuning and add this times the "
                                      "reconstruction loss (layer 0's) of every input, labeled or not, to the "
                                      "classification loss; 0: off", check=_NON_NEGATIVE)
    vat_weight: float = _f(0.0, "few labels: weight of virtual adversarial training's loss (Miyato et al. 2018) "
                           "on every input, labeled or not: the KL divergence from the net's clean prediction "
                           "to its prediction at the input perturbation of norm vat_epsilon that changes it "
                           "most; 0: off", check=_NON_NEGATIVE)
    vat_epsilon: float = _f(0.3, "L2 norm of the virtual adversarial perturbation of an input (Miyato et al. use "
                            "0.3 on MNIST pixels in [0, 1])", check=_POSITIVE)
    unlabeled_batch_size: int = _f(256, "unlabeled training rows in each batch (beside batch_size labeled ones) "
                                   "when pseudo_labels, reconstruction_weight or vat_weight is on",
                                   check=_POSITIVE)
    precision: str = _f("float32", "compute dtype of fine-tuning and its baseline: float32, bfloat16 "
                        "(mixed: weights, softmax and loss stay float32; ~1.8x faster on CPUs with "
                        "AVX512-BF16, not on CPUs without), or auto: bfloat16 where the CPU (AVX512-BF16, AMX) "
                        "or GPU (compute capability 8.0+) has it, else float32, resolved when the pipeline is "
                        "read (spec.json and the stage keys hold the result)", choices=("float32", "bfloat16", "auto"))


@dataclass(frozen=True)
class EvaluateSpec:
    """What the evaluate stage reports besides test accuracy."""

    baseline: bool = _f(False, "also train the same net from random init (the baseline stage: same labels, "
                        "data order, noise seeds and fine-tune budget) and compare the two on the same test rows")
    tsne: bool = _f(False, "t-SNE of raw, PCA and autoencoder features (the tsne stage)")
    tsne_samples: int = _f(2000, "test points used for t-SNE", check=_POSITIVE)
    tsne_engine: str = _f("auto", "t-SNE implementation: opentsne, sklearn (Barnes-Hut), or auto: openTSNE where "
                          "it is installed (the tsne extra), else scikit-learn; the two place points differently, "
                          "so the engine that ran is part of the tsne stage's key", choices=TSNE_ENGINES)
    replicates: int = _f(1, "independent pretrained/random-init pairs, replicate r trained with seed + r (its "
                         "pretraining, head, fine-tune and baseline; the labeled rows too unless "
                         "data.label_seed is set); the report gives each pair's test and the finding over seeds "
                         "(mean difference, 95 % interval, paired t test); t-SNE runs on replicate 0 only",
                         check=_POSITIVE)


@dataclass(frozen=True)
class ClusterSpec:
    """Clustering of the top codes (the cluster stage): k-means, a Gaussian mixture,
    DEC (Xie et al. 2016) or IDEC (Guo et al. 2017), optionally on a UMAP embedding
    of the codes (N2D, McConville et al. 2019). Labels only score it."""

    method: str = _f("none", "none (no cluster stage) | kmeans | gmm | dec (refine the encoder with the KL "
                     "divergence of its Student's t soft assignments to a sharpened target) | idec (dec that "
                     "keeps the decoder's reconstruction loss)", choices=("none", "kmeans", "gmm", "dec", "idec"))
    n_clusters: int = _f(10, "number of clusters", check=_POSITIVE)
    embed: str = _f("none", "none: cluster the codes; umap: cluster a UMAP embedding of the codes (N2D; needs "
                    "the cluster extra, pip install 'aepipe[cluster]')", choices=("none", "umap"))
    umap_components: int = _f(0, "embed = umap: dimensions of the embedding; 0: n_clusters (N2D)",
                              check=_NON_NEGATIVE)
    umap_neighbors: int = _f(20, "embed = umap: UMAP's n_neighbors (N2D: 20); also how many nearest training "
                             "codes vote on a new row's cluster", check=(lambda v: v >= 2, "a whole number >= 2"))
    umap_min_dist: float = _f(0.0, "embed = umap: UMAP's min_dist (N2D: 0)", check=_NON_NEGATIVE)
    n_init: int = _f(20, "k-means (and the DEC/IDEC centers' k-means) restarts; gmm: EM restarts",
                     check=_POSITIVE)
    max_iter: int = _f(20000, "dec/idec: budget in batches (DEC-keras: 20000)", check=_POSITIVE)
    update_interval: int = _f(140, "dec/idec: batches between target-distribution updates (DEC-keras on MNIST: "
                              "140)", check=_POSITIVE)
    tol: float = _f(0.001, "dec/idec: stop when fewer than this share of assignments changed between two "
                    "target updates", check=_NON_NEGATIVE)
    batch_size: int = _f(256, "dec/idec: minibatch size", check=_POSITIVE)
    optimizer: str = _f("sgd", "dec/idec optimizer (DEC: SGD with momentum 0.9; IDEC: adam)", choices=OPTIMIZERS)
    learning_rate: float | None = _f(0.01, "dec/idec learning rate; none: the optimizer's default",
                                     check=_OPTIONAL_POSITIVE)
    gamma: float = _f(0.1, "idec: weight of the clustering loss beside the reconstruction loss (IDEC: 0.1)",
                      check=_POSITIVE)
    alpha: float = _f(1.0, "dec/idec: degrees of freedom of the Student's t kernel (DEC: 1)", check=_POSITIVE)
    baseline: bool = _f(True, "also cluster with the same network from random weights (the cluster-baseline "
                        "stage: same clustering, budget and seed), to show what pretraining bought")


@dataclass(frozen=True)
class DistributionSpec:
    """Multi-device training."""

    strategy: str = _f("none", "none | data_parallel", choices=("none", "data_parallel"))


@dataclass(frozen=True)
class TrackingSpec:
    """Where runs are logged (MLflow). Never part of a stage key: tracking a run
    changes nothing it trains."""

    uri: str | None = _f(None, "MLflow tracking URI (sqlite:///mlflow.db, http://host:5000, ...); none: "
                         "$MLFLOW_TRACKING_URI if set, else no tracking; aepipe run --mlflow URI wins over both")
    experiment: str | None = _f(None, "MLflow experiment the runs go to; none: the pipeline's name")


@dataclass(frozen=True)
class PipelineSpec:
    """A whole pipeline: data, the autoencoder stack and the supervised stages."""

    name: str = _f("digits", "pipeline name (default: the file's stem); runs go to artifacts/runs/<name>/; "
                   "letters, digits, '.', '_' and '-'",
                   check=(is_path_component, NAME_RULE))
    seed: int = _f(0, "seed for initialisation, shuffling and noise", check=_NON_NEGATIVE)
    data: DataSpec = _f(None, "", factory=DataSpec)
    pretrain: PretrainSpec = _f(None, "", factory=PretrainSpec)
    layers: tuple[LayerSpec, ...] = _f(None, "", factory=lambda: (LayerSpec(),))
    unroll: UnrollSpec = _f(None, "", factory=UnrollSpec)
    head: HeadSpec = _f(None, "", factory=HeadSpec)
    finetune: FinetuneSpec = _f(None, "", factory=FinetuneSpec)
    evaluate: EvaluateSpec = _f(None, "", factory=EvaluateSpec)
    cluster: ClusterSpec = _f(None, "", factory=ClusterSpec)
    distribution: DistributionSpec = _f(None, "", factory=DistributionSpec)
    tracking: TrackingSpec = _f(None, "", factory=TrackingSpec)
    # not a pipeline field: layer 0's fields written "auto", which follow the data (config.resolve_layer0);
    # never read from TOML, written (to_plain, spec.json), keyed or compared
    layer0_auto: tuple[str, ...] = field(default=(), compare=False, repr=False, metadata={"internal": True})

    def to_dict(self) -> dict:
        return to_plain(self)

    def replicate(self, r: int) -> "PipelineSpec":
        """Replicate ``r`` of the pipeline (0: itself): seed + r, one pair, no t-SNE
        beyond replicate 0. Replicates share every stage their seeds do not make
        different; with seed + r, replicate 1 of seed 0 is replicate 0 of seed 1."""
        if r == 0:
            return self
        evaluate = dataclasses.replace(self.evaluate, tsne=False, replicates=1)
        return dataclasses.replace(self, seed=self.seed + r, evaluate=evaluate)


# The embedded default: a two-layer greedy stack on sklearn's digits, so that
# `aepipe run` works on a fresh machine with nothing else provided. The same
# text ships as pipelines/digits.toml (a test keeps the two identical).
DEFAULT_PIPELINE_TOML = (Path(__file__).with_name("default.toml")).read_text(encoding="utf-8")


def public_fields(cls_or_obj) -> tuple[dataclasses.Field, ...]:
    """A spec dataclass's fields, less the internal ones (``PipelineSpec.layer0_auto``)."""
    return tuple(f for f in dataclasses.fields(cls_or_obj) if not f.metadata.get("internal"))


def to_plain(obj: Any) -> Any:
    """Dataclasses and tuples as plain dicts and lists (JSON's shapes)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in public_fields(obj)}
    if isinstance(obj, tuple):
        return [to_plain(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"))
