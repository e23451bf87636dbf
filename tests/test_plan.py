"""Stage keys: what changes re-keys exactly the stages that depend on it."""

from aepipe import config as spec
from aepipe.engine.plan import Fingerprint, plan, select

FP = Fingerprint("fp", "fp")
GREEDY = ["pretrain.mode=greedy", "unroll.epochs=0"]  # the plain greedy graph (the default adds an unroll)


def keys(overrides=(), fingerprint=FP):
    return {s.name: s.key for s in plan(spec.load(None, [*GREEDY, *overrides]), fingerprint)}


def changed(a, b):
    return sorted(name for name in a if a[name] != b[name])


def test_stage_names_in_order():
    assert list(keys()) == ["pretrain-0", "pretrain-1", "head", "finetune", "baseline", "evaluate", "tsne"]
    assert list(keys(["evaluate.baseline=false", "evaluate.tsne=false"])) == [
        "pretrain-0", "pretrain-1", "head", "finetune", "evaluate"]


def test_changing_layer_1_rekeys_it_and_downstream_only():
    assert changed(keys(), keys(["layers.1.units=32"])) == ["baseline", "evaluate", "finetune", "head",
                                                             "pretrain-1", "tsne"]


def test_pretraining_settings_never_rekey_the_baseline():
    for change in ("layers.0.noise.kind='masking'", "pretrain.epochs=3", "layers.1.optimizer='sgd'",
                   "layers.0.decoder_activation='linear'"):
        assert "baseline" not in changed(keys(), keys([change])), change
    assert changed(keys(), keys(["layers.0.noise.kind='masking'"])) == [
        "evaluate", "finetune", "head", "pretrain-0", "pretrain-1", "tsne"]


def test_changing_finetune_keeps_pretraining_and_head():
    assert changed(keys(), keys(["finetune.epochs=3"])) == ["baseline", "evaluate", "finetune"]


def test_few_label_mode_keeps_pretraining():
    assert changed(keys(), keys(["data.labels=100"])) == ["baseline", "evaluate", "finetune", "head"]


def test_labels_never_enter_pretraining_keys():
    other_labels = Fingerprint("fp", "other labels")
    assert changed(keys(), keys(fingerprint=other_labels)) == ["baseline", "evaluate", "finetune", "head", "tsne"]


def test_toggling_tsne_or_the_baseline_keys_nothing_else():
    base = keys(["evaluate.tsne=false"])
    assert {k: v for k, v in keys().items() if k != "tsne"} == base
    no_baseline = keys(["evaluate.baseline=false"])
    assert all(no_baseline[k] == v for k, v in keys().items() if k not in ("baseline", "evaluate"))


def test_fields_a_layer_ignores_never_enter_its_key():
    """Defaults for every layer set in [pretrain] that dense layers without noise do not read."""
    for ignored in ("pretrain.noise.stddev=0.3", "pretrain.noise.fraction=0.5", "pretrain.filters=8",
                    "pretrain.kl_weight=0.5", "pretrain.hidden=4", "pretrain.upsampling='transpose'"):
        assert keys([ignored]) == keys(), ignored
    assert changed(keys(["pretrain.noise.kind='gaussian'"]),
                   keys(["pretrain.noise.kind='gaussian'", "pretrain.noise.stddev=0.3"])) != []


def test_data_parallel_rekeys_every_training_stage():
    assert changed(keys(), keys(["distribution.strategy='data_parallel'"])) == [
        "baseline", "evaluate", "finetune", "head", "pretrain-0", "pretrain-1", "tsne"]


def test_finetune_and_baseline_share_their_seed():
    stages = {s.name: s for s in plan(spec.load(None, GREEDY), FP)}
    assert stages["finetune"].seed == stages["baseline"].seed != stages["head"].seed
    changed_pretraining = {s.name: s for s in plan(spec.load(None, [*GREEDY, "pretrain.epochs=3"]), FP)}
    assert changed_pretraining["finetune"].seed == stages["finetune"].seed


def test_data_and_seed_change_everything():
    assert len(changed(keys(), keys(fingerprint=Fingerprint("other", "other")))) == 7
    assert len(changed(keys(), keys(["seed=1"]))) == 7


def test_pipelines_sharing_a_prefix_share_stages():
    a = keys(["name='a'"])
    b = keys(["name='b'", "layers.1.units=12"])
    assert a["pretrain-0"] == b["pretrain-0"] and a["pretrain-1"] != b["pretrain-1"]


def test_phases_select_their_stages():
    stages = plan(spec.load(None, GREEDY), FP)
    assert [s.name for s in select(stages, "pretrain")] == ["pretrain-0", "pretrain-1"]
    assert [s.name for s in select(stages, "finetune")][-2:] == ["head", "finetune"]


def test_a_new_field_at_its_default_keeps_old_keys():
    """Keys hash only non-default fields: adding a spec field cannot invalidate caches."""
    from aepipe.engine.plan import non_default

    params = {"finetune": {"schedule": "constant", "epochs": 3}, "index": 0, "labels": None}
    assert non_default(params) == {"finetune": {"epochs": 3}, "index": 0, "labels": None}
    assert non_default({"finetune": {"schedule": "cosine"}}) == {"finetune": {"schedule": "cosine"}}


def test_every_layer_counts_in_the_network_identity():
    """A trailing layer at all-default settings (units 32) is still a layer: the
    48 and the 48-32 stacks never share a baseline (or its seed)."""
    one = {s.name: s for s in plan(spec.loads("[[layers]]\nunits = 48\n[evaluate]\nbaseline = true"), FP)}
    two = {s.name: s for s in plan(spec.loads("[[layers]]\nunits = 48\n[[layers]]\nunits = 32\n"
                                              "[evaluate]\nbaseline = true"), FP)}
    assert one["baseline"].key != two["baseline"].key and one["baseline"].seed != two["baseline"].seed
    deep = "[pretrain]\nmode = 'joint'\n"
    assert (plan(spec.loads(deep + "[[layers]]\nunits = 48"), FP)[0].key
            != plan(spec.loads(deep + "[[layers]]\nunits = 48\n[[layers]]\nunits = 32"), FP)[0].key)


def test_one_key_one_seed_across_pipelines():
    """baseline-plain of a few-label pipeline is the plain pipeline's baseline:
    same key, so the same seed, which is also the plain pipeline's finetune seed."""
    few = ["data.labels=150", "evaluate.baseline=true"]
    plain = {s.name: s for s in plan(spec.load(None, [*GREEDY, *few]), FP)}
    vat = {s.name: s for s in plan(spec.load(None, [*GREEDY, *few, "finetune.vat_weight=1"]), FP)}
    assert vat["baseline-plain"].key == plain["baseline"].key
    assert vat["baseline-plain"].seed == plain["baseline"].seed == plain["finetune"].seed
    assert vat["finetune"].seed == vat["baseline"].seed != vat["baseline-plain"].seed


def test_tied_decoders_cannot_reconstruct_while_fine_tuning():
    import pytest

    from aepipe.errors import SpecError

    with pytest.raises(SpecError, match="layers.0.tied") as e:
        spec.load(None, [*GREEDY, "layers.0.tied=true", "finetune.reconstruction_weight=1"])
    assert "finetune.reconstruction_weight" in str(e.value)
