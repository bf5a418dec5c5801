"""Anchors, matching, balanced sampling and RPN targets."""

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.anchors import anchor_grid, base_anchors, rpn_targets
from keras_frcnn.model.matching import IGNORED, NEGATIVE, match_boxes, sample_balanced
from keras_frcnn.model.boxes import BoxCoder
from keras_frcnn.model.iou import pairwise_iou as pairwise_iou_numpy


def test_base_anchors_sizes_and_order():
    base = base_anchors((16.0, 32.0), (0.5, 1.0, 2.0))
    assert base.shape == (6, 4) and base.dtype == np.float32
    w = base[:, 2] - base[:, 0]
    h = base[:, 3] - base[:, 1]
    np.testing.assert_allclose(base[:, 0] + base[:, 2], 0, atol=1e-6)  # centred at 0
    np.testing.assert_allclose(base[:, 1] + base[:, 3], 0, atol=1e-6)
    np.testing.assert_allclose(w * h, [256] * 3 + [1024] * 3, rtol=1e-5)  # area = scale^2
    np.testing.assert_allclose(h / w, [0.5, 1, 2, 0.5, 1, 2], rtol=1e-5)  # ratio = h / w
    np.testing.assert_allclose(base[1], [-8, -8, 8, 8])
    np.testing.assert_allclose(base[3], [-16 * np.sqrt(2), -8 * np.sqrt(2), 16 * np.sqrt(2), 8 * np.sqrt(2)], rtol=1e-6)


def test_anchor_grid_2x3_hand_checked():
    anchors = anchor_grid(2, 3, 16, (16.0, 32.0), (1.0,)).numpy()
    assert anchors.shape == (2 * 3 * 2, 4)
    # (i, j, k) order: index = (i * 3 + j) * 2 + k
    expected = []
    for i in range(2):
        for j in range(3):
            cx, cy = (j + 0.5) * 16, (i + 0.5) * 16
            for s in (16, 32):
                expected.append([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2])
    np.testing.assert_allclose(anchors, expected)
    np.testing.assert_allclose(anchors[0], [0, 0, 16, 16])
    np.testing.assert_allclose(anchors[(1 * 3 + 2) * 2 + 1], [24, 8, 56, 40])  # row 1, col 2, scale 32


def test_anchor_grid_dynamic_sizes_in_tf_function():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
    def grid(h, w):
        return anchor_grid(h, w, 16, (16.0, 64.0), (0.5, 1.0, 2.0))

    out = grid(tf.constant(3), tf.constant(5)).numpy()
    np.testing.assert_allclose(out, anchor_grid(3, 5, 16, (16.0, 64.0), (0.5, 1.0, 2.0)).numpy())
    assert out.shape == (3 * 5 * 6, 4)


def test_anchor_order_matches_rpn_reshape():
    hf, wf, scales, ratios = 3, 4, (16.0, 32.0), (0.5, 1.0, 2.0)
    k = len(scales) * len(ratios)
    anchors = anchor_grid(hf, wf, 16, scales, ratios).numpy()
    # A fake RPN output whose channels encode (i, j, k, coordinate).
    out = np.zeros((1, hf, wf, k * 4), np.float32)
    scores = np.zeros((1, hf, wf, k), np.float32)
    for i in range(hf):
        for j in range(wf):
            for a in range(k):
                scores[0, i, j, a] = 1000 * i + 100 * j + a
                for c in range(4):
                    out[0, i, j, a * 4 + c] = 1000 * i + 100 * j + 10 * a + c
    flat = tf.reshape(out, [1, -1, 4]).numpy()[0]
    flat_scores = tf.reshape(scores, [1, -1]).numpy()[0]
    base = base_anchors(scales, ratios)
    for idx in range(hf * wf * k):
        i, j, a = flat_scores[idx] // 1000, (flat_scores[idx] % 1000) // 100, flat_scores[idx] % 100
        np.testing.assert_allclose(flat[idx], 1000 * i + 100 * j + 10 * a + np.arange(4))
        cx, cy = (j + 0.5) * 16, (i + 0.5) * 16
        np.testing.assert_allclose(anchors[idx], base[int(a)] + [cx, cy, cx, cy], rtol=1e-6)


