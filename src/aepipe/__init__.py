"""aepipe: greedy layer-wise autoencoder pretraining as cached, staged pipelines."""

__version__ = "0.1.0"
