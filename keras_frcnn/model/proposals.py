"""Region proposals from RPN outputs, and per-class NMS for final detections (one image each)."""

from __future__ import annotations

import tensorflow as tf

from keras_frcnn.model.boxes import BoxCoder, clip_boxes


def nms_padded(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_output_size: int,
    iou_threshold: float,
    score_threshold: float = float("-inf"),
) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy NMS with a fixed-size output.

    Returns ``indices [max_output_size]`` int32 (by descending score) and ``valid`` bool; invalid
    slots hold index 0. A box is suppressed when its IoU with a kept box is > ``iou_threshold``;
    boxes need score > ``score_threshold``. XLA-compilable (NonMaxSuppressionV4, padded).
    """
    indices, num_valid = tf.raw_ops.NonMaxSuppressionV4(
        boxes=tf.convert_to_tensor(boxes, tf.float32),
        scores=tf.convert_to_tensor(scores, tf.float32),
        max_output_size=tf.constant(max_output_size, tf.int32),
        iou_threshold=tf.constant(iou_threshold, tf.float32),
        score_threshold=tf.constant(score_threshold, tf.float32),
        pad_to_max_output_size=True,
    )
    valid = tf.range(max_output_size) < num_valid
    # Padding slots are not guaranteed to be 0 (e.g. under XLA): make them so.
    indices = tf.where(valid, indices, 0)
    indices = tf.ensure_shape(indices, [max_output_size])
    return indices, valid


def generate_proposals(
    objectness_logits: tf.Tensor,
    deltas: tf.Tensor,
    anchors: tf.Tensor,
    image_height,
    image_width,
    *,
    pre_nms_top_n: int,
    post_nms_top_n: int,
    nms_iou: float = 0.7,
    min_size: float = 4.0,
    box_coder: BoxCoder,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Proposals of one image: decode, clip, drop small, top-k, NMS, keep ``post_nms_top_n``.

    Inputs ``objectness_logits [A]``, ``deltas [A, 4]``, ``anchors [A, 4]``.
    Returns ``boxes [post_nms_top_n, 4]`` (gradient stopped), ``scores [post_nms_top_n]``
    (sigmoid of the logit) and ``valid [post_nms_top_n]`` bool; padding rows are zeros / False.
    Rows are sorted by descending score. ``min_size`` is in resized-image pixels.
    """
    logits = tf.reshape(tf.convert_to_tensor(objectness_logits, tf.float32), [-1])
    deltas = tf.reshape(tf.convert_to_tensor(deltas, tf.float32), [-1, 4])
    anchors = tf.reshape(tf.convert_to_tensor(anchors, tf.float32), [-1, 4])

    boxes = clip_boxes(box_coder.decode(deltas, anchors), image_height, image_width)
    big_enough = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    big_enough &= tf.math.is_finite(logits)
    scores = tf.where(big_enough, logits, float("-inf"))

    # Pad with pre_nms_top_n dropped entries: k is then static and valid for any A (XLA-friendly).
    scores = tf.concat([scores, tf.fill([pre_nms_top_n], float("-inf"))], axis=0)
    boxes = tf.concat([boxes, tf.zeros([pre_nms_top_n, 4])], axis=0)
    big_enough = tf.concat([big_enough, tf.zeros([pre_nms_top_n], tf.bool)], axis=0)
    top_scores, top_indices = tf.math.top_k(scores, k=pre_nms_top_n, sorted=True)
    top_boxes = tf.gather(boxes, top_indices)
    top_ok = tf.gather(big_enough, top_indices)

    keep, valid = nms_padded(top_boxes, top_scores, post_nms_top_n, nms_iou)
    valid &= tf.gather(top_ok, keep)  # -inf scores never pass NMS; this only makes it explicit
    out_boxes = tf.where(valid[:, None], tf.gather(top_boxes, keep), 0.0)
    out_scores = tf.where(valid, tf.sigmoid(tf.gather(top_scores, keep)), 0.0)
    return tf.stop_gradient(out_boxes), tf.stop_gradient(out_scores), valid


def batched_nms_per_class(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    *,
    iou_threshold: float,
    score_threshold: float,
    max_detections: int,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-class NMS of one image for inference.

    ``boxes [N, C, 4]`` (class-specific) or ``[N, 4]`` (shared), ``scores [N, C]``.
    Keeps scores > ``score_threshold``; suppresses IoU > ``iou_threshold`` within each class.
    Returns ``boxes [max_detections, 4]``, ``scores``, ``classes`` int32 (column index of
    ``scores``) and ``valid`` bool, sorted by descending score, zero-padded.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    if boxes.shape.rank == 2:
        boxes = boxes[:, None, :]
    out_boxes, out_scores, out_classes, num_valid = tf.image.combined_non_max_suppression(
        boxes[None],
        scores[None],
        max_output_size_per_class=max_detections,
        max_total_size=max_detections,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        pad_per_class=False,
        clip_boxes=False,  # True would clip to [0, 1] (normalised coordinates)
    )
    valid = tf.range(max_detections) < num_valid[0]
    out_boxes = tf.where(valid[:, None], out_boxes[0], 0.0)
    out_scores = tf.where(valid, out_scores[0], 0.0)
    out_classes = tf.where(valid, tf.cast(out_classes[0], tf.int32), 0)
    return out_boxes, out_scores, out_classes, valid


def object_candidates(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    *,
    iou_threshold: float,
    score_threshold: float,
    max_detections: int,
) -> dict:
    """Class-agnostic NMS of one image, keeping every class's score and box for each object.

    ``boxes [N, C, 4]`` (class-specific), ``scores [N, C]`` (class probabilities, background
    excluded). An object's score is its summed class probability (1 - background); its box and
    class are those of its most likely class. Returns ``boxes [D, 4]``, ``scores [D]``,
    ``classes [D]``, ``valid [D]``, ``class_scores [D, C]`` and ``class_boxes [D, C, 4]``, sorted
    by descending object score: the input of a per-image label assignment
    (:mod:`keras_frcnn.model.label_assignment`).
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    classes = tf.argmax(scores, axis=-1, output_type=tf.int32)
    best_boxes = tf.gather(boxes, classes, batch_dims=1)
    object_scores = tf.reduce_sum(scores, axis=-1)
    keep, valid = nms_padded(best_boxes, object_scores, max_detections, iou_threshold, score_threshold)
    mask = tf.cast(valid, tf.float32)
    return {
        "boxes": tf.gather(best_boxes, keep) * mask[:, None],
        "scores": tf.gather(object_scores, keep) * mask,
        "classes": tf.where(valid, tf.gather(classes, keep), 0),
        "valid": valid,
        "class_scores": tf.gather(scores, keep) * mask[:, None],
        "class_boxes": tf.gather(boxes, keep) * mask[:, None, None],
    }