# --- matching -------------------------------------------------------------------------------


def test_match_boxes_thresholds_and_masks():
    iou = tf.constant(
        [
            [0.80, 0.10],  # positive to gt 0
            [0.50, 0.20],  # between: ignored
            [0.10, 0.20],  # negative
            [0.05, 0.60],  # best for gt 1 (0.6 < 0.7): positive via the low-quality rule
            [0.90, 0.55],  # positive to gt 0
            [0.99, 0.99],  # candidate invalid: ignored
        ]
    )
    m = match_boxes(
        iou, [True, True], [True, True, True, True, True, False], positive_iou=0.7, negative_iou=0.3
    ).numpy()
    np.testing.assert_array_equal(m, [0, IGNORED, NEGATIVE, 1, 0, IGNORED])
    # gt 1 invalid: row 3 is no longer a low-quality positive, row 4 matches gt 0
    m = match_boxes(
        iou, [True, False], [True, True, True, True, True, False], positive_iou=0.7, negative_iou=0.3
    ).numpy()
    np.testing.assert_array_equal(m, [0, IGNORED, NEGATIVE, NEGATIVE, 0, IGNORED])
    # no low-quality matches, RoI-style thresholds with a lower bound
    m = match_boxes(
        iou, [True, True], positive_iou=0.5, negative_iou=0.5, negative_iou_low=0.1, allow_low_quality=False
    ).numpy()
    np.testing.assert_array_equal(m, [0, 0, NEGATIVE, 1, 0, 0])
    m = match_boxes(iou[:, :1], [True], positive_iou=0.5, negative_iou=0.5, negative_iou_low=0.1).numpy()
    np.testing.assert_array_equal(m, [0, 0, NEGATIVE, IGNORED, 0, 0])


def test_match_boxes_no_gt():
    for iou, valid in [(tf.zeros([4, 0]), tf.zeros([0], tf.bool)), (tf.fill([4, 2], 0.9), [False, False])]:
        m = match_boxes(iou, valid, [True, True, False, True], positive_iou=0.7, negative_iou=0.3).numpy()
        np.testing.assert_array_equal(m, [NEGATIVE, NEGATIVE, IGNORED, NEGATIVE])


# --- sampling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_pos, num_neg, expect_pos, expect_neg",
    [(300, 1000, 128, 128), (10, 1000, 10, 246), (0, 1000, 0, 256), (300, 20, 128, 20), (5, 7, 5, 7)],
)
def test_sample_balanced_caps(num_pos, num_neg, expect_pos, expect_neg):
    rng = np.random.default_rng(num_pos + num_neg)
    labels = np.concatenate([np.ones(num_pos), np.zeros(num_neg), -np.ones(50)]).astype(np.int32)
    rng.shuffle(labels)
    out = sample_balanced(tf.constant(labels), 256, 0.5).numpy()
    assert (out == 1).sum() == expect_pos
    assert (out == 0).sum() == expect_neg
    assert np.all(labels[out == 1] == 1) and np.all(labels[out == 0] == 0)  # only relabels to -1


def test_sample_balanced_seeded_reproducible_and_random():
    labels = tf.constant(np.r_[np.ones(100), np.zeros(400)].astype(np.int32))
    a = sample_balanced(labels, 64, 0.25, seed=7).numpy()
    b = sample_balanced(labels, 64, 0.25, seed=7).numpy()
    c = sample_balanced(labels, 64, 0.25, seed=8).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a == 1).sum() == 16 and (a == 0).sum() == 48
    # unseeded draws differ and are not simply the first entries
    d = sample_balanced(labels, 64, 0.25).numpy()
    e = sample_balanced(labels, 64, 0.25).numpy()
    assert not np.array_equal(d, e)
    assert not np.all(d[:16] == 1)


# --- RPN targets ----------------------------------------------------------------------------

# 32x32 image, stride 16, scales (16, 32), ratio 1: eight anchors, (i, j, k) order:
#   0 [0,0,16,16]    1 [-8,-8,24,24]   2 [16,0,32,16]   3 [8,-8,40,24]
#   4 [0,16,16,32]   5 [-8,8,24,40]    6 [16,16,32,32]  7 [8,8,40,40]
# The scale-32 anchors (odd indices) cross the image border.
SMALL_ANCHORS = dict(feature_height=2, feature_width=2, stride=16, scales=(16.0, 32.0), ratios=(1.0,))


