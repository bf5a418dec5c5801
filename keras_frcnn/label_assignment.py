"""Per-image label assignment: each chromosome label used at most once in a karyogram.

A normal karyogram holds each of its labels once (``1-l`` and ``1-r`` are two chromosomes). A
detector that scores every object on its own may call both homologues ``1-l``; given every
object's class probabilities, the assignment that maximises their product with each label used
at most once (the Hungarian algorithm on ``-log p``) turns such a pair into two answers. Used by
inference when ``Config.label_assignment == "optimal"`` (the model then returns the class-agnostic
objects of :func:`keras_frcnn.proposals.object_candidates`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def assign_labels(class_scores: np.ndarray) -> np.ndarray:
    """Class ids [D] for D objects with class probabilities ``class_scores [D, C]``.

    Each class goes to at most one object, maximising the product of the assigned probabilities;
    when there are more objects than classes, the objects left over keep their most likely class.
    """
    class_scores = np.asarray(class_scores, np.float64)
    if class_scores.ndim != 2:
        raise ValueError(f"class_scores must be [objects, classes], got shape {class_scores.shape}")
    if class_scores.size == 0:
        return np.zeros(len(class_scores), np.int64)
    classes = class_scores.argmax(axis=1).astype(np.int64)
    rows, columns = linear_sum_assignment(-np.log(np.clip(class_scores, 1e-12, 1.0)))
    classes[rows] = columns
    return classes


def assigned_detections(class_scores, class_boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``boxes [D, 4]``, ``scores [D]`` and ``classes [D]`` of the valid objects of one image after
    :func:`assign_labels`: each object takes the box and the probability of its assigned class."""
    class_scores = np.asarray(class_scores)
    classes = assign_labels(class_scores)
    rows = np.arange(len(classes))
    boxes = np.asarray(class_boxes)[rows, classes]
    return boxes.astype(np.float32), class_scores[rows, classes].astype(np.float32), classes
