"""Per-image label assignment: each chromosome label used at most as often as a cell holds it.

A normal karyogram holds each of the paper's 49 labels once (``1-l`` and ``1-r`` are two
chromosomes), and a cell each of the 24 classes twice (``Y`` once). A detector that scores every
object on its own may call both homologues ``1-l``, or three chromosomes ``7`` and none ``6``;
given every object's class probabilities, the assignment that maximises their product with each
label used at most its *capacity* times (the Hungarian algorithm on ``-log p``, a label of
capacity k being k columns) resolves such cases. Modes (``Config.label_assignment``):

- ``optimal``: every label at most once;
- ``karyotype``: the capacities of :func:`karyotype_capacities` (24 classes: two, ``Y`` one;
  49 labels: one); then an object the assignment moved off a class it scores at least
  ``Config.extra_copy_score`` for (default 0.9) becomes that class's one extra copy: how a
  trisomy stays reportable.

The model then returns the class-agnostic objects of :func:`keras_frcnn.model.proposals.object_candidates`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from keras_frcnn.annotations.classes import chromosome_of


_FORBIDDEN = 1e9  # the cost of an assignment that must not happen

MODES = ("none", "optimal", "karyotype")
"""``Config.label_assignment`` values: per-class NMS (no assignment), each label once, cell capacities."""


def karyotype_capacities(class_names: Sequence[str]) -> np.ndarray:
    """How many times a cell holds each label: a 24-class chromosome (``7``, ``X``) twice, ``Y`` and
    every 49-scheme label (``7-l``) or other name once."""
    return np.asarray([2 if name != "Y" and chromosome_of(name) == name else 1 for name in class_names], np.int64)


def capacities(mode: str, class_names: Sequence[str]) -> np.ndarray:
    """The per-label capacities of an assignment ``mode`` (``optimal`` or ``karyotype``)."""
    if mode == "karyotype":
        return karyotype_capacities(class_names)
    if mode == "optimal":
        return np.ones(len(class_names), np.int64)
    raise ValueError(f"no label capacities for assignment mode {mode!r}")


def assign_labels(class_scores: np.ndarray, capacity: Sequence[int] | None = None,
                  extra_copy_score: float | None = None) -> np.ndarray:
    """Class ids [D] for D objects with class probabilities ``class_scores [D, C]``.

    Class ``c`` goes to at most ``capacity[c]`` objects (default 1 each), maximising the product of
    the assigned probabilities; when there are more objects than places, the objects left over
    keep their most likely class. With ``extra_copy_score``, an object that the assignment moved
    off its most likely class although it scores at least this for it becomes an extra copy of that
    class (at most one per class: the surest): a trisomy's third copy is reported as such when the
    model is that sure of it, instead of being forced onto a label the cell lacks.
    """
    class_scores = np.asarray(class_scores, np.float64)
    if class_scores.ndim != 2:
        raise ValueError(f"class_scores must be [objects, classes], got shape {class_scores.shape}")
    if class_scores.size == 0:
        return np.zeros(len(class_scores), np.int64)
    capacity = np.ones(class_scores.shape[1], np.int64) if capacity is None else np.asarray(capacity, np.int64)
    if capacity.shape != (class_scores.shape[1],) or (capacity < 0).any():
        raise ValueError(f"capacity must be {class_scores.shape[1]} non-negative counts, got {capacity}")
    column_class = np.repeat(np.arange(class_scores.shape[1]), capacity)  # one column per place
    likeliest = class_scores.argmax(axis=1).astype(np.int64)
    classes = likeliest.copy()
    rows, columns = linear_sum_assignment(-np.log(np.clip(class_scores, 1e-12, 1.0))[:, column_class])
    classes[rows] = column_class[columns]
    if extra_copy_score is not None:
        moved = np.zeros(len(classes), bool)
        moved[rows] = classes[rows] != likeliest[rows]
        sure = moved & (class_scores[np.arange(len(classes)), likeliest] >= extra_copy_score)
        for index in sorted(np.flatnonzero(sure), key=lambda i: -class_scores[i, likeliest[i]]):
            if np.sum(classes == likeliest[index]) <= capacity[likeliest[index]]:  # one extra copy at most
                classes[index] = likeliest[index]
    return classes


def assigned_detections(class_scores, class_boxes, capacity: Sequence[int] | None = None,
                        extra_copy_score: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``boxes [D, 4]``, ``scores [D]`` and ``classes [D]`` of the valid objects of one image after
    :func:`assign_labels`: each object takes the box and the probability of its assigned class."""
    class_scores = np.asarray(class_scores)
    classes = assign_labels(class_scores, capacity, extra_copy_score)
    rows = np.arange(len(classes))
    boxes = np.asarray(class_boxes)[rows, classes]
    return boxes.astype(np.float32), class_scores[rows, classes].astype(np.float32), classes