def small_targets(gt, valid=None, **kwargs):
    anchors = anchor_grid(**SMALL_ANCHORS)
    gt = tf.constant(gt, tf.float32)
    valid = tf.ones([gt.shape[0]], tf.bool) if valid is None else tf.constant(valid, tf.bool)
    labels, deltas = rpn_targets(anchors, gt, valid, 32, 32, box_coder=BoxCoder(), **kwargs)
    return anchors.numpy(), labels.numpy(), deltas.numpy()


def test_rpn_targets_exact_match():
    anchors, labels, deltas = small_targets([[0, 0, 16, 16]])
    np.testing.assert_array_equal(labels, [1, -1, 0, -1, 0, -1, 0, -1])
    np.testing.assert_allclose(deltas, 0, atol=1e-6)


def test_rpn_targets_best_anchor_rule_and_deltas():
    # IoU with anchor 0 is 168 / 280 = 0.6 < 0.7, but it is the gt's best anchor.
    anchors, labels, deltas = small_targets([[2, 2, 14, 18]])
    np.testing.assert_array_equal(labels, [1, -1, 0, -1, 0, -1, 0, -1])
    np.testing.assert_allclose(deltas[0], [0.0, 0.125, np.log(12 / 16), 0.0], atol=1e-6)
    np.testing.assert_allclose(deltas[1:], 0)


def test_rpn_targets_ties_all_positive():
    # Straddles anchors 0 and 2 equally (IoU 1/3 each).
    _, labels, _ = small_targets([[8, 0, 24, 16]])
    np.testing.assert_array_equal(labels, [1, -1, 1, -1, 0, -1, 0, -1])


def test_rpn_targets_cross_boundary_ignored_before_matching():
    gt = [[0, 0, 24, 24]]
    # IoUs: a0 0.444, a1 0.5625 (outside), a2 = a4 0.182, a6 0.083, a3 = a5 0.316, a7 0.19
    _, labels, _ = small_targets(gt)
    np.testing.assert_array_equal(labels, [1, -1, 0, -1, 0, -1, 0, -1])
    _, labels, deltas = small_targets(gt, allowed_border=100.0)
    np.testing.assert_array_equal(labels, [-1, 1, 0, -1, 0, -1, 0, 0])
    np.testing.assert_allclose(deltas[1], [0.125, 0.125, np.log(24 / 32), np.log(24 / 32)], atol=1e-6)


def test_rpn_targets_invalid_gts_ignored():
    # An invalid (padding) gt identical to anchor 2 must not create a positive.
    _, labels, _ = small_targets([[0, 0, 16, 16], [16, 0, 32, 16]], valid=[True, False])
    np.testing.assert_array_equal(labels, [1, -1, 0, -1, 0, -1, 0, -1])


@pytest.mark.parametrize("num_gt", [0, 3])
def test_rpn_targets_zero_valid_gts(num_gt):
    _, labels, deltas = small_targets(np.full((num_gt, 4), 4.0) + [0, 0, 8, 8], valid=[False] * num_gt)
    np.testing.assert_array_equal(labels, [0, -1, 0, -1, 0, -1, 0, -1])
    np.testing.assert_array_equal(deltas, 0)


