"""Metrics, plots and the run report, drawn from stored files (no TensorFlow)."""
