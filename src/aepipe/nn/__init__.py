"""Networks: autoencoder blocks, custom layers, deep (joint) models, the classifier, training and inference (TensorFlow)."""
