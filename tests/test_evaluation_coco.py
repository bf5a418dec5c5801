"""COCO metrics must be the numbers of an ordinary, independent pycocotools run."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation import evaluate, evaluate_coco

CLASSES = ("cat", "dog", "emu", "never")  # "never" has no ground truth and no detections


def random_data(seed: int, n_images: int = 8, missed_class: str | None = None):
    """Random gt boxes (some difficult) and jittered, relabelled, duplicated and spurious detections."""
    rng = np.random.default_rng(seed)
    truth, found = [], []
    for i in range(n_images):
        n = int(rng.integers(0, 9))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 60, (n, 2))], 1).astype(np.float32)
        labels = tuple(rng.choice(CLASSES[:3], n))
        difficult = rng.random(n) < 0.15
        truth.append(ImageRecord(f"img{i}.png", boxes, labels, difficult))
        keep = rng.random(n) < 0.85
        jitter = rng.normal(0, 4, (n, 4)).astype(np.float32)
        det_boxes = (boxes + jitter)[keep]
        det_labels = [l if rng.random() > 0.1 else str(rng.choice(CLASSES[:3])) for l in np.array(labels)[keep]]
        dup = rng.random(len(det_boxes)) < 0.2
        spurious_xy = rng.uniform(0, 200, (int(rng.integers(0, 4)), 2))
        spurious = np.concatenate([spurious_xy, spurious_xy + 20], 1).astype(np.float32)
        det_boxes = np.concatenate([det_boxes, det_boxes[dup] + 2, spurious])
        det_labels += [det_labels[j] for j in np.flatnonzero(dup)]
        det_labels += [str(label) for label in rng.choice(CLASSES[:3], len(spurious))]
        if missed_class is not None:
            chosen = np.array([l != missed_class for l in det_labels], bool)
            det_boxes, det_labels = det_boxes[chosen], [l for l, c in zip(det_labels, chosen) if c]
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        scores = rng.random(len(det_boxes)).astype(np.float32)
        found.append(Detections(f"img{i}.png", det_boxes, scores, tuple(det_labels)))
    return truth, found


def reference_coco(truth, found):
    """pycocotools the usual way: a gt dataset, loadRes on a result list, default params."""
    image_ids = {r.path: 100 + 7 * i for i, r in enumerate(truth)}  # ids unlike the module's
    category_ids = {name: 11 + k for k, name in enumerate(CLASSES)}
    annotations = []
    for record in truth:
        for box, label, difficult in zip(record.boxes.tolist(), record.labels, record.difficult.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_ids[record.path],
                                "category_id": category_ids[label], "bbox": [box[0], box[1], w, h],
                                "area": w * h, "iscrowd": int(difficult)})
    results = [
        {"image_id": image_ids[d.path], "category_id": category_ids[label],
         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score}
        for d in found for box, label, score in zip(d.boxes.tolist(), d.labels, d.scores.tolist())
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": v} for v in image_ids.values()],
                           "categories": [{"id": v, "name": k} for k, v in category_ids.items()],
                           "annotations": annotations}
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, 2]  # area "all", maxDets 100
    per_class = {}
    for name, cat in category_ids.items():
        values = precision[:, :, evaluator.params.catIds.index(cat)]
        per_class[name] = float(values[values > -1].mean()) if (values > -1).any() else None
    return evaluator.stats, per_class


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identical_to_pycocotools(seed):
    truth, found = random_data(seed)
    stats, per_class = reference_coco(truth, found)
    ours = evaluate_coco(truth, found, CLASSES)
    assert 0.1 < ours["AP"] < 0.95  # a non-trivial case
    assert (ours["AP"], ours["AP50"], ours["AP75"]) == (stats[0], stats[1], stats[2])
    assert ours["per_class"] == per_class
    assert ours["per_class"]["never"] is None


def test_class_with_ground_truth_but_no_detection_is_zero():
    truth, found = random_data(5, missed_class="dog")
    stats, per_class = reference_coco(truth, found)
    ours = evaluate(truth, found, CLASSES)["coco"]
    assert ours["per_class"]["dog"] == 0.0 == per_class["dog"]
    assert ours["AP"] == stats[0]


def test_quiet_and_max_dets(capsys):
    truth, found = random_data(3)
    assert evaluate_coco(truth, found, CLASSES, max_dets=100) == evaluate_coco(truth, found, CLASSES)
    one = evaluate_coco(truth, found, CLASSES, max_dets=1)
    assert one["AP"] < evaluate_coco(truth, found, CLASSES)["AP"]  # images hold several boxes
    assert capsys.readouterr().out == ""


def test_no_detections_at_all():
    truth, _ = random_data(4)
    result = evaluate_coco(truth, [], CLASSES)
    assert result["AP"] == 0.0 and result["per_class"]["cat"] == 0.0 and result["per_class"]["never"] is None
