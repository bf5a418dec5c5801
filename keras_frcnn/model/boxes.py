"""Box geometry: areas, IoU, clipping and the Faster R-CNN box coder.

Boxes are float32 ``[..., 4]`` as ``(x1, y1, x2, y2)`` in pixels of the resized image,
continuous coordinates (width = x2 - x1, no +1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

# Smallest width/height used as a divisor or inside a log; keeps degenerate boxes finite.
_EPS = 1e-6


def box_area(boxes: tf.Tensor) -> tf.Tensor:
    """Area of ``[..., 4]`` boxes; inverted boxes count as zero."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return tf.maximum(x2 - x1, 0.0) * tf.maximum(y2 - y1, 0.0)


def pairwise_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """IoU matrix ``[N, M]`` of boxes ``a [N, 4]`` against ``b [M, 4]``; zero union gives 0."""
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    ax1, ay1, ax2, ay2 = tf.split(a, 4, axis=-1)  # each [N, 1]
    bx1, by1, bx2, by2 = tf.unstack(b, 4, axis=-1)  # each [M]
    iw = tf.maximum(tf.minimum(ax2, bx2) - tf.maximum(ax1, bx1), 0.0)
    ih = tf.maximum(tf.minimum(ay2, by2) - tf.maximum(ay1, by1), 0.0)
    inter = iw * ih
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return tf.math.divide_no_nan(inter, union)


def clip_boxes(boxes: tf.Tensor, height: tf.Tensor | float, width: tf.Tensor | float) -> tf.Tensor:
    """Clip ``[..., 4]`` boxes to the image ``[0, width] x [0, height]``."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return tf.stack(
        [
            tf.clip_by_value(x1, 0.0, width),
            tf.clip_by_value(y1, 0.0, height),
            tf.clip_by_value(x2, 0.0, width),
            tf.clip_by_value(y2, 0.0, height),
        ],
        axis=-1,
    )


def _centre_size(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    w = x2 - x1
    h = y2 - y1
    return x1 + 0.5 * w, y1 + 0.5 * h, w, h


class BoxCoder:
    """Faster R-CNN box parametrisation (tx, ty, tw, th), each multiplied by ``weights``.

    ``tx = (cx - cxa) / wa * wx``, ``ty = (cy - cya) / ha * wy``,
    ``tw = log(w / wa) * ww``, ``th = log(h / ha) * wh``.
    ``decode`` clamps ``tw / ww`` and ``th / wh`` at ``clip_log`` so ``exp`` cannot overflow.
    """

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip_log: float = math.log(1000.0 / 16)):
        if len(weights) != 4:
            raise ValueError(f"BoxCoder needs 4 weights, got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.clip_log = float(clip_log)

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, clip_log={self.clip_log:.4f})"

    def encode(self, boxes: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
        """Regression targets ``[..., 4]`` that move ``anchors`` onto ``boxes``."""
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        anchors = tf.convert_to_tensor(anchors, tf.float32)
        wx, wy, ww, wh = self.weights
        cx, cy, w, h = _centre_size(boxes)
        cxa, cya, wa, ha = _centre_size(anchors)
        wa = tf.maximum(wa, _EPS)
        ha = tf.maximum(ha, _EPS)
        tx = (cx - cxa) / wa * wx
        ty = (cy - cya) / ha * wy
        tw = tf.math.log(tf.maximum(w, _EPS) / wa) * ww
        th = tf.math.log(tf.maximum(h, _EPS) / ha) * wh
        return tf.stack([tx, ty, tw, th], axis=-1)

    def decode(self, deltas: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
        """Boxes ``[..., 4]`` obtained by applying ``deltas`` to ``anchors`` (inverse of encode)."""
        deltas = tf.convert_to_tensor(deltas, tf.float32)
        anchors = tf.convert_to_tensor(anchors, tf.float32)
        wx, wy, ww, wh = self.weights
        cxa, cya, wa, ha = _centre_size(anchors)
        tx, ty, tw, th = tf.unstack(deltas, 4, axis=-1)
        dw = tf.minimum(tw / ww, self.clip_log)
        dh = tf.minimum(th / wh, self.clip_log)
        cx = tx / wx * wa + cxa
        cy = ty / wy * ha + cya
        w = tf.exp(dw) * wa
        h = tf.exp(dh) * ha
        return tf.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def box_feature_names(kind: str) -> tuple[str, ...]:
    """The columns :func:`box_features` gives for ``kind`` (``Config.roi_box_features``)."""
    return {"none": (), "size": ("width", "height"),
            "size_position": ("width", "height", "centre_x", "centre_y")}[kind]


def box_features(boxes: tf.Tensor, image_shape: tf.Tensor, kind: str) -> tf.Tensor:
    """Boxes [B, R, 4] of images of ``image_shape`` [B, 2] (height, width) -> their size (and centre)
    as fractions of the image, [B, R, k] float32, columns as :func:`box_feature_names`."""
    boxes = tf.cast(boxes, tf.float32)
    shape = tf.cast(image_shape, tf.float32)
    height, width = shape[:, None, 0], shape[:, None, 1]
    x_centre, y_centre, box_width, box_height = _centre_size(boxes)
    columns = {"width": box_width / width, "height": box_height / height,
               "centre_x": x_centre / width, "centre_y": y_centre / height}
    return tf.stack([columns[name] for name in box_feature_names(kind)], axis=-1)
