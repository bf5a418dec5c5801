"""RoI sampling for the Fast R-CNN head."""

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.boxes import BoxCoder
from keras_frcnn.model.iou import pairwise_iou as pairwise_iou_numpy
from keras_frcnn.model.roi_sampling import sample_rois

CODER = BoxCoder((10.0, 10.0, 5.0, 5.0))


def jitter(rng, boxes, n, scale):
    idx = rng.integers(0, len(boxes), n)
    return (boxes[idx] + rng.normal(0, scale, (n, 4))).astype(np.float32)


def padded_gts(boxes, labels, size=10):
    out = np.zeros((size, 4), np.float32)
    out[: len(boxes)] = boxes
    lab = np.full(size, -1, np.int32)
    lab[: len(labels)] = labels
    return out, lab, np.arange(size) < len(boxes)


def run(proposals, valid, gt, labels, gt_valid, **kwargs):
    kwargs.setdefault("num_rois", 64)
    kwargs.setdefault("box_coder", CODER)
    return [t.numpy() for t in sample_rois(proposals, valid, gt, labels, gt_valid, **kwargs)]


def check_against_reference(rois, roi_labels, roi_deltas, weights, gt, labels, gt_valid, pos_iou=0.5, low=0.0):
    """Every sampled RoI's label and targets agree with a direct NumPy IoU computation."""
    vgt, vlab = gt[gt_valid], labels[gt_valid]
    for r, lab, d, w in zip(rois, roi_labels, roi_deltas, weights):
        if w == 0:
            assert lab == 0 and np.all(r == 0) and np.all(d == 0)
            continue
        iou = pairwise_iou_numpy(r[None], vgt)[0] if len(vgt) else np.zeros(0)
        best = iou.max() if len(iou) else 0.0
        if lab > 0:
            assert best >= pos_iou
            j = int(np.argmax(iou))
            assert lab == vlab[j] + 1
            np.testing.assert_allclose(CODER.decode(d[None], r[None]).numpy()[0], vgt[j], atol=1e-3)
        else:
            assert low <= best < pos_iou and np.all(d == 0)


def test_gt_appended_and_sampled_as_foreground():
    gt, labels, gt_valid = padded_gts(np.array([[40, 40, 60, 90]]), [2])
    proposals = np.array([[0, 0, 10, 10], [100, 100, 130, 120], [0, 0, 0, 0]], np.float32)
    rois, roi_labels, roi_deltas, weights = run(proposals, [True, True, False], gt, labels, gt_valid)
    np.testing.assert_allclose(rois[0], [40, 40, 60, 90])  # foreground rows come first
    assert roi_labels[0] == 3
    np.testing.assert_allclose(roi_deltas[0], 0, atol=1e-6)
    np.testing.assert_array_equal(roi_labels[1:], 0)
    np.testing.assert_array_equal(weights, [1, 1, 1] + [0] * 61)  # the invalid proposal is never used
    np.testing.assert_array_equal(rois[3:], 0)
    check_against_reference(rois, roi_labels, roi_deltas, weights, gt, labels, gt_valid)


def test_fractions_and_targets_with_many_gts():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (46, 2))
    gt_boxes = np.concatenate([xy, xy + rng.uniform(15, 80, (46, 2))], 1)
    gt, labels, gt_valid = padded_gts(gt_boxes, rng.integers(0, 24, 46), size=100)
    proposals = np.concatenate([jitter(rng, gt_boxes, 150, 3.0), jitter(rng, gt_boxes, 150, 25.0)])
    valid = np.ones(300, bool)
    valid[-20:] = False
    rois, roi_labels, roi_deltas, weights = run(proposals, valid, gt, labels, gt_valid, seed=3)
    assert rois.shape == (64, 4) and roi_deltas.shape == (64, 4)
    assert roi_labels.dtype == np.int32 and weights.dtype == np.float32
    assert (roi_labels > 0).sum() == 16  # 64 * 0.25
    assert (roi_labels[16:] == 0).all() and np.all(weights == 1)
    check_against_reference(rois, roi_labels, roi_deltas, weights, gt, labels, gt_valid)
    # invalid proposals are never sampled
    for r in rois:
        assert not any(np.allclose(r, p) for p in proposals[-20:])


