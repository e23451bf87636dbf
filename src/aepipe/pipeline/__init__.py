"""Running pipelines: the runner (above the stages it runs), status, run directories, sweeps.

No TensorFlow at import: the runner imports the stages only to build one."""
