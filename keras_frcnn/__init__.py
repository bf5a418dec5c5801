"""keras_frcnn: Faster R-CNN in Keras 3 / TensorFlow for metaphase chromosomes.

``from keras_frcnn import Config, build_model, FasterRCNN`` — the heavy TensorFlow imports happen
on first use, so the data tools (``python -m keras_frcnn.annotations``) start quickly.
"""

from __future__ import annotations

from keras_frcnn.lazy import lazy_attributes

__version__ = "0.2.0"

_EXPORTS = {
    "Config": "keras_frcnn.config",
    "ClassMap": "keras_frcnn.annotations.classes",
    "ImageRecord": "keras_frcnn.annotations.records",
    "FasterRCNN": "keras_frcnn.model.faster_rcnn",
    "build_model": "keras_frcnn.model.faster_rcnn",
    "build_optimizer": "keras_frcnn.training.optimizers",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
