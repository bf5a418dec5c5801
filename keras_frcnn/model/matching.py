"""Matching candidates to ground truth and balanced sampling: shared by the RPN (anchors,
:mod:`keras_frcnn.model.anchors`) and the RoI head (proposals, :mod:`keras_frcnn.model.roi_sampling`)."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

# Match codes returned by match_boxes (values >= 0 are ground-truth indices).
NEGATIVE = -1
IGNORED = -2


def match_boxes(
    iou: tf.Tensor,
    gt_valid: tf.Tensor,
    candidate_valid: tf.Tensor | None = None,
    *,
    positive_iou: float,
    negative_iou: float,
    negative_iou_low: float = 0.0,
    allow_low_quality: bool = True,
) -> tf.Tensor:
    """Matcher: assign each candidate (row of ``iou [A, M]``) to a ground truth (column).

    Returns ``matches [A]`` int32: the matched gt index (>= 0) for positives,
    ``NEGATIVE`` (-1) for max IoU in ``[negative_iou_low, negative_iou)``, ``IGNORED`` (-2) otherwise
    (between thresholds, below ``negative_iou_low``, or ``candidate_valid`` False).
    Only columns with ``gt_valid`` count; with no valid gt every valid candidate is negative
    (its max IoU is 0). With ``allow_low_quality``, every candidate whose IoU with a valid gt
    equals that gt's best IoU (> 0) is positive too, matched to the gt for which it is best
    (highest IoU among those).
    """
    iou = tf.convert_to_tensor(iou, tf.float32)
    gt_valid = tf.convert_to_tensor(gt_valid, tf.bool)
    num_candidates = tf.shape(iou)[0]
    if candidate_valid is None:
        candidate_valid = tf.ones([num_candidates], tf.bool)
    candidate_valid = tf.convert_to_tensor(candidate_valid, tf.bool)

    pair_valid = candidate_valid[:, None] & gt_valid[None, :]
    masked = tf.where(pair_valid, iou, -1.0)  # [A, M]
    # Extra column: IoU 0 against "no object", so that M = 0 or no valid gt still works.
    extra = tf.where(candidate_valid, 0.0, -1.0)[:, None]
    padded = tf.concat([masked, extra], axis=1)  # [A, M + 1]
    max_iou = tf.reduce_max(padded, axis=1)
    best_gt = tf.argmax(padded, axis=1, output_type=tf.int32)

    positive = max_iou >= positive_iou
    negative = candidate_valid & (max_iou < negative_iou) & (max_iou >= negative_iou_low) & ~positive
    matches = tf.where(positive, best_gt, tf.where(negative, NEGATIVE, IGNORED))

    if allow_low_quality:
        gt_best = tf.reduce_max(masked, axis=0)  # [M]; -1 for invalid gts
        is_best = pair_valid & (masked >= gt_best[None, :]) & (gt_best[None, :] > 0.0)
        low_quality = tf.reduce_any(is_best, axis=1) & ~positive
        best_iou = tf.concat([tf.where(is_best, masked, -1.0), tf.fill([num_candidates, 1], -1.0)], axis=1)
        low_quality_gt = tf.argmax(best_iou, axis=1, output_type=tf.int32)  # extra column: safe for M = 0
        matches = tf.where(low_quality, low_quality_gt, matches)
    return matches


def sample_balanced(
    labels: tf.Tensor,
    batch_size: int,
    positive_fraction: float,
    seed: int | Sequence[int] | tf.Tensor | None = None,
) -> tf.Tensor:
    """Keep a random subset of at most ``batch_size`` labelled entries, at most
    ``int(batch_size * positive_fraction)`` of them positive; the rest become -1.

    ``labels [A]`` int32 in {1, 0, -1}. Negatives fill what positives leave free.
    ``seed``: None draws from the global stateful RNG; an int or a ``[2]`` int tensor uses the
    stateless RNG (same seed, same selection -- vary it per step when training).
    """
    labels = tf.convert_to_tensor(labels, tf.int32)
    shape = tf.shape(labels)
    if seed is None:
        noise = tf.random.uniform(shape, dtype=tf.float32)
    else:
        seed_t = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        if seed_t.shape.rank == 0:
            seed_t = tf.stack([seed_t, tf.constant(0, tf.int64)])
        noise = tf.random.stateless_uniform(shape, seed=seed_t, dtype=tf.float32)

    positive = tf.equal(labels, 1)
    negative = tf.equal(labels, 0)
    max_positive = int(batch_size * positive_fraction)
    num_positive = tf.minimum(tf.reduce_sum(tf.cast(positive, tf.int32)), max_positive)
    num_negative = tf.minimum(tf.reduce_sum(tf.cast(negative, tf.int32)), batch_size - num_positive)

    keep_positive = _random_subset(noise, positive, num_positive, max_positive)
    keep_negative = _random_subset(noise, negative, num_negative, batch_size)
    return tf.where(keep_positive, 1, tf.where(keep_negative, 0, -1))


def _random_subset(noise: tf.Tensor, mask: tf.Tensor, count: tf.Tensor, max_count: int) -> tf.Tensor:
    """``[A]`` bool: the ``count`` (<= ``max_count``, <= mask.sum()) masked entries of largest noise."""
    size = tf.shape(noise)[0]
    # noise is in [0, 1): masked entries rank first; the padding makes a static k always valid.
    scores = tf.concat([tf.where(mask, noise, -1.0), tf.fill([max_count], -2.0)], axis=0)
    top = tf.math.top_k(scores, k=max_count, sorted=True).indices
    chosen = tf.cast(tf.range(max_count) < count, tf.int32)
    picked = tf.math.unsorted_segment_sum(chosen, top, size + max_count)  # vectorized_map-friendly
    return mask & (picked[:size] > 0)
