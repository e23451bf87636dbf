"""Import TensorFlow with its C++ start-up notices kept off stderr.

TF 2.21 prints oneDNN/CUDA notices through absl before ``TF_CPP_MIN_LOG_LEVEL``
takes effect, so the variable alone does not silence them; the only reliable
way is to point file descriptor 2 elsewhere for the duration of the import.
Importing this module is the side effect; it runs once per process.
"""

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if "tensorflow" not in sys.modules and os.environ.get("AEPIPE_TF_NOTICES") != "1":
    sys.stderr.flush()
    _saved = os.dup(2)
    _null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(_null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(_saved, 2)
        os.close(_saved)
        os.close(_null)


def _not_retracing(record) -> bool:
    # Every stage compiles a fresh model, so tf.function traces anew by design;
    # TensorFlow's "triggered tf.function retracing" warning would blame the user.
    return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_not_retracing)
