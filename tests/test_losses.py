"""Eq. 1 of the paper checked against values worked out by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.losses import head_loss, rpn_loss, smooth_l1


def test_smooth_l1_both_branches():
    # sigma = 1: |x| < 1 -> 0.5 x^2, else |x| - 0.5 ; sigma = 3: threshold 1/9
    diff = tf.constant([[0.5, -2.0, 0.0, 0.1]])
    assert smooth_l1(diff, 1.0).numpy()[0] == pytest.approx(0.125 + 1.5 + 0.0 + 0.005)
    assert smooth_l1(tf.constant([[0.1, 1.0]]), 3.0).numpy()[0] == pytest.approx(0.5 * 9 * 0.01 + (1.0 - 0.5 / 9))


def test_rpn_loss_matches_hand_computation():
    logits = tf.constant([2.0, -1.0, 0.5, 3.0])
    labels = tf.constant([1, 0, -1, 1])  # anchor 2 not sampled
    deltas = tf.constant([[0.5, 0, 0, 0], [9, 9, 9, 9], [9, 9, 9, 9], [0, 2.0, 0, 0]])
    targets = tf.zeros([4, 4])
    cls, reg = rpn_loss(logits, deltas, labels, targets, n_cls=256.0, n_reg=2400.0, loss_lambda=10.0, sigma=1.0)
    # BCE: -log(sigmoid(2)) - log(1 - sigmoid(-1)) - log(sigmoid(3)); anchor 2 ignored
    expected_cls = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-3.0))) / 256
    # smooth L1 over positives only (anchors 0 and 3): 0.125 + (2 - 0.5) = 1.625; times lambda / N_reg
    expected_reg = 10.0 * 1.625 / 2400
    assert cls.numpy() == pytest.approx(expected_cls, rel=1e-6)
    assert reg.numpy() == pytest.approx(expected_reg, rel=1e-6)


def test_head_loss_uses_true_class_deltas_and_ignores_padding():
    logits = tf.constant([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 5.0, 0.0]])  # C = 2 (+ background)
    labels = tf.constant([2, 0, 1])
    weights = tf.constant([1.0, 1.0, 0.0])  # third RoI is padding
    deltas = np.zeros((3, 2, 4), np.float32)
    deltas[0, 1] = [1.0, 0, 0, 0]  # class 2 -> column 1: smooth L1 (sigma 1) = 0.5
    deltas[0, 0] = [7.0, 7, 7, 7]  # other class column is ignored
    cls, reg = head_loss(logits, tf.constant(deltas), labels, tf.zeros([3, 4]), weights,
                         n_cls=2.0, n_reg=2.0, loss_lambda=1.0, sigma=1.0)
    expected_cls = (math.log(3.0) + (-math.log(math.e / (math.e + 2)))) / 2
    assert cls.numpy() == pytest.approx(expected_cls, rel=1e-6)
    assert reg.numpy() == pytest.approx(0.5 / 2, rel=1e-6)
