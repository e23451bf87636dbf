"""Data sets, their fingerprints and the one feeding path (TensorFlow only inside the batch builders)."""
