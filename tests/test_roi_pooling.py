"""RoI max pooling / RoIAlign against a NumPy reference of the documented sampling."""

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.roi_pooling import roi_pool


def bilinear_numpy(fmap: np.ndarray, y: float, x: float) -> np.ndarray:
    """RoIAlign-style bilinear read: 0 beyond one cell outside, border clamped within it."""
    h, w = fmap.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(fmap.shape[2])
    y = min(max(y, 0.0), h - 1.0)
    x = min(max(x, 0.0), w - 1.0)
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return (
        fmap[y0, x0] * (1 - ly) * (1 - lx)
        + fmap[y0, x1] * (1 - ly) * lx
        + fmap[y1, x0] * ly * (1 - lx)
        + fmap[y1, x1] * ly * lx
    )


def roi_pool_numpy(features, rois, stride, pool_size, align, n=2):
    b_count, r_count = rois.shape[:2]
    out = np.zeros((b_count * r_count, pool_size, pool_size, features.shape[-1]))
    for b in range(b_count):
        for r in range(r_count):
            x1, y1, x2, y2 = rois[b, r] / stride - 0.5
            bin_w, bin_h = (x2 - x1) / pool_size, (y2 - y1) / pool_size
            for py in range(pool_size):
                for px in range(pool_size):
                    vals = [
                        bilinear_numpy(
                            features[b], y1 + (py + (sy + 0.5) / n) * bin_h, x1 + (px + (sx + 0.5) / n) * bin_w
                        )
                        for sy in range(n)
                        for sx in range(n)
                    ]
                    out[b * r_count + r, py, px] = np.mean(vals, 0) if align else np.max(vals, 0)
    return out


@pytest.mark.parametrize("align, n", [(False, 2), (True, 2), (False, 1), (True, 3)])
def test_roi_pool_matches_numpy_reference(align, n):
    rng = np.random.default_rng(int(align))
    stride, hf, wf = 16, 5, 7
    features = rng.normal(size=(2, hf, wf, 3)).astype(np.float32)
    xy = rng.uniform(-20, 100, (2, 6, 2))
    wh = rng.uniform(4, 70, (2, 6, 2))
    rois = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    rois[0, 0] = [0, 0, 7 * 16, 5 * 16]  # the whole image
    rois[1, 1] = [100, 60, 112, 80]  # bottom-right corner, partly in the last half cell
    out = roi_pool(tf.constant(features), tf.constant(rois), stride=stride, pool_size=3, align=align,
                   sampling_ratio=n).numpy()
    assert out.shape == (12, 3, 3, 3)
    np.testing.assert_allclose(out, roi_pool_numpy(features, rois, stride, 3, align, n), atol=1e-4)


def test_cell_aligned_roi_max_and_mean_of_2x2_cells():
    # An RoI spanning 2 * pool_size cells from a cell boundary puts the 4 samples of each bin
    # exactly on the centres of a 2x2 block of cells.
    rng = np.random.default_rng(5)
    stride, pool = 8, 2
    features = rng.normal(size=(1, 6, 8, 2)).astype(np.float32)
    row, col = 1, 3
    roi = [[[col * stride, row * stride, (col + 2 * pool) * stride, (row + 2 * pool) * stride]]]
    max_out = roi_pool(features, tf.constant(roi, tf.float32), stride=stride, pool_size=pool).numpy()[0]
    mean_out = roi_pool(features, tf.constant(roi, tf.float32), stride=stride, pool_size=pool, align=True).numpy()[0]
    for py in range(pool):
        for px in range(pool):
            block = features[0, row + 2 * py : row + 2 * py + 2, col + 2 * px : col + 2 * px + 2]
            np.testing.assert_allclose(max_out[py, px], block.max((0, 1)), atol=1e-5)
            np.testing.assert_allclose(mean_out[py, px], block.mean((0, 1)), atol=1e-5)


def test_constant_per_cell_one_cell_bins():
    # Bins of one cell on a map that is linear in (i, j): RoIAlign returns the cell values,
    # max pooling the value a quarter cell further down-right.
    stride, pool = 16, 3
    i, j = np.meshgrid(np.arange(6), np.arange(9), indexing="ij")
    features = (10.0 * i + j).astype(np.float32)[None, :, :, None]
    roi = tf.constant([[[2 * stride, 1 * stride, 5 * stride, 4 * stride]]], tf.float32)  # cells rows 1-3, cols 2-4
    mean_out = roi_pool(features, roi, stride=stride, pool_size=pool, align=True).numpy()[0, :, :, 0]
    max_out = roi_pool(features, roi, stride=stride, pool_size=pool).numpy()[0, :, :, 0]
    np.testing.assert_allclose(mean_out, features[0, 1:4, 2:5, 0], atol=1e-4)
    np.testing.assert_allclose(max_out, features[0, 1:4, 2:5, 0] + 10 * 0.25 + 0.25, atol=1e-4)


def test_single_cell_feature_map():
    features = np.array([[[[3.0, -2.0]]]], np.float32)  # Hf = Wf = 1
    rois = tf.constant([[[0, 0, 16, 16], [2, 3, 9, 12]]], tf.float32)
    for align in (False, True):
        out = roi_pool(features, rois, stride=16, pool_size=2, align=align).numpy()
        np.testing.assert_allclose(out, np.broadcast_to([3.0, -2.0], (2, 2, 2, 2)), atol=1e-6)


