"""The scikit-learn face: AutoencoderTransformer, StackedAutoencoderClassifier, AutoencoderClusterer, and load() of CLI artifacts."""

from .base import TrainingDivergedError
from .classifier import StackedAutoencoderClassifier
from .clusterer import AutoencoderClusterer
from .transformer import AutoencoderTransformer

__all__ = ["AutoencoderClusterer", "AutoencoderTransformer", "StackedAutoencoderClassifier", "TrainingDivergedError"]
