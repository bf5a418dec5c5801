"""Box geometry: IoU (TF and NumPy), clipping, BoxCoder."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.boxes import BoxCoder, box_area, clip_boxes, pairwise_iou
from keras_frcnn.model.iou import pairwise_iou as pairwise_iou_numpy


def random_boxes(rng: np.random.Generator, n: int, size: float = 100.0, min_wh: float = 1.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(min_wh, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def test_box_area():
    boxes = tf.constant([[0, 0, 10, 5], [3, 3, 3, 8], [5, 5, 2, 2]], tf.float32)
    np.testing.assert_allclose(box_area(boxes).numpy(), [50, 0, 0])


@pytest.mark.parametrize("iou_fn", [lambda a, b: pairwise_iou(a, b).numpy(), pairwise_iou_numpy])
def test_iou_hand_computed(iou_fn):
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array(
        [
            [0, 0, 10, 10],  # identical: 1
            [20, 20, 30, 30],  # disjoint: 0
            [5, 0, 15, 10],  # half overlap: 50 / 150 = 1/3
            [10, 0, 20, 10],  # touching edge: 0
            [2, 2, 4, 6],  # inside: 8 / 100
        ],
        np.float32,
    )
    np.testing.assert_allclose(iou_fn(a, b), [[1.0, 0.0, 1.0 / 3.0, 0.0, 0.08]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("iou_fn", [lambda a, b: pairwise_iou(a, b).numpy(), pairwise_iou_numpy])
def test_iou_zero_area_no_nan(iou_fn):
    a = np.array([[5, 5, 5, 5], [0, 0, 10, 0], [0, 0, 10, 10]], np.float32)
    b = np.array([[5, 5, 5, 5], [0, 0, 10, 10]], np.float32)
    out = iou_fn(a, b)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [[0, 0], [0, 0], [0, 1]])


def test_iou_empty_shapes():
    assert pairwise_iou(tf.zeros([3, 4]), tf.zeros([0, 4])).shape == (3, 0)
    assert pairwise_iou(tf.zeros([0, 4]), tf.zeros([2, 4])).shape == (0, 2)
    assert pairwise_iou_numpy(np.zeros((0, 4)), np.zeros((2, 4))).shape == (0, 2)


def test_iou_tf_matches_numpy_random():
    rng = np.random.default_rng(0)
    a = random_boxes(rng, 40)
    b = random_boxes(rng, 30)
    tf_iou = pairwise_iou(a, b).numpy()
    np_iou = pairwise_iou_numpy(a, b)
    assert (np_iou > 0).sum() > 20  # the case is not trivial
    np.testing.assert_allclose(tf_iou, np_iou, atol=1e-5)
    # brute-force loop, independent of the vectorised formula
    for i in range(0, 40, 7):
        for j in range(0, 30, 5):
            iw = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            ih = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            inter = iw * ih
            union = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
            assert np_iou[i, j] == pytest.approx(inter / union, abs=1e-6)


def test_clip_boxes():
    boxes = tf.constant([[-5, -3, 50, 20], [10, 10, 20, 20], [120, 90, 130, 99]], tf.float32)
    out = clip_boxes(boxes, tf.constant(40), tf.constant(100.0)).numpy()
    np.testing.assert_allclose(out, [[0, 0, 50, 20], [10, 10, 20, 20], [100, 40, 100, 40]])


def test_box_coder_hand_computed():
    coder = BoxCoder()
    anchor = np.array([[0, 0, 10, 20]], np.float32)  # centre (5, 10), w 10, h 20
    box = np.array([[2, 4, 22, 14]], np.float32)  # centre (12, 9), w 20, h 10
    expected = [0.7, -0.05, math.log(2.0), math.log(0.5)]
    np.testing.assert_allclose(coder.encode(box, anchor).numpy()[0], expected, rtol=1e-6)
    weighted = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(
        weighted.encode(box, anchor).numpy()[0], np.array(expected) * [10, 10, 5, 5], rtol=1e-6
    )
    np.testing.assert_allclose(weighted.decode(weighted.encode(box, anchor), anchor).numpy(), box, atol=1e-5)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coder_round_trip(weights):
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 200, size=600)
    anchors = random_boxes(rng, 200, size=600, min_wh=16.0)  # size ratios stay below the clamp
    coder = BoxCoder(weights=weights)
    deltas = coder.encode(boxes, anchors)
    np.testing.assert_allclose(coder.decode(deltas, anchors).numpy(), boxes, atol=2e-3, rtol=1e-5)
    # and the other way round
    d = rng.normal(0, 0.5, (200, 4)).astype(np.float32)
    np.testing.assert_allclose(coder.encode(coder.decode(d, anchors), anchors).numpy(), d, atol=1e-4)


def test_box_coder_decode_clamps_size():
    coder = BoxCoder()
    anchor = np.array([[0, 0, 16, 16]], np.float32)
    out = coder.decode(np.array([[0, 0, 100.0, 100.0]], np.float32), anchor).numpy()[0]
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[2] - out[0], 1000.0, rtol=1e-4)  # 16 * exp(log(1000 / 16))


def test_box_coder_degenerate_is_finite():
    coder = BoxCoder()
    out = coder.encode(np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32)).numpy()
    assert np.all(np.isfinite(out))


def test_box_features_are_fractions_of_each_image():
    from keras_frcnn.model.boxes import box_feature_names, box_features

    boxes = tf.constant([[[10.0, 20.0, 30.0, 60.0]], [[0.0, 0.0, 50.0, 25.0]]])
    shape = tf.constant([[100, 200], [50, 100]])  # height, width
    np.testing.assert_allclose(box_features(boxes, shape, "size_position").numpy(),
                               [[[0.1, 0.4, 0.1, 0.4]], [[0.5, 0.5, 0.25, 0.25]]], rtol=1e-6)
    np.testing.assert_allclose(box_features(boxes, shape, "size").numpy(), [[[0.1, 0.4]], [[0.5, 0.5]]], rtol=1e-6)
    assert box_feature_names("size_position") == ("width", "height", "centre_x", "centre_y")
