"""Proposal generation and per-class NMS against brute-force NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.boxes import BoxCoder
from keras_frcnn.model.iou import pairwise_iou as pairwise_iou_numpy
from keras_frcnn.model.proposals import batched_nms_per_class, generate_proposals, nms_padded


def greedy_nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Textbook greedy NMS: highest score first, drop boxes with IoU > threshold to a kept one."""
    iou = pairwise_iou_numpy(boxes, boxes)
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(int(i))
    return keep


def decode_numpy(deltas: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    wa = anchors[:, 2] - anchors[:, 0]
    ha = anchors[:, 3] - anchors[:, 1]
    cxa = anchors[:, 0] + wa / 2
    cya = anchors[:, 1] + ha / 2
    cx = deltas[:, 0] * wa + cxa
    cy = deltas[:, 1] * ha + cya
    w = np.exp(deltas[:, 2]) * wa
    h = np.exp(deltas[:, 3]) * ha
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def random_boxes(rng, n, size=200.0, min_wh=2.0, max_wh=60.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(min_wh, max_wh, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_nms_padded_matches_greedy():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 300)
    scores = rng.uniform(size=300).astype(np.float32)
    for thr in (0.3, 0.5, 0.7):
        idx, valid = nms_padded(boxes, scores, 400, thr)
        idx, valid = idx.numpy(), valid.numpy()
        expected = greedy_nms_numpy(boxes, scores, thr)
        assert valid.sum() == len(expected) and np.all(valid[: len(expected)]) and not valid[len(expected) :].any()
        np.testing.assert_array_equal(idx[: len(expected)], expected)
        assert np.all(idx[len(expected) :] == 0)


def reference_proposals(logits, deltas, anchors, h, w, pre, post, nms_iou, min_size):
    boxes = decode_numpy(deltas.astype(np.float64), anchors.astype(np.float64))
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
    ok = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    order = np.argsort(-logits, kind="stable")
    order = [i for i in order if ok[i]][:pre]  # small boxes are dropped before the top-k
    keep = greedy_nms_numpy(boxes[order], logits[order], nms_iou)[:post]
    return boxes[order][keep], logits[order][keep]


@pytest.mark.parametrize("pre, post", [(500, 100), (2000, 300), (50, 80)])
def test_generate_proposals_matches_reference(pre, post):
    rng = np.random.default_rng(pre)
    n, h, w = 1500, 180, 240
    anchors = random_boxes(rng, n, size=240, min_wh=8, max_wh=64) - [20, 20, 20, 20]  # some cross the border
    deltas = rng.normal(0, 0.3, (n, 4)).astype(np.float32)
    logits = rng.normal(0, 2, n).astype(np.float32)
    boxes, scores, valid = generate_proposals(
        logits, deltas, anchors, h, w, pre_nms_top_n=pre, post_nms_top_n=post, nms_iou=0.7, min_size=6.0,
        box_coder=BoxCoder(),
    )
    boxes, scores, valid = boxes.numpy(), scores.numpy(), valid.numpy()
    assert boxes.shape == (post, 4) and scores.shape == (post,) and valid.shape == (post,)
    ref_boxes, ref_logits = reference_proposals(logits, deltas, anchors, h, w, pre, post, 0.7, 6.0)
    m = len(ref_boxes)
    assert valid.sum() == m and np.all(valid[:m])
    np.testing.assert_allclose(boxes[:m], ref_boxes, atol=1e-3)
    np.testing.assert_allclose(scores[:m], 1 / (1 + np.exp(-ref_logits)), rtol=1e-5)
    assert np.all(boxes[m:] == 0) and np.all(scores[m:] == 0)
    # clipped to the image, none smaller than min_size, sorted by score
    assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= w
    assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= h
    assert np.all(boxes[:m, 2] - boxes[:m, 0] >= 6.0 - 1e-4) and np.all(boxes[:m, 3] - boxes[:m, 1] >= 6.0 - 1e-4)
    assert np.all(np.diff(scores[:m]) <= 0)


def test_generate_proposals_small_boxes_and_padding():
    anchors = np.array([[10, 10, 30, 30], [50, 50, 53, 80], [100, 0, 140, 60], [12, 10, 32, 30]], np.float32)
    logits = np.array([1.0, 9.0, 0.5, 2.0], np.float32)  # anchor 1 is tall but 3 px wide
    deltas = np.zeros((4, 4), np.float32)
    boxes, scores, valid = generate_proposals(
        logits, deltas, anchors, 50, 120, pre_nms_top_n=100, post_nms_top_n=6, nms_iou=0.7, min_size=4.0,
        box_coder=BoxCoder(),
    )
    # anchor 1 dropped (too narrow); anchor 0 suppressed by anchor 3 (IoU 360/440 > 0.7);
    # anchor 2 clipped to x2 = 120, y2 = 50.
    np.testing.assert_array_equal(valid.numpy(), [True, True, False, False, False, False])
    np.testing.assert_allclose(boxes.numpy()[:2], [[12, 10, 32, 30], [100, 0, 120, 50]])
    np.testing.assert_allclose(scores.numpy()[:2], 1 / (1 + np.exp(-np.array([2.0, 0.5]))), rtol=1e-6)
    np.testing.assert_array_equal(boxes.numpy()[2:], 0)


def test_generate_proposals_all_too_small():
    anchors = np.array([[0, 0, 2, 2], [5, 5, 6, 9]], np.float32)
    boxes, scores, valid = generate_proposals(
        np.zeros(2, np.float32), np.zeros((2, 4), np.float32), anchors, 20, 20,
        pre_nms_top_n=10, post_nms_top_n=3, min_size=4.0, box_coder=BoxCoder(),
    )
    assert not valid.numpy().any() and np.all(boxes.numpy() == 0) and np.all(scores.numpy() == 0)


def test_generate_proposals_stops_gradient():
    anchors = tf.constant([[10, 10, 30, 30], [40, 40, 70, 60]], tf.float32)
    deltas = tf.Variable(tf.zeros([2, 4]))
    logits = tf.Variable([1.0, 2.0])
    with tf.GradientTape() as tape:
        boxes, scores, _ = generate_proposals(
            logits, deltas, anchors, 100, 100, pre_nms_top_n=10, post_nms_top_n=2, box_coder=BoxCoder()
        )
        total = tf.reduce_sum(boxes) + tf.reduce_sum(scores)
    assert all(g is None for g in tape.gradient(total, [deltas, logits]))


def per_class_reference(boxes, scores, iou, thr, max_det):
    dets = []
    for c in range(scores.shape[1]):
        b = boxes[:, c] if boxes.ndim == 3 else boxes
        cand = np.flatnonzero(scores[:, c] > thr)
        for k in greedy_nms_numpy(b[cand], scores[cand, c], iou):
            dets.append((scores[cand[k], c], c, b[cand[k]]))
    dets.sort(key=lambda d: -d[0])
    return dets[:max_det]


@pytest.mark.parametrize("class_specific, max_det", [(True, 40), (False, 40), (True, 500)])
def test_batched_nms_per_class_matches_reference(class_specific, max_det):
    rng = np.random.default_rng(int(class_specific) + max_det)
    n, c = 120, 3
    if class_specific:
        boxes = random_boxes(rng, n * c).reshape(n, c, 4)
    else:
        boxes = random_boxes(rng, n)
    scores = rng.uniform(size=(n, c)).astype(np.float32)
    out_boxes, out_scores, out_classes, valid = (
        t.numpy()
        for t in batched_nms_per_class(boxes, scores, iou_threshold=0.3, score_threshold=0.2, max_detections=max_det)
    )
    ref = per_class_reference(boxes, scores, 0.3, 0.2, max_det)
    m = len(ref)
    assert out_boxes.shape == (max_det, 4) and out_classes.dtype == np.int32
    assert valid.sum() == m and np.all(valid[:m])
    np.testing.assert_allclose(out_scores[:m], [d[0] for d in ref])
    np.testing.assert_array_equal(out_classes[:m], [d[1] for d in ref])
    np.testing.assert_allclose(out_boxes[:m], np.array([d[2] for d in ref]).reshape(-1, 4))
    assert np.all(out_scores[m:] == 0) and np.all(out_boxes[m:] == 0) and np.all(out_classes[m:] == 0)


def test_batched_nms_per_class_no_clipping_and_threshold():
    # Pixel coordinates far outside [0, 1] must come back unchanged; same box in two classes kept twice.
    boxes = np.array([[100, 200, 300, 400], [110, 200, 310, 400], [500, 500, 600, 700]], np.float32)
    scores = np.array([[0.9, 0.6], [0.8, 0.1], [0.05, 0.3]], np.float32)
    out_boxes, out_scores, out_classes, valid = (
        t.numpy()
        for t in batched_nms_per_class(boxes, scores, iou_threshold=0.5, score_threshold=0.1, max_detections=5)
    )
    np.testing.assert_array_equal(valid, [True, True, True, False, False])
    np.testing.assert_allclose(out_scores[:3], [0.9, 0.6, 0.3])
    np.testing.assert_array_equal(out_classes[:3], [0, 1, 1])
    np.testing.assert_allclose(out_boxes[:3], boxes[[0, 0, 2]])
