"""Inference and its outputs: running a model (``detector.py``), detections files, export for
serving, the draft karyotype, the karyogram image and the review report.

``from keras_frcnn.inference import Detector, predict_records`` imports TensorFlow on first use only.
"""

from __future__ import annotations

from keras_frcnn.lazy import lazy_attributes

_EXPORTS = {
    "Detector": "keras_frcnn.inference.detector",
    "detect_images": "keras_frcnn.inference.detector",
    "predict_records": "keras_frcnn.inference.detector",
    "Detections": "keras_frcnn.inference.detections",
    "export": "keras_frcnn.inference.export",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
