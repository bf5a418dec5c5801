"""Time the evaluation on a synthetic data set (default: 1,000 images x 46 chromosomes, ~60
detections each) and print the timings as JSON.

    python benchmarks/bench_evaluation.py [--images 1000] [--seed 0] [--output bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from keras_frcnn.annotations.classes import chromosome_labels
from keras_frcnn.atomic import write_json
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation import confusion_summary, evaluate, evaluate_coco, evaluate_voc


def karyotype_labels(rng: np.random.Generator) -> list[str]:
    labels = [f"{n}-{side}" for n in range(1, 23) for side in "lr"]
    return labels + (["X-l", "X-r"] if rng.random() < 0.5 else ["X-l", "Y"])


def synthetic_data(n_images: int, seed: int) -> tuple[list[ImageRecord], list[Detections]]:
    """46 elongated boxes per image; detections: ~95% found (jittered, 5% with the other side's
    label), ~10% duplicated, ~10 spurious boxes, random scores."""
    rng = np.random.default_rng(seed)
    classes = chromosome_labels()
    truth, found = [], []
    for i in range(n_images):
        labels = karyotype_labels(rng)
        n = len(labels)
        xy = rng.uniform(0, 900, (n, 2))
        size = np.stack([rng.uniform(10, 30, n), rng.uniform(30, 100, n)], 1)
        boxes = np.concatenate([xy, xy + size], 1).astype(np.float32)
        path = f"metaphase_{i:05d}.png"
        truth.append(ImageRecord(path, boxes, tuple(labels)))

        keep = rng.random(n) < 0.95
        det_boxes = boxes[keep] + rng.normal(0, 3, (int(keep.sum()), 4)).astype(np.float32)
        det_labels = [
            (label[:-1] + ("r" if label.endswith("l") else "l")) if rng.random() < 0.05 and label[-1] in "lr" else label
            for label in np.array(labels)[keep]
        ]
        dup = rng.random(len(det_boxes)) < 0.1
        n_false = int(rng.integers(7, 17))
        false_xy = rng.uniform(0, 900, (n_false, 2))
        false_boxes = np.concatenate([false_xy, false_xy + rng.uniform(10, 80, (n_false, 2))], 1)
        det_boxes = np.concatenate([det_boxes, det_boxes[dup] + 4, false_boxes]).astype(np.float32)
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        det_labels += [det_labels[j] for j in np.flatnonzero(dup)] + list(rng.choice(classes, n_false))
        found.append(Detections(path, det_boxes, rng.random(len(det_boxes)).astype(np.float32), tuple(det_labels)))
    return truth, found


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args(argv)
    classes = chromosome_labels()
    truth, found = synthetic_data(args.images, args.seed)
    t_voc, voc = timed(evaluate_voc, truth, found, classes)
    t_voc07, _ = timed(evaluate_voc, truth, found, classes, eleven_point=True)
    t_coco, coco = timed(evaluate_coco, truth, found, classes)
    t_confusion, _ = timed(confusion_summary, truth, found, classes)
    t_all, _ = timed(evaluate, truth, found, classes)
    report = {
        "images": len(truth),
        "gt_boxes": sum(r.num_boxes for r in truth),
        "detections": sum(len(d) for d in found),
        "classes": len(classes),
        "seconds": {
            "voc": round(t_voc, 3),
            "voc07": round(t_voc07, 3),
            "coco": round(t_coco, 3),
            "confusion": round(t_confusion, 3),
            "evaluate_total": round(t_all, 3),
        },
        "mAP_voc": round(voc["mAP"], 4),
        "AP_coco": round(coco["AP"], 4),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        write_json(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