def test_few_foreground_filled_with_background():
    gt, labels, gt_valid = padded_gts(np.array([[40, 40, 60, 90]]), [0])
    rng = np.random.default_rng(1)
    proposals = np.concatenate([jitter(rng, gt[:1], 3, 1.0), rng.uniform(100, 200, (200, 2)).repeat(2, 1)])
    proposals[3:, 2:] += 30
    rois, roi_labels, roi_deltas, weights = run(proposals, np.ones(203, bool), gt, labels, gt_valid)
    assert (roi_labels == 1).sum() == 4  # 3 jittered proposals + the gt itself
    assert (roi_labels == 0).sum() == 60 and np.all(weights == 1)
    check_against_reference(rois, roi_labels, roi_deltas, weights, gt, labels, gt_valid)


def test_negative_iou_low_excludes_far_proposals():
    gt, labels, gt_valid = padded_gts(np.array([[0, 0, 40, 40]]), [1])
    proposals = np.array([[20, 0, 60, 40], [30, 0, 70, 40], [100, 100, 140, 140], [0, 0, 40, 30]], np.float32)
    # IoUs: 1/3, 1/7, 0, 0.75
    rois, roi_labels, roi_deltas, weights = run(
        proposals, np.ones(4, bool), gt, labels, gt_valid, num_rois=8, negative_iou_low=0.1
    )
    np.testing.assert_array_equal(roi_labels, [2, 2, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(weights, [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(rois[:4], [[0, 0, 40, 30], [0, 0, 40, 40], [20, 0, 60, 40], [30, 0, 70, 40]])
    check_against_reference(rois, roi_labels, roi_deltas, weights, gt, labels, gt_valid, low=0.1)


@pytest.mark.parametrize("num_gt", [0, 5])
def test_zero_valid_gts_all_background(num_gt):
    gt = np.tile([[10, 10, 50, 50]], (num_gt, 1)).astype(np.float32)
    rng = np.random.default_rng(2)
    proposals = jitter(rng, gt if num_gt else np.array([[10, 10, 50, 50]]), 30, 2.0)
    rois, roi_labels, roi_deltas, weights = run(
        proposals, np.ones(30, bool), gt, np.zeros(num_gt, np.int32), np.zeros(num_gt, bool), num_rois=16
    )
    np.testing.assert_array_equal(roi_labels, 0)
    np.testing.assert_array_equal(roi_deltas, 0)
    np.testing.assert_array_equal(weights, 1)  # 30 background candidates fill all 16 slots


def test_fewer_candidates_than_num_rois_static_shape_in_tf_function():
    @tf.function
    def f(p, pv, g, gl, gv):
        return sample_rois(p, pv, g, gl, gv, num_rois=32, box_coder=CODER)

    gt, labels, gt_valid = padded_gts(np.array([[5, 5, 25, 45]]), [4], size=3)
    out = f(np.array([[5, 5, 25, 40]], np.float32), np.array([True]), gt, labels, gt_valid)
    concrete = f.get_concrete_function(
        tf.TensorSpec([None, 4]), tf.TensorSpec([None], tf.bool), tf.TensorSpec([None, 4]),
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.bool),
    )
    assert [o.shape.as_list() for o in concrete.outputs] == [[32, 4], [32], [32, 4], [32]]
    rois, roi_labels, _, weights = (t.numpy() for t in out)
    np.testing.assert_array_equal(roi_labels[:2], [5, 5])
    np.testing.assert_array_equal(weights, [1, 1] + [0] * 30)


def test_seed_reproducible():
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 300, (10, 2))
    gt_boxes = np.concatenate([xy, xy + 40], 1)
    gt, labels, gt_valid = padded_gts(gt_boxes, np.arange(10))
    proposals = np.concatenate([jitter(rng, gt_boxes, 200, 4.0), jitter(rng, gt_boxes, 200, 30.0)])
    valid = np.ones(400, bool)
    a = run(proposals, valid, gt, labels, gt_valid, seed=11)
    b = run(proposals, valid, gt, labels, gt_valid, seed=11)
    c = run(proposals, valid, gt, labels, gt_valid, seed=12)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