def test_rpn_targets_many_gts_sampling_caps():
    rng = np.random.default_rng(3)
    size, stride = 320, 16
    xy = rng.uniform(0, size - 60, (46, 2))
    wh = rng.uniform(12, 60, (46, 2))
    gt = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    gt_padded = np.zeros((100, 4), np.float32)
    gt_padded[:46] = gt
    valid = np.arange(100) < 46
    anchors = anchor_grid(size // stride, size // stride, stride, (16.0, 32.0, 64.0), (0.33, 0.5, 1.0, 2.0, 3.0))
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    labels, deltas = rpn_targets(anchors, gt_padded, valid, size, size, box_coder=coder, seed=5)
    labels, deltas = labels.numpy(), deltas.numpy()
    assert labels.shape == (anchors.shape[0],) and deltas.shape == (anchors.shape[0], 4)
    num_pos = (labels == 1).sum()
    assert 40 <= num_pos <= 128  # (almost) every gt has a positive: its best anchor
    assert (labels == 0).sum() == 256 - num_pos  # negatives fill the batch
    assert np.all(deltas[labels != 1] == 0)
    # Each positive's targets decode to a valid gt with IoU >= 0.7 or the gt's best inside anchor.
    a = anchors.numpy()
    iou = pairwise_iou_numpy(a, gt)
    inside = (a[:, 0] >= 0) & (a[:, 1] >= 0) & (a[:, 2] <= size) & (a[:, 3] <= size)
    best_per_gt = np.where(inside[:, None], iou, -1).max(0)
    decoded = coder.decode(deltas, a).numpy()
    matched = set()
    for idx in np.flatnonzero(labels == 1):
        assert inside[idx]
        j = np.argmin(np.abs(decoded[idx] - gt).sum(1))
        np.testing.assert_allclose(decoded[idx], gt[j], atol=1e-3)
        assert iou[idx, j] >= 0.7 or np.isclose(iou[idx, j], best_per_gt[j])
        matched.add(j)
    assert len(matched) >= 40
    for j in set(range(46)) - matched:  # its best anchor is shared with (positive for) another gt
        assert labels[np.argmax(np.where(inside, iou[:, j], -1))] == 1
    for idx in np.flatnonzero(labels == 0):
        assert inside[idx] and iou[idx].max() < 0.3


def test_rpn_targets_positive_cap():
    # Many anchors per gt (tiny stride): more than 128 positives before sampling.
    gt = np.array([[x, y, x + 40, y + 40] for x in (10, 80, 150) for y in (10, 80, 150)], np.float32)
    anchors = anchor_grid(50, 50, 4, (40.0, 44.0), (1.0, 1.1))
    labels, _ = rpn_targets(anchors, gt, np.ones(9, bool), 200, 200, box_coder=BoxCoder())
    labels = labels.numpy()
    assert (labels == 1).sum() == 128 and (labels == 0).sum() == 128


@pytest.mark.parametrize("num_valid", [0, 1, 17])
def test_rpn_targets_same_as_matching_every_anchor_with_every_box(num_valid):
    """rpn_targets matches only the anchors inside the image against the valid boxes: the labels and
    deltas must be those of match_boxes on the whole IoU matrix (padding boxes scattered among the
    valid ones, anchors crossing the border, ties of the low-quality rule)."""
    from keras_frcnn.model.boxes import pairwise_iou

    rng = np.random.default_rng(num_valid)
    size, stride = 160, 16
    anchors = anchor_grid(size // stride, size // stride, stride, (24.0, 48.0), (0.5, 1.0, 2.0))
    xy = rng.uniform(-10, size - 20, (30, 2))
    gt = np.concatenate([xy, xy + rng.uniform(8, 60, (30, 2))], 1).astype(np.float32)
    gt[5] = gt[4]  # a duplicate box: ties for the same best anchor
    valid = np.zeros(30, bool)
    valid[rng.choice(30, num_valid, replace=False)] = True
    coder = BoxCoder()
    count = int(anchors.shape[0])
    labels, deltas = rpn_targets(anchors, gt, valid, size, size, batch_size=count, positive_fraction=1.0,
                                 box_coder=coder, seed=1)  # a batch of every anchor: nothing sampled away
    inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= size) & (anchors[:, 3] <= size)
    matches = match_boxes(pairwise_iou(anchors, gt), valid, inside, positive_iou=0.7, negative_iou=0.3).numpy()
    expected = np.where(matches >= 0, 1, np.where(matches == NEGATIVE, 0, -1))
    np.testing.assert_array_equal(labels.numpy(), expected)
    assert (expected == 1).any() == (num_valid > 0) and (expected == -1).any()
    positive = matches >= 0
    np.testing.assert_array_equal(deltas.numpy()[positive],
                                  coder.encode(gt[matches[positive]], tf.boolean_mask(anchors, positive)).numpy())
