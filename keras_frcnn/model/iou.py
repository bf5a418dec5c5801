"""Box IoU in NumPy."""

from __future__ import annotations

import numpy as np


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``[N, M]`` of ``a [N, 4]`` against ``b [M, 4]`` in float64, continuous coordinates; a
    zero union gives 0. The NumPy twin of ``keras_frcnn.model.boxes.pairwise_iou``, for code that
    must not import TensorFlow (evaluation, karyotypes, anchor statistics)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out
