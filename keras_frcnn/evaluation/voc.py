"""Pascal VOC average precision: all-point (VOC2010+) and 11-point (VOC2007) interpolation.

Matching follows :mod:`keras_frcnn.evaluation.matching` ("highest-IoU unmatched", difficult
boxes ignored). A class with ground truth but no detection has AP 0; classes without
(non-difficult) ground truth get ``ap = None``, are left out of the mean and listed in
``missing_classes``. ``precision``/``recall`` count detections with ``score >= score_threshold``;
``n_det`` is the number of those detections scored as TP or FP (so ``precision = TP / n_det``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation.matching import (
    NO_MATCH,
    EvalImage,
    check_threshold,
    class_name_tuple,
    greedy_match,
    prepare_images,
)

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


@dataclass(frozen=True, eq=False)
class MatchedDetections:
    """Every detection of a data set after matching, flattened in image order.

    ``status`` is :data:`TRUE_POSITIVE`, :data:`FALSE_POSITIVE` or :data:`IGNORED` (matched to a
    difficult box); ``n_gt`` counts the non-difficult ground-truth boxes per class.
    """

    classes: np.ndarray  # int64 [D]
    scores: np.ndarray  # float32 [D]
    status: np.ndarray  # int8 [D]
    n_gt: np.ndarray  # int64 [C]


def match_detections(images: Sequence[EvalImage], num_classes: int, iou_threshold: float) -> MatchedDetections:
    """Match every image (class-aware) and flatten the outcome."""
    classes, scores, status = [], [], []
    n_gt = np.zeros(num_classes, dtype=np.int64)
    for image in images:
        n_gt += np.bincount(image.gt_classes[~image.gt_difficult], minlength=num_classes)
        match = greedy_match(image, iou_threshold)
        outcome = np.full(len(match), FALSE_POSITIVE, dtype=np.int8)
        matched = match != NO_MATCH
        outcome[matched] = np.where(image.gt_difficult[match[matched]], IGNORED, TRUE_POSITIVE)
        classes.append(image.det_classes)
        scores.append(image.det_scores)
        status.append(outcome)
    return MatchedDetections(
        classes=np.concatenate(classes) if classes else np.zeros(0, np.int64),
        scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
        status=np.concatenate(status) if status else np.zeros(0, np.int8),
        n_gt=n_gt,
    )


def average_precision(recall: np.ndarray, precision: np.ndarray, *, eleven_point: bool = False) -> float:
    """AP from recall/precision curves ordered by descending score.

    All-point: area under the monotone precision envelope (the curve is extended to recall 1 with
    precision 0). 11-point: mean over t = 0, 0.1, ..., 1 of the best precision at recall >= t
    (0 when recall t is never reached). The thresholds are ``np.arange(0.0, 1.1, 0.1)``, as in
    py-faster-rcnn's ``voc_eval``, detectron2 and mmdetection, whose floats at 0.3, 0.6 and 0.7 lie
    slightly above the tenths: a recall of exactly 3/10 does not reach t = 0.3 there, nor here.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if eleven_point:
        if len(recall) == 0:
            return 0.0
        envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or later
        thresholds = np.arange(0.0, 1.1, 0.1)  # the reference tools' floats (see the docstring)
        first = np.searchsorted(recall, thresholds, side="left")  # recall is non-decreasing
        return float(envelope[first[first < len(recall)]].sum() / 11.0)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def voc_metrics(
    matched: MatchedDetections, class_names: Sequence[str], *, score_threshold: float, eleven_point: bool = False
) -> dict:
    """``{"mAP", "per_class", "missing_classes"}`` from matched detections (JSON-ready)."""
    counted = matched.status != IGNORED
    classes = matched.classes[counted]
    scores = matched.scores[counted]
    is_tp = matched.status[counted] == TRUE_POSITIVE
    order = np.argsort(-scores, kind="stable")
    order = order[np.argsort(classes[order], kind="stable")]  # by class, then descending score
    classes, scores, is_tp = classes[order], scores[order], is_tp[order]
    bounds = np.searchsorted(classes, np.arange(len(class_names) + 1), side="left")
    per_class: dict[str, dict] = {}
    missing: list[str] = []
    aps: list[float] = []
    for k, name in enumerate(class_names):
        tp = is_tp[bounds[k]:bounds[k + 1]]
        n_gt = int(matched.n_gt[k])
        tp_cum = np.cumsum(tp, dtype=np.float64)
        n_seen = np.arange(1, len(tp) + 1, dtype=np.float64)
        above = int(np.count_nonzero(scores[bounds[k]:bounds[k + 1]] >= score_threshold))
        tp_above = float(tp_cum[above - 1]) if above else 0.0
        if n_gt == 0:
            missing.append(name)
            ap = recall = None
        else:
            ap = average_precision(tp_cum / n_gt, tp_cum / n_seen, eleven_point=eleven_point)
            aps.append(ap)
            recall = tp_above / n_gt
        if above:
            precision = tp_above / above
        else:
            precision = 0.0 if n_gt else None
        per_class[name] = {"ap": ap, "precision": precision, "recall": recall, "n_gt": n_gt, "n_det": above}
    mean_ap = float(np.mean(aps)) if aps else None
    return {"mAP": mean_ap, "per_class": per_class, "missing_classes": missing}


def evaluate_voc(
    ground_truth: Sequence[ImageRecord],
    detections: Sequence[Detections],
    class_names: Sequence[str] | ClassMap,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    eleven_point: bool = False,
) -> dict:
    """VOC metrics alone (see :func:`keras_frcnn.evaluation.evaluate` for the whole report)."""
    names = class_name_tuple(class_names)
    iou_threshold = check_threshold("iou_threshold", iou_threshold)
    images = prepare_images(ground_truth, detections, names)
    matched = match_detections(images, len(names), iou_threshold)
    return voc_metrics(matched, names, score_threshold=score_threshold, eleven_point=eleven_point)
