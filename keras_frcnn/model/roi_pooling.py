"""RoI max pooling and RoIAlign on a single feature map, via ``tf.image.crop_and_resize``.

Coordinates: feature cell ``j`` is centred at image ``x = (j + 0.5) * stride``, so image ``x`` is
feature coordinate ``x / stride - 0.5``. Each output bin takes an ``n x n`` grid of bilinear
samples (``n = sampling_ratio``, default 2) at ``f1 + (s + 0.5) * (f2 - f1) / (n * pool_size)``,
``s = 0 .. n * pool_size - 1`` (as RoIAlign with that sampling ratio and ``aligned=True``); max
pooling takes their maximum, RoIAlign their mean.
Samples up to one cell outside the map repeat the border cell; further out they read 0.
"""

from __future__ import annotations

import tensorflow as tf


def roi_pool(
    features: tf.Tensor,
    rois: tf.Tensor,
    *,
    stride: float,
    pool_size: int = 7,
    align: bool = False,
    sampling_ratio: int = 2,
) -> tf.Tensor:
    """Pool ``rois [B, R, 4]`` (image pixels) from ``features [B, Hf, Wf, C]``.

    Returns ``[B * R, pool_size, pool_size, C]``; row ``b * R + r`` is RoI ``r`` of image ``b``.
    ``align=False``: max over the ``sampling_ratio ** 2`` samples of a bin; ``align=True``:
    RoIAlign (their mean).
    """
    features = tf.convert_to_tensor(features)
    rois = tf.convert_to_tensor(rois, tf.float32)
    batch = tf.shape(rois)[0]
    num_rois = tf.shape(rois)[1]
    channels = features.shape[-1] if features.shape[-1] is not None else tf.shape(features)[-1]

    # Replicate the border once (so samples in [-1, 0] and [size - 1, size] clamp to it) ...
    padded = tf.pad(features, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    padded_h = tf.cast(tf.shape(padded)[1], tf.float32)
    padded_w = tf.cast(tf.shape(padded)[2], tf.float32)

    # ... and map image pixels to padded-feature coordinates (+1 for the pad).
    x1, y1, x2, y2 = tf.unstack(tf.reshape(rois, [-1, 4]), 4, axis=-1)
    stride = tf.cast(stride, tf.float32)
    fx1, fx2 = x1 / stride + 0.5, x2 / stride + 0.5  # x / stride - 0.5 + 1
    fy1, fy2 = y1 / stride + 0.5, y2 / stride + 0.5
    samples = sampling_ratio * pool_size
    # crop_and_resize samples the box ends inclusively: move them to the first/last sample centre.
    half_x = 0.5 * (fx2 - fx1) / samples
    half_y = 0.5 * (fy2 - fy1) / samples
    norm_w = tf.maximum(padded_w - 1.0, 1.0)  # normalised v means v * (size - 1)
    norm_h = tf.maximum(padded_h - 1.0, 1.0)
    crop_boxes = tf.stack(
        [(fy1 + half_y) / norm_h, (fx1 + half_x) / norm_w, (fy2 - half_y) / norm_h, (fx2 - half_x) / norm_w],
        axis=-1,
    )
    box_indices = tf.repeat(tf.range(batch), num_rois)
    crops = tf.image.crop_and_resize(
        padded, tf.stop_gradient(crop_boxes), box_indices, [samples, samples], method="bilinear"
    )  # [B * R, nP, nP, C], float32
    if sampling_ratio == 1:
        return tf.cast(crops, features.dtype)
    crops = tf.reshape(crops, [-1, pool_size, sampling_ratio, pool_size, sampling_ratio, channels])
    pooled = tf.reduce_mean(crops, axis=[2, 4]) if align else tf.reduce_max(crops, axis=[2, 4])
    return tf.cast(pooled, features.dtype)
