"""precision = "auto": bfloat16 where the hardware computes it natively, float32 elsewhere, resolved on read."""

import pytest

from aepipe import config
from aepipe.config import hardware
from aepipe.engine.plan import Fingerprint, plan
from aepipe.errors import SpecError

FP = Fingerprint("fp", "fp")

AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
NO_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"  # an EPYC without AVX-512


def test_cpu_flags_tell_the_two_kinds_of_cpu_apart():
    assert hardware.cpu_has_bfloat16(AVX512_BF16)
    assert not hardware.cpu_has_bfloat16(NO_BF16)
    assert hardware.cpu_has_bfloat16("flags\t: sse2 amx_bf16\n")
    assert not hardware.cpu_has_bfloat16("")


def test_gpu_compute_capability_8_or_newer_has_bfloat16():
    assert hardware.gpu_has_bfloat16("8.0\n") and hardware.gpu_has_bfloat16("9.0\n9.0\n")
    assert not hardware.gpu_has_bfloat16("7.5\n") and not hardware.gpu_has_bfloat16("8.6\n7.0\n")
    assert not hardware.gpu_has_bfloat16("")


@pytest.mark.parametrize("native,expected", [("1", "bfloat16"), ("0", "float32")])
def test_auto_resolves_when_read_and_keys_equal_the_explicit_choice(monkeypatch, native, expected):
    monkeypatch.setenv("AEPIPE_BFLOAT16", native)
    hardware.native_bfloat16.cache_clear()
    try:
        text = "[[layers]]\nunits = 8\n[finetune]\nepochs = 2\nprecision = \"auto\"\n[unroll]\nepochs = 2\n"
        spec = config.loads(text, "p.toml", overrides=["unroll.precision=auto"])
        assert spec.finetune.precision == expected and spec.unroll.precision == expected
        explicit = config.loads(text.replace('"auto"', f'"{expected}"'), "p.toml",
                                overrides=[f"unroll.precision={expected}"])
        assert spec.to_dict() == explicit.to_dict()  # spec.json records the dtype that trained
        assert [s.key for s in plan(spec, FP)] == [s.key for s in plan(explicit, FP)]
    finally:
        hardware.native_bfloat16.cache_clear()


def test_a_bad_precision_names_auto_among_the_choices():
    with pytest.raises(SpecError, match="auto"):
        config.loads("[[layers]]\nunits = 8\n[finetune]\nprecision = \"half\"\n", "p.toml")
