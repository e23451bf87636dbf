"""The stage-key property: a key holds everything its stage's builder reads.

For every spec field (and two structural variants: depth, tied weights), a
base pipeline and a variant with that field changed to another valid value are
built, each in its own fresh artifacts directory, and every stage present in
both under the same key must have the same files. A stage whose key did not
change but whose files did means its builder read something its key lacks.

Cost: each base builds once per module (all its stages); a variant builds only
the stages whose key equals the base's (their upstreams are unchanged too,
since upstream keys are part of a key), through the runner's own per-stage
step: a variant whose keys all changed cannot break the property and trains
nothing. The full table is slow (`pytest -m slow`); a fixed sample is not.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from aepipe.config.parse import loads  # noqa: E402
from aepipe.config import field_table  # noqa: E402
from aepipe.config.spec import LAYER_DEFAULT_KEYS  # noqa: E402
from aepipe.engine import layout  # noqa: E402
from aepipe.engine.store import Store  # noqa: E402
from aepipe.pipeline.runner import Runner  # noqa: E402

# Two dense layers: layer 0 carries the settings that make its conditional
# fields count (a stopping rule for tol / early_stopping, masking noise for
# noise.fraction); layer 1 is all-default (units 32), so dropping it must still
# change the network. unroll.epochs = 2 (not 1) so unroll.warmup = 1 is valid.
_LAYERS_AND_UNROLL = """
[[layers]]
units = 8
epochs = 1
batch_size = 128
n_iter_no_change = 1
noise = {kind = "masking"}
[[layers]]
"""
_A = """
[pretrain]
epochs = 1
""" + _LAYERS_AND_UNROLL + """
[unroll]
epochs = 2
batch_size = 128
n_iter_no_change = 1
[head]
epochs = 1
batch_size = 128
n_iter_no_change = 1
[finetune]
epochs = 1
batch_size = 128
n_iter_no_change = 1
[evaluate]
baseline = true
tsne = true
tsne_samples = 60
"""
# Few labels with pseudo-labels and VAT, so the baseline-plain stage exists and
# every semi-supervised field counts (the ramp ends inside the budget).
_B = """
[data]
labels = 100
[pretrain]
epochs = 1
batch_size = 128
[[layers]]
units = 8
[[layers]]
[head]
epochs = 1
[finetune]
epochs = 2
batch_size = 32
unlabeled_batch_size = 128
pseudo_labels = 1.0
pseudo_labels_start = 0
pseudo_labels_end = 2
vat_weight = 0.5
[evaluate]
baseline = true
"""
# A with a conv layer 0 (digits are 8x8 images; a dense layer may follow a conv one).
_C = _A.replace("units = 8\n", 'kind = "conv"\nfilters = 4\n', 1)
# A DEC cluster stage and its twin on a small stack (issue 30); contexts switch the method.
_D = """
[pretrain]
epochs = 1
batch_size = 128
[[layers]]
units = 8
[[layers]]
[head]
epochs = 1
[finetune]
epochs = 1
[cluster]
method = "dec"
n_clusters = 4
n_init = 2
max_iter = 12
update_interval = 4
batch_size = 128
"""
BASES = {"A": _A, "B": _B, "C": _C, "D": _D}
DROP_LAST_LAYER = "layers.1=<dropped>"  # the one-layer pipeline: depth is part of the network's identity

# Contexts: overrides applied to base AND variant, where a field takes effect only with another set.
CONTEXTS = {"": "", "gaussian": ("layers.0.noise.kind=gaussian",),
            "vae": ("unroll.epochs=0", "layers.1.kind=variational"),  # variational blocks are never unrolled
            "matching": ("pretrain.mode=layer_matching",), "teacher": ("finetune.pseudo_labels_targets=mean_teacher",), "idec": ("cluster.method=idec",),
            "gmm": ("cluster.method=gmm",), "umap": ("cluster.method=gmm", "cluster.embed=umap")}

# (base, context, variant): the variant is one `--set` override (or DROP_LAST_LAYER).
CASES = [
    ("A", "", "seed=1"),
    ("A", "", "data.validation_split=0.2"),
    ("A", "", "data.test_size=0.3"),
    ("B", "", "data.labels=150"),
    ("B", "", "data.label_seed=3"),
    ("B", "", "data.validation_labels=50"),
    ("A", "", "pretrain.mode=joint"),
    ("A", "matching", "pretrain.match_weight=0.5"),
    ("A", "", "pretrain.optimizer=rmsprop"),  # a [pretrain] default reaches every layer
    ("A", "", "layers.0.optimizer=sgd"),
    ("A", "", "layers.0.learning_rate=0.01"),
    ("A", "", "layers.0.batch_size=64"),
    ("A", "", "layers.0.epochs=2"),
    ("A", "", "layers.0.n_iter_no_change=2"),
    ("A", "", "layers.0.tol=0.01"),
    ("A", "", "layers.0.early_stopping=true"),
    ("A", "vae", "layers.0.kind=variational"),
    ("A", "", "layers.0.units=6"),
    ("A", "", "layers.1.units=16"),
    ("A", "", "layers.0.activation=tanh"),
    ("A", "", "layers.1.activation=tanh"),
    ("A", "", "layers.0.decoder_activation=linear"),
    ("A", "", "layers.0.loss=mse"),
    ("A", "", "layers.0.l1=0.01"),
    ("A", "", "layers.0.noise.kind=salt_pepper"),
    ("A", "", "layers.0.noise.fraction=0.5"),
    ("A", "gaussian", "layers.0.noise.stddev=0.3"),
    ("A", "", "layers.0.tied=true"),
    ("A", "", "layers.1.tied=true"),
    ("C", "", "layers.0.filters=8"),
    ("C", "", "layers.0.kernel_size=2"),
    ("C", "", "layers.0.pool_size=1"),
    ("C", "", "layers.0.upsampling=transpose"),
    ("A", "vae", "layers.1.hidden=4"),
    ("A", "vae", "layers.1.kl_weight=0.5"),
    ("A", "matching", "layers.1.stop_gradient=true"),
    ("A", "", DROP_LAST_LAYER),
    ("A", "", "unroll.optimizer=rmsprop"),
    ("A", "", "unroll.learning_rate=0.01"),
    ("A", "", "unroll.batch_size=64"),
    ("A", "", "unroll.epochs=3"),
    ("A", "", "unroll.n_iter_no_change=2"),
    ("A", "", "unroll.tol=0.01"),
    ("A", "", "unroll.early_stopping=true"),
    ("A", "", "unroll.schedule=cosine"),
    ("A", "", "unroll.warmup=1"),
    ("A", "", "unroll.input_noise=0.1"),
    ("A", "", "unroll.weight_decay=0.01"),
    ("A", "", "unroll.loss=mse"),
    ("A", "", "unroll.precision=bfloat16"),
    ("A", "", "unroll.baseline=false"),
    ("A", "", "unroll.classifier=true"),
    *[("A", "", f"{s}.{f}") for s in ("head", "finetune") for f in (
        "optimizer=rmsprop", "learning_rate=0.01", "batch_size=64", "epochs=2", "n_iter_no_change=2", "tol=0.01",
        "early_stopping=true")],
    ("A", "", "finetune.steps_per_epoch=3"),
    ("A", "", "finetune.dropout=0.2"),
    ("A", "", "finetune.input_dropout=0.2"),
    ("A", "", "finetune.batch_norm=true"),
    ("A", "", "finetune.noise=0.3"),
    ("A", "", "finetune.input_noise=0.1"),
    ("A", "", "finetune.schedule=cosine"),
    ("A", "", "finetune.max_norm=3.0"),
    ("A", "", "finetune.precision=bfloat16"),
    ("B", "", "finetune.dropout=0.2"),  # baseline-plain shares the plain fields
    ("B", "", "finetune.pseudo_labels=2.0"),
    ("B", "", "finetune.pseudo_labels_start=1"),
    ("B", "", "finetune.pseudo_labels_end=3"),
    ("B", "", "finetune.pseudo_labels_targets=clean"),
    ("B", "", "finetune.pseudo_labels_threshold=0.5"),
    ("B", "", "finetune.pseudo_labels_targets=mean_teacher"),
    ("B", "teacher", "finetune.pseudo_labels_teacher_decay=0.9"),
    ("B", "", "finetune.pseudo_labels_alignment=true"),
    ("B", "", "finetune.reconstruction_weight=0.5"),
    ("B", "", "finetune.vat_weight=1.0"),
    ("B", "", "finetune.vat_epsilon=1.0"),
    ("B", "", "finetune.unlabeled_batch_size=64"),
    ("A", "", "evaluate.baseline=false"),
    ("A", "", "evaluate.tsne=false"),
    ("A", "", "evaluate.tsne_samples=80"),
    ("A", "", "evaluate.tsne_engine=sklearn"),
    ("A", "", "data.labeled=false"),
    ("D", "", "cluster.method=kmeans"),
    ("D", "", "cluster.n_clusters=3"),
    ("D", "", "cluster.n_init=3"),
    ("D", "", "cluster.max_iter=8"),
    ("D", "", "cluster.update_interval=3"),
    ("D", "", "cluster.tol=0.5"),
    ("D", "", "cluster.batch_size=64"),
    ("D", "", "cluster.optimizer=adam"),
    ("D", "", "cluster.learning_rate=0.1"),
    ("D", "", "cluster.alpha=2.0"),
    ("D", "", "cluster.baseline=false"),
    ("D", "idec", "cluster.gamma=0.5"),
    ("D", "gmm", "cluster.embed=umap"),
    ("D", "umap", "cluster.umap_components=3"),
    ("D", "umap", "cluster.umap_neighbors=5"),
    ("D", "umap", "cluster.umap_min_dist=0.1"),  # auto and opentsne resolve alike where openTSNE is installed
]

# Fields no case varies, and why. The coverage test keeps this table and CASES complete.
SKIPPED = {
    "name": "where runs and records go; in no key, and a variant would rebuild every stage to prove nothing new",
    "data.source": "another dataset changes the inputs' fingerprint, so every key changes; digits is the one "
                   "in-memory source small enough here",
    "data.path": "mnist.npz only (a download)",
    "data.label_column": "csv sources only",
    "data.label_path": "npy sources only",
    "distribution.strategy": "data_parallel needs several devices to mean anything, and no semi-supervised run",
    "tracking.uri": "MLflow logging: in no key, trains nothing",
    "tracking.experiment": "MLflow logging: in no key, trains nothing",
    "evaluate.replicates": "adds stages named <stage>@r, each keyed as the pipeline at seed + r (the seed "
                           "variant covers those), and keys none of the existing ones; tests/test_replicates.py",
}


def _field(override: str) -> str:
    """The field_table name a variant varies: layers.0.tied and pretrain.tied -> layers[].tied."""
    key = re.sub(r"^layers\.\d+\.", "layers[].", override.split("=", 1)[0])
    section, _, name = key.partition(".")
    return f"layers[].{name}" if section == "pretrain" and name in LAYER_DEFAULT_KEYS else key


def _case_id(base, context, variant):
    return "+".join(filter(None, [base, context, variant]))


SAMPLE = {("A", "", "layers.0.tied=true"), ("A", "", DROP_LAST_LAYER)}  # base A only: the default suite
# builds one base; the two structural variants, which once moved a twin's weights under an unchanged key
PARAMS = [pytest.param(*c, id=_case_id(*c), marks=() if c in SAMPLE else pytest.mark.slow) for c in CASES]


def _spec(base: str, overrides=(), drop_last_layer=False):
    text = BASES[base]
    if drop_last_layer:  # the trailing all-default [[layers]] table, and nothing else
        head, tail = text.rsplit("\n[[layers]]\n", 1)
        text = head + "\n" + tail
    return loads(text, f"<{base}>", list(overrides))


def _build(spec, artifacts: Path, only=None) -> dict:
    """Build the named stages (all: None) into a fresh store: name -> (key, stage dir).

    The runner's per-stage step (lookup, lock, build, publish) without run()'s
    run directory and plots, which no stage reads."""
    runner = Runner(spec, Store(artifacts), checkpoints=False)
    runner.store.ensure()
    plan = runner.plan()
    published, built = {}, {}
    for s in plan:
        if only is None or s.name in only:
            assert set(s.upstream) <= set(published), (s.name, s.upstream)
            res, published[s.name] = runner._ensure_stage(s, published, s.name, False)
            built[s.name] = (s.key, Path(res.path))
    return built


def _files(stage_dir: Path) -> dict[str, bytes]:
    """A stage's files, manifest.json aside (it holds the stage name, full params and
    timings). history.json holds per-epoch losses and no wall-clock field; Keras'
    .weights.h5 files carry no timestamps: two builds of one key are byte-identical
    (checked once on this machine), so every file is compared byte for byte."""
    return {str(p.relative_to(stage_dir)): p.read_bytes() for p in sorted(stage_dir.rglob("*"))
            if p.is_file() and p.name != layout.MANIFEST}


@pytest.fixture(scope="module")
def built_base(tmp_path_factory):
    """(base, context) -> its stages, each base built once per module."""
    cache = {}

    def get(base, context):
        if (base, context) not in cache:
            art = tmp_path_factory.mktemp(f"base-{base}")
            cache[base, context] = _build(_spec(base, CONTEXTS[context]), art)
        return cache[base, context]

    return get


def violations(label: str, base: dict, variant: dict) -> list[str]:
    """Every stage present in both under one key whose files differ."""
    out = []
    for name in base.keys() & variant.keys():
        (key, a_dir), (vkey, b_dir) = base[name], variant[name]
        if key != vkey:
            continue
        a, b = _files(a_dir), _files(b_dir)
        differ = sorted(f for f in a.keys() | b.keys() if a.get(f) != b.get(f))
        if differ:
            verb = "differs" if len(differ) == 1 else "differ"
            out.append(f"{label}: stage {name} kept key {key[:16]}... but {', '.join(differ)} {verb}")
    return sorted(out)


@pytest.mark.parametrize("base,context,variant", PARAMS)
def test_same_key_means_same_files(base, context, variant, built_base, tmp_path):
    dropped, settings = variant == DROP_LAST_LAYER, CONTEXTS[context]
    base_spec = _spec(base, settings)
    spec = _spec(base, settings if dropped else (*settings, variant), drop_last_layer=dropped)
    assert spec != base_spec, f"{variant}: the variant is the base pipeline"
    base_stages = built_base(base, context)
    base_keys = {name: key for name, (key, _) in base_stages.items()}
    plan = Runner(spec, Store(tmp_path / "variant")).plan()
    same = {s.name for s in plan if base_keys.get(s.name) == s.key}
    assert len(same) < len(base_keys), f"{variant}: no stage changed key; the field is in none of them"
    variant_stages = _build(spec, tmp_path / "variant", only=same)
    problems = violations(variant, base_stages, variant_stages)
    assert not problems, "\n".join(problems)


def test_every_field_is_varied_or_skipped_with_a_reason():
    fields = {row[0] for row in field_table()}
    varied = {_field(v) for _, _, v in CASES if v != DROP_LAST_LAYER}
    assert varied <= fields, f"cases vary fields the spec lacks: {sorted(varied - fields)}"
    missing = fields - varied - set(SKIPPED)
    assert not missing, f"fields neither varied nor skipped with a reason: {sorted(missing)}"
    assert all(SKIPPED.values()) and set(SKIPPED) <= fields - varied, sorted(set(SKIPPED) - (fields - varied))
    assert len({_case_id(*c) for c in CASES}) == len(CASES) and SAMPLE <= set(CASES)


def test_the_comparison_sees_a_changed_file(tmp_path):
    """The check itself: one byte of a weights file differs under one key -> reported."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / layout.MODEL_WEIGHTS).write_bytes(b"same")
        (tmp_path / d / layout.MANIFEST).write_text(d)  # run-specific: never compared
    assert violations("f", {"s": ("k" * 64, tmp_path / "a")}, {"s": ("k" * 64, tmp_path / "b")}) == []
    (tmp_path / "b" / layout.MODEL_WEIGHTS).write_bytes(b"diff")
    assert violations("f", {"s": ("k" * 64, tmp_path / "a")}, {"s": ("k" * 64, tmp_path / "b")}) == [
        f"f: stage s kept key {'k' * 16}... but {layout.MODEL_WEIGHTS} differs"]
    assert violations("f", {"s": ("k" * 64, tmp_path / "a")}, {"s": ("j" * 64, tmp_path / "b")}) == []


def test_depth_is_part_of_the_network_identity(tmp_path):
    """A one-layer and a two-layer pipeline never share a random-init twin's key,
    even when the dropped layer is at all-default settings (plan only, nothing trains)."""
    keys = [{s.name: s.key for s in Runner(_spec("A", drop_last_layer=d), Store(tmp_path)).plan()}
            for d in (False, True)]
    for name in ("baseline", "unroll-baseline"):
        assert keys[0][name] != keys[1][name], f"{DROP_LAST_LAYER}: stage {name} kept key {keys[0][name][:16]}..."
