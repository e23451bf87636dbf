"""aepipe: greedy layer-wise autoencoder pretraining as cached, staged pipelines.

The scikit-learn estimators and ``load`` are imported on first use, so
``import aepipe`` stays cheap and never imports TensorFlow.
"""

__version__ = "0.1.0"

__all__ = ["AutoencoderClusterer", "AutoencoderTransformer", "InputRangeWarning", "StackedAutoencoderClassifier", "load"]

_LAZY = {"AutoencoderClusterer": "estimators", "AutoencoderTransformer": "estimators", "StackedAutoencoderClassifier": "estimators",
         "load": "estimators.load", "InputRangeWarning": "data.ranges"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'aepipe' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
