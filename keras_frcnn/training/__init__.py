"""Training: the loop (``loop.py``: :func:`train`), optimizers, tf.distribute strategies, the run
folder, warm starts, the optimizer study (``comparison.py``) and the loss plots.

``from keras_frcnn.training import train, TrainOptions`` imports TensorFlow on first use only.
"""

from __future__ import annotations

from keras_frcnn.lazy import lazy_attributes

_EXPORTS = {
    "train": "keras_frcnn.training.loop",
    "TrainOptions": "keras_frcnn.training.loop",
    "TrainResult": "keras_frcnn.training.loop",
    "split_records": "keras_frcnn.training.loop",
    "build_optimizer": "keras_frcnn.training.optimizers",
    "RunFolder": "keras_frcnn.training.runs",
    "load_model": "keras_frcnn.training.runs",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
