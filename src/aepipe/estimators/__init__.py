"""The scikit-learn face: AutoencoderTransformer, StackedAutoencoderClassifier, and load() of CLI artifacts."""

from .base import TrainingDivergedError
from .classifier import StackedAutoencoderClassifier
from .transformer import AutoencoderTransformer

__all__ = ["AutoencoderTransformer", "StackedAutoencoderClassifier", "TrainingDivergedError"]
