"""The pipeline spec: defaults, validation messages and --set overrides."""

import pytest

from aepipe import config as spec
from aepipe.errors import SpecError


def test_smallest_pipeline_is_one_layer():
    s = spec.loads("[[layers]]\nunits = 32\n")
    assert len(s.layers) == 1 and s.layers[0].units == 32
    # auto decoder for layer 0 reconstructs [0, 1] data
    assert (s.layers[0].decoder_activation, s.layers[0].loss) == ("sigmoid", "binary_crossentropy")
    assert s.data.source == "digits" and s.pretrain.mode == "greedy"


def test_builtin_default_is_two_greedy_layers_then_an_unroll():
    s = spec.load(None)
    assert [layer.units for layer in s.layers] == [48, 24] and s.pretrain.mode == "greedy" and s.unroll.epochs == 100
    # unrolled: layer 1's decoder reproduces layer 0's tanh codes, so "auto" is tanh, not linear
    assert (s.layers[1].decoder_activation, s.layers[1].loss) == ("tanh", "mse")


def test_pretrain_section_sets_defaults_that_layers_override():
    s = spec.loads("[pretrain]\nepochs = 7\noptimizer = 'adam'\n[[layers]]\nunits = 8\n"
                   "[[layers]]\nunits = 4\nepochs = 3\n")
    assert [layer.epochs for layer in s.layers] == [7, 3]
    assert {layer.optimizer for layer in s.layers} == {"adam"}


def test_unknown_key_names_file_key_and_closest_valid_key():
    with pytest.raises(SpecError) as e:
        spec.loads("[[layers]]\nunitz = 32\n", where="p.toml")
    assert str(e.value.message) == "p.toml: layers.0.unitz: unknown key; did you mean 'units'?"
    assert e.value.exit_code == 2
    with pytest.raises(SpecError, match="finetune.epocs: unknown key; did you mean 'epochs'"):
        spec.loads("[finetune]\nepocs = 3\n", where="p.toml")


@pytest.mark.parametrize("text, message", [
    ("[[layers]]\nunits = -3\n", "layers.0.units: must be a positive number, got -3"),
    ("[[layers]]\nunits = 'many'\n", "layers.0.units: expected int, got 'many'"),
    ("[data]\nvalidation_split = 1.5\n", "data.validation_split: must be a number in [0, 1), got 1.5"),
    ("[finetune]\nepochs = 0\n", "finetune.epochs: must be a positive number, got 0"),
    ("[[layers]]\nactivation = 'rleu'\n", "did you mean 'relu'?"),
    ("[data]\nsource = 'parquet:x'\n", "data.source: must be digits, mnist, "),
])
def test_bad_values_are_named(text, message):
    with pytest.raises(SpecError) as e:
        spec.loads(text, where="p.toml")
    assert message in e.value.message
    assert e.value.message.startswith("p.toml: ")


def test_toml_syntax_error_shows_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("name = 'x'\n[data\n")
    with pytest.raises(SpecError, match=r"bad.toml: TOML syntax error: .*line 2"):
        spec.load(p)


def test_missing_file():
    with pytest.raises(SpecError, match="nope.toml: pipeline file not found"):
        spec.load("nope.toml")


def test_overrides_are_typed_and_indexed():
    s = spec.load(None, ["layers.1.units=32", "finetune.epochs=5", "pretrain.optimizer=sgd",
                         "data.labels=100", "evaluate.baseline=false"])
    assert [layer.units for layer in s.layers] == [48, 32]
    assert s.finetune.epochs == 5 and s.data.labels == 100 and s.evaluate.baseline is False
    assert {layer.optimizer for layer in s.layers} == {"sgd"}


@pytest.mark.parametrize("item, message", [
    ("layers.2.units=3", "no 'layers.2' (there are 2 layers)"),
    ("finetune.epochs=many", "finetune.epochs: expected int, got 'many'"),
    ("finetune", "--set expects KEY=VALUE"),
    ("head.bogus=1", "head.bogus: unknown key"),
])
def test_bad_overrides(item, message):
    with pytest.raises(SpecError) as e:
        spec.load(None, [item])
    assert message in e.value.message


def test_spec_is_frozen_and_round_trips():
    s = spec.load(None)
    with pytest.raises(Exception):
        s.seed = 3
    assert spec.from_dict(s.to_dict(), strict=False) == s  # to_dict lists every field, read or not


def test_field_table_documents_every_field():
    keys = {row[0] for row in spec.field_table()}
    assert {"name", "seed", "data.source", "layers[].units", "layers[].noise.kind", "finetune.epochs",
            "evaluate.baseline", "distribution.strategy"} <= keys
    assert all(help_text for key, _, help_text in spec.field_table())


@pytest.mark.parametrize("text, key, message", [
    ('[[layers]]\nunits = 8\nfilters = 4', "layers.0.filters", "filters applies to conv blocks; this one is 'dense'"),
    ('[[layers]]\nunits = 8\nkl_weight = 0.5', "layers.0.kl_weight", "applies to variational blocks"),
    ('[[layers]]\nunits = 8\nnoise = { fraction = 0.3 }', "layers.0.noise.fraction",  # the default: gaussian
     "noise.fraction applies to masking and salt_pepper noise; this layer's noise.kind is 'gaussian'"),
    ('[[layers]]\nunits = 8\nnoise = { kind = "none", stddev = 0.3 }', "layers.0.noise.stddev",
     "noise.stddev applies to gaussian noise; this layer's noise.kind is 'none'"),
    ('[[layers]]\nunits = 8\nnoise = { kind = "masking", stddev = 0.3 }', "layers.0.noise.stddev", "'masking'"),
    ('[[layers]]\nkind = "lstm"\nunits = 8\nl1 = 0.1', "layers.0.l1", "applies to dense, conv blocks"),
    ('[[layers]]\nkind = "conv"\nunits = 8', "layers.0.units", "this one is 'conv'"),
    ('[pretrain]\nmode = "joint"\n[[layers]]\nunits = 8\n[[layers]]\nunits = 4\nepochs = 3', "layers.1.epochs",
     "trains the whole stack with layer 0's epochs"),
])
def test_a_field_the_layer_ignores_is_an_error_naming_it(text, key, message):
    with pytest.raises(SpecError) as e:
        spec.loads(text, "p.toml")
    assert f"p.toml: {key}: has no effect here" in e.value.message and message in e.value.message


def test_layer_defaults_in_pretrain_may_hold_fields_some_layers_ignore():
    s = spec.loads('[pretrain]\nfilters = 8\nnoise = { kind = "none", stddev = 0.3 }\n[[layers]]\nunits = 8', "p.toml")
    assert s.layers[0].filters == 8 and s.layers[0].noise.stddev == 0.3  # kept, but no key reads them


def test_stopping_fields_count_only_when_the_rule_is_on():
    from aepipe.engine.plan import Fingerprint, plan

    fp = Fingerprint("x", "y")
    keys = lambda *sets: {s.name: s.key for s in plan(spec.load(None, list(sets)), fp)}  # noqa: E731
    assert keys("finetune.tol=0.5", "pretrain.early_stopping=true") == keys()
    assert keys("finetune.n_iter_no_change=3")["finetune"] != keys()["finetune"]
    assert keys("finetune.n_iter_no_change=3", "finetune.tol=0.5")["finetune"] != keys("finetune.n_iter_no_change=3")[
        "finetune"]
    with pytest.raises(SpecError, match="tol applies when n_iter_no_change stops training"):
        spec.loads("[[layers]]\nunits = 8\nn_iter_no_change = 0\ntol = 0.1", "p.toml")
