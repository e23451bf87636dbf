"""``aepipe tune``: a search over pipeline fields with Optuna, on the shared stage cache.

``space`` parses and checks the search space (no Optuna, no TensorFlow);
``study`` runs trials as finetune-phase runs against one artifacts directory.
"""
