"""Pairing detections with ground truth: images by path, boxes by greedy highest-IoU-unmatched.

The box rule (used by the VOC metrics and the confusion summary): detections of an image are taken
in descending score order (ties keep their input order); each one is matched to the
highest-IoU ground-truth box that is (a) at IoU >= the threshold, (b) of the same class (unless
class-agnostic) and (c) not matched yet. Difficult boxes are never "used up": a detection whose
best candidate is a difficult box is ignored (neither TP nor FP). This differs from the Pascal VOC
devkit, which takes the highest-IoU box even when it is already matched and then scores a false
positive; pycocotools uses the same "best unmatched" rule as here.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.errors import UserError
from keras_frcnn.model.iou import pairwise_iou

NO_MATCH = -1


@dataclass(frozen=True, eq=False)
class EvalImage:
    """One image ready for matching: class ids are 0-based indices into the class names.

    ``in_ground_truth`` is False for an image that only appears in the detections.
    """

    path: str
    gt_boxes: np.ndarray  # float32 [N, 4]
    gt_classes: np.ndarray  # int64 [N]
    gt_difficult: np.ndarray  # bool [N]
    det_boxes: np.ndarray  # float32 [K, 4]
    det_classes: np.ndarray  # int64 [K]
    det_scores: np.ndarray  # float32 [K]
    in_ground_truth: bool = True


def class_name_tuple(class_names: Sequence[str] | ClassMap) -> tuple[str, ...]:
    """Class names as a tuple (a :class:`ClassMap` or any sequence); empty or repeated names fail."""
    names = tuple(class_names.names) if isinstance(class_names, ClassMap) else tuple(str(n) for n in class_names)
    if not names:
        raise UserError("no class names to evaluate")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"class names listed twice: {', '.join(repeated)}")
    return names


def check_threshold(name: str, value: float) -> float:
    """A threshold in [0, 1] or a :class:`UserError`."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} must be between 0 and 1, got {value}")
    return value


def _class_ids(labels: Sequence[str], lookup: dict[str, int], what: str, path: str) -> np.ndarray:
    try:
        return np.fromiter((lookup[label] for label in labels), dtype=np.int64, count=len(labels))
    except KeyError as err:
        raise UserError(f"{path}: {what} label {err.args[0]!r} is not one of the evaluated classes") from None


def prepare_images(
    ground_truth: Sequence[ImageRecord], detections: Sequence[Detections], class_names: Sequence[str]
) -> list[EvalImage]:
    """Pair ground truth and detections by path (``os.path.normpath`` of each).

    Ground-truth images come first, in their order; images that only have detections follow and
    raise a warning (their detections will count as false positives). A path listed twice, or a
    label outside ``class_names``, is a :class:`UserError`.
    """
    lookup = {name: i for i, name in enumerate(class_names)}
    by_path: dict[str, Detections] = {}
    for det in detections:
        key = os.path.normpath(det.path)
        if key in by_path:
            raise UserError(f"{det.path}: image listed twice in the detections")
        by_path[key] = det
    images: list[EvalImage] = []
    seen: set[str] = set()
    for record in ground_truth:
        key = os.path.normpath(record.path)
        if key in seen:
            raise UserError(f"{record.path}: image listed twice in the ground truth")
        seen.add(key)
        det = by_path.get(key) or Detections.empty(record.path)
        images.append(
            EvalImage(
                path=record.path,
                gt_boxes=record.boxes,
                gt_classes=_class_ids(record.labels, lookup, "ground-truth", record.path),
                gt_difficult=record.difficult,
                det_boxes=det.boxes,
                det_classes=_class_ids(det.labels, lookup, "detection", det.path),
                det_scores=det.scores,
            )
        )
    unknown = [det for key, det in by_path.items() if key not in seen]
    if unknown:
        count = sum(len(det) for det in unknown)
        warnings.warn(
            f"{len(unknown)} image(s) with detections are not in the ground truth (e.g. {unknown[0].path}); "
            f"their {count} detection(s) count as false positives",
            stacklevel=3,
        )
    no_boxes = np.zeros((0, 4), np.float32)
    for det in unknown:
        images.append(
            EvalImage(
                path=det.path,
                gt_boxes=no_boxes,
                gt_classes=np.zeros(0, np.int64),
                gt_difficult=np.zeros(0, bool),
                det_boxes=det.boxes,
                det_classes=_class_ids(det.labels, lookup, "detection", det.path),
                det_scores=det.scores,
                in_ground_truth=False,
            )
        )
    return images


def greedy_match(
    image: EvalImage, iou_threshold: float, *, class_aware: bool = True, det_mask: np.ndarray | None = None
) -> np.ndarray:
    """For each detection of ``image`` (input order), the index of its ground-truth box or
    :data:`NO_MATCH`, by the rule in the module docstring. ``det_mask`` leaves detections out
    (they get :data:`NO_MATCH` and take no box)."""
    n_det = len(image.det_scores)
    match = np.full(n_det, NO_MATCH, dtype=np.int64)
    if n_det == 0 or len(image.gt_classes) == 0:
        return match
    keep = np.arange(n_det) if det_mask is None else np.flatnonzero(det_mask)
    order = keep[np.argsort(-image.det_scores[keep], kind="stable")]
    iou = pairwise_iou(image.det_boxes[order], image.gt_boxes)  # [K, N], rows by descending score
    candidate = iou >= iou_threshold
    if class_aware:
        candidate &= image.det_classes[order][:, None] == image.gt_classes[None, :]
    scored = np.where(candidate, iou, -1.0)
    # A non-difficult box wanted by two or more detections is contested: only detections that want
    # a contested box need the sequential pass; all others simply take their best candidate.
    contested = (candidate.sum(axis=0) >= 2) & ~image.gt_difficult
    has_candidate = candidate.any(axis=1)
    sequential = candidate[:, contested].any(axis=1)
    simple = has_candidate & ~sequential
    result = np.full(len(order), NO_MATCH, dtype=np.int64)
    result[simple] = np.argmax(scored[simple], axis=1)
    used = np.zeros(len(image.gt_classes), dtype=bool)
    difficult = image.gt_difficult
    for row in np.flatnonzero(sequential):
        available = np.where(used, -1.0, scored[row])
        best = int(np.argmax(available))
        if available[best] >= 0.0:
            result[row] = best
            if not difficult[best]:
                used[best] = True
    match[order] = result
    return match
