"""The pipeline spec: dataclasses, parsing, field relevance and the README table (no TensorFlow)."""

from .parse import apply_override, from_dict, load, loads, parse_value, resolve_layer0
from .spec import (ACTIVATIONS, BLOCK_KINDS, DEFAULT_PIPELINE_TOML, LOSSES, OPTIMIZERS, DataSpec,
                   DistributionSpec, EvaluateSpec, FinetuneSpec, HeadSpec, LayerSpec, NoiseSpec, PipelineSpec,
                   PretrainSpec, TrackingSpec, UnrollSpec, canonical_json, to_plain)
from .docs import field_table

__all__ = ["ACTIVATIONS", "BLOCK_KINDS", "DEFAULT_PIPELINE_TOML", "LOSSES", "OPTIMIZERS", "DataSpec",
           "DistributionSpec", "EvaluateSpec", "FinetuneSpec", "HeadSpec", "LayerSpec", "NoiseSpec", "PipelineSpec",
           "PretrainSpec", "TrackingSpec", "UnrollSpec", "apply_override", "canonical_json", "field_table",
           "from_dict", "load", "loads",
           "parse_value", "resolve_layer0", "to_plain"]
