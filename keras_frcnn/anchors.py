"""Anchors and RPN training targets (matching + balanced sampling).

Anchor order is ``(i, j, k)``: feature row ``i``, column ``j``, anchor shape ``k``. It matches
reshaping an RPN output ``[B, Hf, Wf, K * 4]`` to ``[B, Hf * Wf * K, 4]`` and ``[B, Hf, Wf, K]``
to ``[B, Hf * Wf * K]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from keras_frcnn.boxes import BoxCoder, pairwise_iou
from keras_frcnn.geometry import base_anchors

# Match codes returned by match_anchors (values >= 0 are ground-truth indices).
NEGATIVE = -1
IGNORED = -2


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


def match_anchors(
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
    iou = pairwise_iou(anchors, gt_boxes)
    matches = match_anchors(
        iou,
        gt_valid,
        inside,
        positive_iou=positive_iou,
        negative_iou=negative_iou,
        allow_low_quality=True,
    )
    labels = tf.where(matches >= 0, 1, tf.where(matches == NEGATIVE, 0, -1))
    labels = sample_balanced(labels, batch_size, positive_fraction, seed=seed)

    # Gather from gts plus one dummy unit box, so that M = 0 is safe.
    safe_gt = tf.concat([gt_boxes, tf.constant([[0.0, 0.0, 1.0, 1.0]])], axis=0)
    matched = tf.gather(safe_gt, tf.where(matches >= 0, matches, tf.shape(gt_boxes)[0]))
    positive = tf.equal(labels, 1)
    safe_anchors = tf.where(positive[:, None], anchors, tf.constant([0.0, 0.0, 1.0, 1.0]))
    deltas = tf.where(positive[:, None], box_coder.encode(matched, safe_anchors), 0.0)
    return tf.stop_gradient(labels), tf.stop_gradient(deltas)
