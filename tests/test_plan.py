"""Stage keys: what changes re-keys exactly the stages that depend on it."""

from aepipe import spec
from aepipe.plan import plan, select


def keys(overrides=(), fingerprint="fp"):
    return {s.name: s.key for s in plan(spec.load(None, overrides), fingerprint)}


def changed(a, b):
    return sorted(name for name in a if a[name] != b[name])


def test_stage_names_in_order():
    assert list(keys()) == ["pretrain-0", "pretrain-1", "head", "finetune", "evaluate"]


def test_changing_layer_1_rekeys_it_and_downstream_only():
    assert changed(keys(), keys(["layers.1.units=32"])) == ["evaluate", "finetune", "head", "pretrain-1"]


def test_changing_finetune_keeps_pretraining_and_head():
    assert changed(keys(), keys(["finetune.epochs=3"])) == ["evaluate", "finetune"]


def test_few_label_mode_keeps_pretraining():
    assert changed(keys(), keys(["data.labels=100"])) == ["evaluate", "finetune", "head"]


def test_data_and_seed_change_everything():
    assert len(changed(keys(), keys(fingerprint="other"))) == 5
    assert len(changed(keys(), keys(["seed=1"]))) == 5


def test_pipelines_sharing_a_prefix_share_stages():
    a = keys(["name='a'"])
    b = keys(["name='b'", "layers.1.units=12"])
    assert a["pretrain-0"] == b["pretrain-0"] and a["pretrain-1"] != b["pretrain-1"]


def test_phases_select_their_stages():
    stages = plan(spec.load(None), "fp")
    assert [s.name for s in select(stages, "pretrain")] == ["pretrain-0", "pretrain-1"]
    assert [s.name for s in select(stages, "finetune")][-2:] == ["head", "finetune"]


def test_a_new_field_at_its_default_keeps_old_keys():
    """Keys hash only non-default fields: adding a spec field cannot invalidate caches."""
    import dataclasses

    from aepipe import plan as plan_mod
    from aepipe.spec import FinetuneSpec

    s = spec.load(None)
    assert "schedule" not in plan_mod._key_fields(s.finetune)  # at its default
    assert plan_mod._key_fields(dataclasses.replace(s.finetune, schedule="cosine"))["schedule"] == "cosine"
    assert "schedule" in {f.name for f in dataclasses.fields(FinetuneSpec)}
