"""Fast R-CNN training RoIs: match proposals (plus the gt boxes) to gts and sample a fixed number."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from keras_frcnn.model.boxes import BoxCoder, pairwise_iou
from keras_frcnn.model.matching import match_boxes, sample_balanced

_UNIT_BOX = (0.0, 0.0, 1.0, 1.0)


def sample_rois(
    proposals: tf.Tensor,
    proposals_valid: tf.Tensor,
    gt_boxes: tf.Tensor,
    gt_labels: tf.Tensor,
    gt_valid: tf.Tensor,
    *,
    num_rois: int,
    positive_fraction: float = 0.25,
    positive_iou: float = 0.5,
    negative_iou_low: float = 0.0,
    box_coder: BoxCoder,
    seed: int | Sequence[int] | tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Sample ``num_rois`` RoIs of one image with their head targets.

    Candidates are the valid proposals plus the valid gt boxes. Foreground: IoU >= ``positive_iou``
    (at most ``int(num_rois * positive_fraction)``); background: IoU in
    ``[negative_iou_low, positive_iou)``. Rows are foreground first, then background, then padding.
    Returns ``rois [num_rois, 4]``, ``roi_labels [num_rois]`` int32 (0 background, gt class + 1),
    ``roi_deltas [num_rois, 4]`` (``box_coder.encode`` to the matched gt; zeros for background) and
    ``roi_weights [num_rois]`` float32 (1 sampled, 0 padding). ``seed`` as in ``sample_balanced``.
    """
    proposals = tf.reshape(tf.convert_to_tensor(proposals, tf.float32), [-1, 4])
    proposals_valid = tf.convert_to_tensor(proposals_valid, tf.bool)
    gt_boxes = tf.reshape(tf.convert_to_tensor(gt_boxes, tf.float32), [-1, 4])
    gt_labels = tf.convert_to_tensor(gt_labels, tf.int32)
    gt_valid = tf.convert_to_tensor(gt_valid, tf.bool)

    # Candidates: proposals, gts, then num_rois invalid rows so that top_k(num_rois) always fits.
    candidates = tf.concat([proposals, gt_boxes, tf.zeros([num_rois, 4])], axis=0)
    candidates_valid = tf.concat([proposals_valid, gt_valid, tf.zeros([num_rois], tf.bool)], axis=0)

    matches = match_boxes(
        pairwise_iou(candidates, gt_boxes),
        gt_valid,
        candidates_valid,
        positive_iou=positive_iou,
        negative_iou=positive_iou,
        negative_iou_low=negative_iou_low,
        allow_low_quality=False,
    )
    labels = tf.where(matches >= 0, 1, tf.where(matches == -1, 0, -1))
    labels = sample_balanced(labels, num_rois, positive_fraction, seed=seed)

    # Foreground first, then background, then the rest (top_k keeps index order among ties).
    rank_key = tf.where(labels == 1, 2, tf.where(labels == 0, 1, 0))
    chosen = tf.math.top_k(rank_key, k=num_rois, sorted=True).indices
    chosen_labels = tf.gather(labels, chosen)
    foreground = tf.equal(chosen_labels, 1)
    sampled = chosen_labels >= 0

    rois = tf.where(sampled[:, None], tf.gather(candidates, chosen), 0.0)
    chosen_matches = tf.maximum(tf.gather(matches, chosen), 0)
    safe_gt = tf.concat([gt_boxes, tf.constant([_UNIT_BOX])], axis=0)  # index M: safe when M = 0
    safe_labels = tf.concat([gt_labels, tf.zeros([1], tf.int32)], axis=0)
    gt_index = tf.where(foreground, chosen_matches, tf.shape(gt_boxes)[0])
    roi_labels = tf.where(foreground, tf.gather(safe_labels, gt_index) + 1, 0)
    safe_rois = tf.where(foreground[:, None], rois, tf.constant(_UNIT_BOX))
    roi_deltas = tf.where(foreground[:, None], box_coder.encode(tf.gather(safe_gt, gt_index), safe_rois), 0.0)
    roi_weights = tf.cast(sampled, tf.float32)

    rois = tf.ensure_shape(tf.stop_gradient(rois), [num_rois, 4])
    roi_labels = tf.ensure_shape(tf.stop_gradient(roi_labels), [num_rois])
    roi_deltas = tf.ensure_shape(tf.stop_gradient(roi_deltas), [num_rois, 4])
    roi_weights = tf.ensure_shape(roi_weights, [num_rois])
    return rois, roi_labels, roi_deltas, roi_weights
