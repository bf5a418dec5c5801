"""COCO box AP computed by pycocotools' own COCOeval on in-memory COCO objects.

Images get ids 1..n (ground-truth order, then images that only have detections), classes ids
1..C (class order). Boxes become ``[x1, y1, x2 - x1, y2 - y1]`` with ``area = w * h``.
Difficult boxes become ``iscrowd = 1``: COCOeval then ignores detections matched to them (note
that its IoU against a crowd box is intersection over the detection's area).

For speed, COCOeval runs with the single area range "all" and ``maxDets = [max_dets]``; the
numbers reported are computed from ``eval["precision"]`` exactly as ``COCOeval.summarize`` does
for stats[0] (AP@[.5:.95]), stats[1] (AP50) and stats[2] (AP75) — identical to a default run
with ``max_dets = 100``. Values pycocotools reports as -1 (nothing to measure) become ``None``.
"""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation.matching import EvalImage, class_name_tuple, prepare_images


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1).tolist()


def coco_datasets(images: Sequence[EvalImage], class_names: Sequence[str]) -> tuple[dict, dict]:
    """COCO-format ground-truth and detection datasets (dicts) for ``images``."""
    image_entries = [{"id": i + 1, "file_name": image.path} for i, image in enumerate(images)]
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(class_names)]
    gt_annotations: list[dict] = []
    dt_annotations: list[dict] = []
    for i, image in enumerate(images):
        for bbox, cls, difficult in zip(_xywh(image.gt_boxes), image.gt_classes.tolist(), image.gt_difficult.tolist()):
            gt_annotations.append({
                "id": len(gt_annotations) + 1, "image_id": i + 1, "category_id": cls + 1,
                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": int(difficult),
            })
        for bbox, cls, score in zip(_xywh(image.det_boxes), image.det_classes.tolist(), image.det_scores.tolist()):
            dt_annotations.append({
                "id": len(dt_annotations) + 1, "image_id": i + 1, "category_id": cls + 1,
                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0, "score": score,
            })
    gt = {"images": image_entries, "categories": categories, "annotations": gt_annotations}
    dt = {"images": list(image_entries), "categories": categories, "annotations": dt_annotations}
    return gt, dt


def _coco(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


def coco_metrics(images: Sequence[EvalImage], class_names: Sequence[str], *, max_dets: int = 100) -> dict:
    """``{"AP", "AP50", "AP75", "per_class"}`` by pycocotools (its prints suppressed)."""
    if int(max_dets) < 1:
        raise ValueError(f"max_dets must be positive, got {max_dets}")
    gt_data, dt_data = coco_datasets(images, class_names)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(_coco(gt_data), _coco(dt_data), iouType="bbox")
        evaluator.params.areaRng = [[0**2, 1e5**2]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.params.maxDets = [int(max_dets)]
        evaluator.evaluate()
        evaluator.accumulate()
    params = evaluator.params
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [T, R, K] at area "all", max_dets
    at = {thr: np.where(thr == params.iouThrs)[0] for thr in (0.5, 0.75)}  # as COCOeval.summarize
    return {
        "AP": _mean_valid(precision),
        "AP50": _mean_valid(precision[at[0.5]]),
        "AP75": _mean_valid(precision[at[0.75]]),
        "per_class": {name: _mean_valid(precision[:, :, k]) for k, name in enumerate(class_names)},
    }


def evaluate_coco(
    ground_truth: Sequence[ImageRecord],
    detections: Sequence[Detections],
    class_names: Sequence[str] | ClassMap,
    *,
    max_dets: int = 100,
) -> dict:
    """COCO metrics alone (see :func:`keras_frcnn.evaluation.evaluate` for the whole report)."""
    names = class_name_tuple(class_names)
    return coco_metrics(prepare_images(ground_truth, detections, names), names, max_dets=max_dets)
