"""The network: backbones, box and anchor ops, the RPN and RoI-head stages, their decoders, and
:class:`FasterRCNN`, which composes them (``faster_rcnn.py``).

``from keras_frcnn.model import FasterRCNN, build_model`` imports TensorFlow on first use only, so
the NumPy-only modules here (``geometry``, ``anchor_fit``'s helpers) load without it.
"""

from __future__ import annotations

from keras_frcnn.lazy import lazy_attributes

_EXPORTS = {
    "FasterRCNN": "keras_frcnn.model.faster_rcnn",
    "build_model": "keras_frcnn.model.faster_rcnn",
    "MODEL_FORMAT": "keras_frcnn.model.faster_rcnn",
    "RegionProposalNetwork": "keras_frcnn.model.rpn",
    "RoIHeads": "keras_frcnn.model.roi_heads",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
