"""The paper's Eq. 1 for the RPN, and the same form for the detection head.

    L = 1/N_cls * sum_i L_cls(p_i, p_i*) + lambda * 1/N_reg * sum_i p_i* L_reg(t_i, t_i*)

Every function here is per image: inputs carry no batch axis; the model averages over images.
"""

from __future__ import annotations

import tensorflow as tf


def smooth_l1(diff, sigma: float):
    """Smooth L1 of ``diff`` summed over the last axis: 0.5 (sigma x)^2 if |x| < 1/sigma^2, else |x| - 0.5/sigma^2."""
    sigma2 = sigma * sigma
    absolute = tf.abs(diff)
    quadratic = 0.5 * sigma2 * tf.square(diff)
    linear = absolute - 0.5 / sigma2
    return tf.reduce_sum(tf.where(absolute < 1.0 / sigma2, quadratic, linear), axis=-1)


def rpn_loss(logits, deltas, labels, target_deltas, *, n_cls, n_reg, loss_lambda, sigma):
    """RPN terms of Eq. 1 for one image.

    ``logits`` [A] objectness logits, ``deltas``/``target_deltas`` [A, 4], ``labels`` [A] with
    1 positive, 0 negative, -1 not sampled. Returns ``(classification, regression)``: binary
    cross-entropy summed over sampled anchors / ``n_cls``, and ``loss_lambda`` times smooth L1
    summed over positive anchors / ``n_reg``.
    """
    sampled = tf.cast(labels >= 0, logits.dtype)
    positive = tf.cast(labels == 1, logits.dtype)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=positive, logits=logits)
    classification = tf.reduce_sum(bce * sampled) / n_cls
    regression = tf.reduce_sum(positive * smooth_l1(deltas - target_deltas, sigma))
    return classification, loss_lambda * regression / n_reg


def head_loss(class_logits, class_deltas, labels, target_deltas, weights, *, n_cls, n_reg, loss_lambda, sigma):
    """Detection-head terms of the same form for one image's sampled RoIs.

    ``class_logits`` [R, C+1] (class 0 is background), ``class_deltas`` [R, C, 4] (one box per
    object class), ``labels`` [R] in 0..C, ``target_deltas`` [R, 4], ``weights`` [R] (0 for
    padding RoIs). Softmax cross-entropy summed / ``n_cls`` and ``loss_lambda`` times smooth L1
    of the true class's deltas over foreground RoIs / ``n_reg``.
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=class_logits)
    classification = tf.reduce_sum(ce * weights) / n_cls
    foreground = tf.cast(labels > 0, class_logits.dtype) * weights
    object_class = tf.maximum(labels - 1, 0)
    chosen = tf.gather(class_deltas, object_class, axis=1, batch_dims=1)  # [R, 4]
    regression = tf.reduce_sum(foreground * smooth_l1(chosen - target_deltas, sigma))
    return classification, loss_lambda * regression / n_reg
