"""Detection metrics: Pascal VOC AP (all-point and 11-point), COCO AP by pycocotools, and a
confusion summary. :func:`evaluate` gives the JSON-ready report::

    {"voc":   {"mAP", "per_class": {name: {"ap", "precision", "recall", "n_gt", "n_det"}}, "missing_classes"},
     "voc07": {"mAP", "per_class": {...}},
     "coco":  {"AP", "AP50", "AP75", "per_class": {name: AP@[.5:.95]}}}

Undefined values (a class without ground truth) are ``None``.
"""

from __future__ import annotations

from typing import Sequence

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation.coco import coco_metrics, evaluate_coco
from keras_frcnn.evaluation.confusion import ConfusionSummary, SideConfusion, confusion_summary, side_confusion
from keras_frcnn.evaluation.matching import check_threshold, class_name_tuple, prepare_images
from keras_frcnn.evaluation.voc import average_precision, evaluate_voc, match_detections, voc_metrics
from keras_frcnn.errors import UserError

__all__ = [
    "ConfusionSummary",
    "SideConfusion",
    "average_precision",
    "confusion_summary",
    "evaluate",
    "evaluate_coco",
    "evaluate_voc",
    "side_confusion",
]


def evaluate(
    ground_truth: Sequence[ImageRecord],
    detections: Sequence[Detections],
    class_names: Sequence[str] | ClassMap,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    max_dets: int = 100,
) -> dict:
    """VOC (all-point), VOC07 (11-point) and COCO metrics of ``detections`` against ``ground_truth``.

    Images are paired by path; detections of images without ground truth count as false
    positives (with a warning). ``iou_threshold`` is the VOC match threshold (IoU >= it),
    ``score_threshold`` the one of the precision/recall columns, ``max_dets`` the COCO
    detections per image. At least one ground-truth box is required.
    """
    names = class_name_tuple(class_names)
    iou_threshold = check_threshold("iou_threshold", iou_threshold)
    if not any(record.num_boxes for record in ground_truth):
        raise UserError("no ground-truth boxes to evaluate against")
    images = prepare_images(ground_truth, detections, names)
    matched = match_detections(images, len(names), iou_threshold)
    voc = voc_metrics(matched, names, score_threshold=score_threshold)
    voc07 = voc_metrics(matched, names, score_threshold=score_threshold, eleven_point=True)
    return {
        "voc": voc,
        "voc07": {"mAP": voc07["mAP"], "per_class": voc07["per_class"]},
        "coco": coco_metrics(images, names, max_dets=max_dets),
    }
