"""Anchors and RPN training targets (matched and sampled by :mod:`keras_frcnn.model.matching`).

Anchor order is ``(i, j, k)``: feature row ``i``, column ``j``, anchor shape ``k``. It matches
reshaping an RPN output ``[B, Hf, Wf, K * 4]`` to ``[B, Hf * Wf * K, 4]`` and ``[B, Hf, Wf, K]``
to ``[B, Hf * Wf * K]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from keras_frcnn.model.boxes import BoxCoder, pairwise_iou
from keras_frcnn.model.geometry import base_anchors
from keras_frcnn.model.matching import IGNORED, NEGATIVE, match_boxes, sample_balanced

def anchor_grid(
    feature_height: int | tf.Tensor,
    feature_width: int | tf.Tensor,
    stride: float,
    scales: Sequence[float],
    ratios: Sequence[float],
) -> tf.Tensor:
    """All anchors ``[Hf * Wf * K, 4]`` of a feature map; cell (i, j) is centred at
    ``((j + 0.5) * stride, (i + 0.5) * stride)`` in image pixels."""
    base = tf.constant(base_anchors(scales, ratios))  # [K, 4]
    stride = tf.cast(stride, tf.float32)
    cy = (tf.cast(tf.range(feature_height), tf.float32) + 0.5) * stride  # [Hf]
    cx = (tf.cast(tf.range(feature_width), tf.float32) + 0.5) * stride  # [Wf]
    cyy, cxx = tf.meshgrid(cy, cx, indexing="ij")  # [Hf, Wf]
    centres = tf.stack([cxx, cyy, cxx, cyy], axis=-1)  # [Hf, Wf, 4]
    anchors = centres[:, :, None, :] + base[None, None, :, :]  # [Hf, Wf, K, 4]
    return tf.reshape(anchors, [-1, 4])


def inside_image(boxes: tf.Tensor, image_height, image_width, allowed_border: float = 0.0) -> tf.Tensor:
    """``[A]`` bool: box lies inside the image, up to ``allowed_border`` pixels outside."""
    h = tf.cast(image_height, tf.float32)
    w = tf.cast(image_width, tf.float32)
    x1, y1, x2, y2 = tf.unstack(tf.convert_to_tensor(boxes, tf.float32), 4, axis=-1)
    b = float(allowed_border)
    return (x1 >= -b) & (y1 >= -b) & (x2 <= w + b) & (y2 <= h + b)


def rpn_targets(
    anchors: tf.Tensor,
    gt_boxes: tf.Tensor,
    gt_valid: tf.Tensor,
    image_height,
    image_width,
    *,
    positive_iou: float = 0.7,
    negative_iou: float = 0.3,
    batch_size: int = 256,
    positive_fraction: float = 0.5,
    allowed_border: float = 0.0,
    box_coder: BoxCoder,
    seed: int | Sequence[int] | tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """RPN targets of one image.

    Returns ``labels [A]`` int32 (1 positive, 0 negative, -1 ignored or not sampled) and
    ``deltas [A, 4]`` float32 (``box_coder.encode`` of the matched gt; zeros unless label is 1).
    Anchors crossing the border by more than ``allowed_border`` are ignored before matching.
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    gt_boxes = tf.reshape(tf.convert_to_tensor(gt_boxes, tf.float32), [-1, 4])
    gt_valid = tf.convert_to_tensor(gt_valid, tf.bool)

    inside = inside_image(anchors, image_height, image_width, allowed_border)
    matches = _match_inside(anchors, inside, gt_boxes, gt_valid, positive_iou, negative_iou)
    labels = tf.where(matches >= 0, 1, tf.where(matches == NEGATIVE, 0, -1))
    labels = sample_balanced(labels, batch_size, positive_fraction, seed=seed)

    # Gather from gts plus one dummy unit box, so that M = 0 is safe.
    safe_gt = tf.concat([gt_boxes, tf.constant([[0.0, 0.0, 1.0, 1.0]])], axis=0)
    matched = tf.gather(safe_gt, tf.where(matches >= 0, matches, tf.shape(gt_boxes)[0]))
    positive = tf.equal(labels, 1)
    safe_anchors = tf.where(positive[:, None], anchors, tf.constant([0.0, 0.0, 1.0, 1.0]))
    deltas = tf.where(positive[:, None], box_coder.encode(matched, safe_anchors), 0.0)
    return tf.stop_gradient(labels), tf.stop_gradient(deltas)


def _match_inside(anchors, inside, gt_boxes, gt_valid, positive_iou: float, negative_iou: float) -> tf.Tensor:
    """``match_boxes`` of every anchor against the valid gts, computed on the anchors inside the
    image and the valid gts only (the others are IGNORED / never matched anyway): the same matches,
    without the IoU of the padding gts and of the border-crossing anchors (on a 1000 px spread with
    42 chromosomes among 100 padded boxes: 0.04 s instead of 0.10 s of a 0.59 s training step)."""
    anchor_index = tf.cast(tf.reshape(tf.where(inside), [-1]), tf.int32)
    gt_index = tf.cast(tf.reshape(tf.where(gt_valid), [-1]), tf.int32)
    iou = pairwise_iou(tf.gather(anchors, anchor_index), tf.gather(gt_boxes, gt_index))
    compact = match_boxes(iou, tf.ones_like(gt_index, tf.bool), positive_iou=positive_iou,
                          negative_iou=negative_iou, allow_low_quality=True)
    safe_index = tf.concat([gt_index, [0]], axis=0)  # gatherable with no valid gt
    compact = tf.where(compact >= 0, tf.gather(safe_index, tf.maximum(compact, 0)), compact)  # gt numbers as given
    return tf.tensor_scatter_nd_update(tf.fill(tf.shape(inside), IGNORED), anchor_index[:, None], compact)
