"""Running pipelines: the runner (above the stages it runs), status, run directories, sweeps (no TensorFlow at import)."""
