"""Accuracy on synthetic karyograms (49 labels) within a training time budget; prints JSON.

    python benchmarks/accuracy_synthetic.py [--budget-minutes 60] [--output bench_runs/synthetic]

Generates ``--train-images`` karyograms (seed ``--seed``; a few are held out for the per-epoch
validation that picks the best epoch) and ``--test-images`` more with another seed
(``--test-seed``), trains the demo configuration (:func:`keras_frcnn.demo.demo_config`, a small
backbone sized for a CPU) with Adamax until the budget is spent (the learning rate drops tenfold
after ``--lr-drop-at`` of it), and scores the best epoch on the test images twice: with the
model's per-class NMS, and with the per-image optimal label assignment
(:mod:`keras_frcnn.model.label_assignment`). Goal: VOC mAP@0.5 >= 0.90.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import accuracy_common as common

GOAL = 0.90


def _data(folder: str, n_train: int, n_test: int, seed: int) -> str:
    """Generate the karyograms once (a rerun reuses them); returns the folder."""
    from keras_frcnn.synthetic import generate_dataset

    if not os.path.exists(os.path.join(folder, "manifest.json")):
        print(f"generating {n_train + n_test} synthetic karyograms (seed {seed}) in {folder}", file=sys.stderr)
        generate_dataset(folder, n_train, n_test, mode="karyogram", seed=seed)
    return folder


def per_class_table(metrics: dict) -> list[dict]:
    """One row per label: VOC AP@0.5, COCO AP, test boxes."""
    coco = metrics["coco"]["per_class"]
    return [{"class": name, "voc_ap": common.rounded(row["ap"]), "coco_ap": common.rounded(coco.get(name)),
             "n_gt": row["n_gt"]} for name, row in metrics["voc"]["per_class"].items()]


def summary(metrics: dict) -> dict:
    return {"voc_mAP": common.rounded(metrics["voc"]["mAP"]), "voc07_mAP": common.rounded(metrics["voc07"]["mAP"]),
            "coco_AP": common.rounded(metrics["coco"]["AP"]), "coco_AP50": common.rounded(metrics["coco"]["AP50"]),
            "seconds_per_image": metrics["seconds_per_image"]}


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_arguments(parser, output="bench_runs/synthetic")
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--val-images", type=int, default=40, help="of the training images, for picking the best epoch")
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--test-seed", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.train_images - args.val_images, args.val_images, args.test_images) < 1:
        parser.error("--train-images must exceed --val-images, and both --val-images and --test-images be >= 1")
    if args.test_seed == args.seed:
        parser.error("--test-seed must differ from --seed (the test images must be new)")
    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()

    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.demo import demo_config
    from keras_frcnn.evaluation import confusion_summary, side_confusion
    from keras_frcnn.training.runs import load_model

    start = time.perf_counter()
    classes = ClassMap.chromosomes()
    train_data = _data(os.path.join(args.output, "train_data"), args.train_images, 0, args.seed)
    test_data = _data(os.path.join(args.output, "test_data"), 0, args.test_images, args.test_seed)
    records = read_annotations(os.path.join(train_data, "train.csv"), classes=classes).records
    test_records = read_annotations(os.path.join(test_data, "test.csv"), classes=classes).records
    train_records, val_records = records[args.val_images:], records[:args.val_images]
    config = demo_config(classes.names, seed=args.seed)

    run, history, training = common.train_within_budget(
        os.path.join(args.output, "run"), config, args, classes, train_records, val_records)
    model = load_model(run.best)  # the epoch with the best validation mAP
    results = {}
    for mode in ("none", "optimal"):
        model.set_label_assignment(mode)
        metrics, detections = common.score(model, test_records, classes.names)
        sides = side_confusion(confusion_summary(test_records, detections, classes.names).matrix)
        results[mode] = {**summary(metrics), "confusions_at_score_0.5": dataclasses.asdict(sides),
                         "per_class": per_class_table(metrics)}
    best = max(results["none"]["voc_mAP"] or 0, results["optimal"]["voc_mAP"] or 0)
    common.emit({
        "benchmark": "synthetic karyograms, 49 labels",
        "command": common.command("accuracy_synthetic.py", argv),
        "machine": common.machine(), "budget_minutes": args.budget_minutes,
        "data": {"train_images": len(train_records), "val_images": len(val_records), "test_images": len(test_records),
                 "train_seed": args.seed, "test_seed": args.test_seed,
                 "test_boxes": sum(r.num_boxes for r in test_records)},
        "model": common.model_summary(config),
        "training": training,
        "validation_curve": common.validation_curve(history),
        "test": {"per_class_nms": results["none"], "optimal_assignment": results["optimal"]},
        "goal": {"voc_mAP_at_least": GOAL, "met": best >= GOAL},
        "total_minutes": round((time.perf_counter() - start) / 60, 1),
    }, args.json)
    return 0


if __name__ == "__main__":
    from keras_frcnn.errors import run_cli

    sys.exit(run_cli(_main))
