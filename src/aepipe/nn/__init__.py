"""Networks (TensorFlow): autoencoder blocks, custom layers, deep (joint) models, the classifier,
training, checkpoints, progress and inference."""