def test_row_order_and_gradient():
    rng = np.random.default_rng(7)
    features = tf.Variable(rng.normal(size=(3, 4, 4, 2)).astype(np.float32))
    rois = tf.constant(rng.uniform(0, 30, (3, 2, 2)), tf.float32)
    rois = tf.concat([rois, rois + 20.0], -1)
    with tf.GradientTape() as tape:
        out = roi_pool(features, rois, stride=8, pool_size=2, align=True)
        loss = tf.reduce_sum(out**2)
    grad = tape.gradient(loss, features)
    assert grad is not None and np.abs(grad.numpy()).sum() > 0
    assert np.all(np.abs(grad.numpy()).sum((1, 2, 3)) > 0)  # every image receives gradient
    for b in range(3):
        for r in range(2):
            single = roi_pool(features[b : b + 1], rois[b : b + 1, r : r + 1], stride=8, pool_size=2, align=True)
            np.testing.assert_allclose(out[b * 2 + r].numpy(), single[0].numpy(), atol=1e-6)
    with tf.GradientTape() as tape:
        out = roi_pool(features, rois, stride=8, pool_size=2, align=False)
    grad = tape.gradient(out, features)
    assert np.abs(grad.numpy()).sum() > 0


# --- the whole target/proposal/pooling chain as one traced graph ------------------------------

PY_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"}


def all_op_types(concrete) -> set[str]:
    """Op types of a concrete function, including nested functions (map_fn bodies, ...)."""
    types = {op.type for op in concrete.graph.get_operations()}
    for function in concrete.graph.as_graph_def().library.function:
        types |= {node.op for node in function.node_def}
    return types


def chain(features, logits, deltas, gt_boxes, gt_labels, gt_valid, image_hw, pool=True):
    """rpn_targets + generate_proposals + sample_rois per image (tf.map_fn), then roi_pool."""
    from keras_frcnn.model.anchors import anchor_grid, rpn_targets
    from keras_frcnn.model.boxes import BoxCoder
    from keras_frcnn.model.proposals import generate_proposals
    from keras_frcnn.model.roi_sampling import sample_rois

    coder, head_coder = BoxCoder(), BoxCoder((10.0, 10.0, 5.0, 5.0))
    shape = tf.shape(features)
    anchors = anchor_grid(shape[1], shape[2], 16, (16.0, 32.0), (0.5, 1.0, 2.0))

    def one_image(args):
        img_logits, img_deltas, boxes, labels, valid = args
        rpn_labels, rpn_deltas = rpn_targets(
            anchors, boxes, valid, image_hw[0], image_hw[1], batch_size=64, box_coder=coder
        )
        props, _, props_valid = generate_proposals(
            img_logits, img_deltas, anchors, image_hw[0], image_hw[1], pre_nms_top_n=200, post_nms_top_n=50,
            box_coder=coder,
        )
        return (rpn_labels, rpn_deltas) + tuple(
            sample_rois(props, props_valid, boxes, labels, valid, num_rois=16, box_coder=head_coder)
        )

    signature = (
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([16, 4], tf.float32),
        tf.TensorSpec([16], tf.int32), tf.TensorSpec([16, 4], tf.float32), tf.TensorSpec([16], tf.float32),
    )
    outputs = tf.map_fn(one_image, (logits, deltas, gt_boxes, gt_labels, gt_valid), fn_output_signature=signature)
    if not pool:
        return outputs
    return outputs + (roi_pool(features, outputs[2], stride=16, pool_size=3),)


def chain_inputs(batch=2, hf=4, wf=6, num_gt=8):
    rng = np.random.default_rng(9)
    a = hf * wf * 6
    xy = rng.uniform(0, 50, (batch, num_gt, 2))
    gt = np.concatenate([xy, xy + rng.uniform(10, 40, (batch, num_gt, 2))], -1).astype(np.float32)
    valid = np.zeros((batch, num_gt), bool)
    valid[0, :5] = True  # image 1 has no objects
    return (
        tf.constant(rng.normal(size=(batch, hf, wf, 8)).astype(np.float32)),
        tf.constant(rng.normal(size=(batch, a)).astype(np.float32)),
        tf.constant(rng.normal(0, 0.2, (batch, a, 4)).astype(np.float32)),
        tf.constant(gt), tf.constant(rng.integers(0, 3, (batch, num_gt)).astype(np.int32)), tf.constant(valid),
        tf.constant([64.0, 96.0]),
    )


def test_traced_chain_has_no_python_ops():
    concrete = tf.function(chain).get_concrete_function(
        tf.TensorSpec([None, None, None, 8]), tf.TensorSpec([None, None]), tf.TensorSpec([None, None, 4]),
        tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.bool),
        tf.TensorSpec([2]),
    )
    types = all_op_types(concrete)
    assert {"NonMaxSuppressionV4", "CropAndResize", "TopKV2"} <= types  # the inspection sees nested ops
    assert not types & PY_OPS
    outputs = concrete(*chain_inputs())
    assert outputs[-1].shape == (2 * 16, 3, 3, 8)
    np.testing.assert_array_equal(outputs[3].numpy()[1], 0)  # image without objects: all background

    # the check itself catches a numpy_function hidden in a map_fn body
    def with_py(x):
        return tf.map_fn(lambda v: tf.numpy_function(np.sin, [v], tf.float32), x)

    assert all_op_types(tf.function(with_py).get_concrete_function(tf.TensorSpec([None]))) & PY_OPS


def test_chain_without_pooling_compiles_with_xla():
    # CropAndResize has no XLA kernel; everything before it compiles.
    compiled = tf.function(lambda *args: chain(*args, pool=False), jit_compile=True)
    labels = compiled(*chain_inputs())[0].numpy()
    assert labels.shape == (2, 4 * 6 * 6) and (labels == 1).sum() > 0
