"""keras_frcnn: Faster R-CNN in Keras 3 / TensorFlow for metaphase chromosomes.

``from keras_frcnn import Config, build_model, FasterRCNN`` — the heavy TensorFlow imports happen
on first use, so the data tools (``python -m keras_frcnn.annotations``) start quickly.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "keras_frcnn.config",
    "ClassMap": "keras_frcnn.annotations.classes",
    "ImageRecord": "keras_frcnn.annotations.records",
    "FasterRCNN": "keras_frcnn.model",
    "build_model": "keras_frcnn.model",
    "build_optimizer": "keras_frcnn.optimizers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'keras_frcnn' has no attribute {name!r}")
