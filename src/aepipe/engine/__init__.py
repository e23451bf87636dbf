"""The TensorFlow-free engine: the stage graph and keys (plan), the artifact store and its file layout, clean."""
