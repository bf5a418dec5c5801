"""The paper's task on real karyograms (24 classes; the paper's 49 labels by position) within a time budget; prints JSON.

    python benchmarks/accuracy_karyograms.py --data ../shared/data/karyograms/yolo [--budget-minutes 60]

Reads the YOLO folder of ``--data`` (real karyograms, 24 classes ``1``..``22``, ``X``, ``Y``), splits it
by *source karyogram* (``karyotype-N_bmp_jpg.rf.<hash>.jpg`` files with one N are copies of one
karyogram, :func:`keras_frcnn.annotations.sources.source_of`; no N is on both sides), trains a
24-class detector from scratch until the budget is spent, and scores the last epoch on every file of
the held-out sources:

- 24 classes: VOC mAP@0.5, COCO AP / AP50 / AP75, per-class AP, the top confusions;
- the paper's 49 labels (its metric and scheme): the ground truth and the detections get their side
  by position (:mod:`keras_frcnn.annotations.label_schemes`), then VOC mAP@0.5;

each with per-class NMS and with the karyotype label assignment (each class at most twice per cell,
``Y`` once). Validation during training uses one file per held-out source (the copies are near
duplicates); the reported numbers are of the last epoch (no epoch is picked on them).
Goal: 49-label mAP@0.5 >= 0.90 and 24-class COCO AP >= 0.70. Nothing is copied from ``--data``.

``--regime`` chooses the training data, within the same total budget: ``real`` (the above),
``synthetic`` (synthetic karyograms in the real set's style only, scored zero-shot on the real
held-out sources) or ``pretrained`` (synthetic first, for ``--pretrain-fraction`` of the budget,
then the real training sources starting from those weights, ``train_frcnn.py --init-from``). The
synthetic karyograms carry the 49 labels; they are trained on as 24 classes (``7-l`` -> ``7``).
``--train-sources N`` keeps only N of the real training sources (a small real set).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import accuracy_common as common

GOAL_MAP49 = 0.90
GOAL_COCO_AP24 = 0.70
ASSIGNMENTS = {"per_class_nms": "none", "karyotype_assignment": "karyotype"}
REGIMES = ("real", "synthetic", "pretrained")
SYNTHETIC_STYLE = "framed"
LABEL_SLACK = (1.0, 3.0)  # px each side (x, y) by which the real labels exceed the chromosome at 416 px


def synthetic_records(folder: str, images: int, seed: int) -> tuple[list, float]:
    """Synthetic karyograms in the real set's style (generated once into ``folder``), their labels as the
    24 classes; and the minutes generating them took (0 when reused)."""
    from dataclasses import replace

    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.annotations.classes import chromosome_of
    from keras_frcnn.synthetic import generate_dataset

    start = time.perf_counter()
    if not os.path.exists(os.path.join(folder, "manifest.json")):
        print(f"generating {images} synthetic karyograms ({SYNTHETIC_STYLE} style, seed {seed}) in {folder}",
              file=sys.stderr)
        generate_dataset(folder, images, 0, mode="karyogram", seed=seed, style=SYNTHETIC_STYLE)
    minutes = (time.perf_counter() - start) / 60
    records = read_annotations(os.path.join(folder, "train.csv")).records
    return [replace(r, labels=tuple(chromosome_of(label) for label in r.labels),
                    boxes=with_label_slack(r.boxes, r.width, r.height)) for r in records], minutes


def with_label_slack(boxes, width: int, height: int):
    """Synthetic boxes are tight; the real set's hand-drawn boxes run about 2 px wider and 6 px taller
    than the chromosome (at 416 px): widen the synthetic ones alike, inside the image."""
    import numpy as np

    scale = min(width, height) / 416
    pad = np.asarray([-LABEL_SLACK[0], -LABEL_SLACK[1], LABEL_SLACK[0], LABEL_SLACK[1]], np.float32) * scale
    return np.clip(boxes + pad, 0, [width, height, width, height]).astype(np.float32)


def split_by_source(records, test_fraction: float, seed: int) -> tuple[list, list]:
    """``(train, test)`` records: whole source karyograms on each side (a seeded share of the sources)."""
    from keras_frcnn.annotations.sources import source_of
    from keras_frcnn.training.loop import split_records

    return split_records(records, test_fraction, seed, group_of=source_of)


def one_per_source(records) -> list:
    """The first file of each source (in path order): the validation images during training."""
    from keras_frcnn.annotations.sources import source_of

    chosen: dict[str, object] = {}
    for record in sorted(records, key=lambda r: r.path):
        chosen.setdefault(source_of(record.path), record)
    return list(chosen.values())


def scored(metrics: dict) -> dict:
    return {"voc_mAP": common.rounded(metrics["voc"]["mAP"]), "voc07_mAP": common.rounded(metrics["voc07"]["mAP"]),
            "coco_AP": common.rounded(metrics["coco"]["AP"]), "coco_AP50": common.rounded(metrics["coco"]["AP50"]),
            "coco_AP75": common.rounded(metrics["coco"]["AP75"])}


def per_class(metrics: dict) -> dict:
    coco = metrics["coco"]["per_class"]
    return {name: {"voc_ap": common.rounded(row["ap"]), "coco_ap": common.rounded(coco.get(name)),
                   "n_gt": row["n_gt"]} for name, row in metrics["voc"]["per_class"].items()}


def evaluate_modes(model, test_records, classes, assignments=tuple(ASSIGNMENTS)) -> dict:
    """The 24-class and the 49-label scores of the held-out records, for each assignment mode named."""
    from keras_frcnn.annotations.classes import chromosome_labels
    from keras_frcnn.annotations.label_schemes import paper49_detections, to_paper49
    from keras_frcnn.evaluation import confusion_summary, evaluate
    from keras_frcnn.inference.karyotype import chromosome_indices

    records49, scheme = to_paper49(test_records)
    results = {}
    for key, mode in ASSIGNMENTS.items():
        if key not in assignments:
            continue
        model.set_label_assignment(mode)
        metrics, detections = common.score(model, test_records, classes.names)
        detections49 = [paper49_detections(d, chromosome_indices(d)) for d in detections]
        metrics49 = evaluate(records49, detections49, chromosome_labels())
        confusion = confusion_summary(test_records, detections, classes.names)
        weakest = sorted(((row["ap"], name) for name, row in metrics["voc"]["per_class"].items()
                          if row["ap"] is not None))[:5]
        results[key] = {
            "classes24": {**scored(metrics), "seconds_per_image": metrics["seconds_per_image"],
                          "per_class": per_class(metrics),
                          "weakest_five": [{"class": name, "voc_ap": common.rounded(ap)} for ap, name in weakest],
                          "top_confusions_at_score_0.5": [{"ground_truth": gt, "predicted": p, "count": n}
                                                          for gt, p, n in confusion.top_confusions]},
            "paper49": {**scored(metrics49), "per_class": per_class(metrics49)},
        }
    results["paper49_extra_copies"] = {"images": scheme.images_with_extra_copies, "copies": scheme.extra_copies}
    return results


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the YOLO folder of real karyograms (images/, labels/, data.yaml)")
    common.add_arguments(parser, output="bench_runs/karyograms")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="of the source karyograms (default 0.2)")
    parser.add_argument("--im-size", type=int, default=832,
                        help="image side after resizing (default 832: the 416 px images doubled, so the thinnest "
                        "chromosomes are 10 px wide)")
    parser.add_argument("--train-sources", type=int, default=None,
                        help="train on only this many source karyograms (default: all of the training side)")
    parser.add_argument("--roi-box-features", choices=("none", "size", "size_position"), default="size_position",
                        help="what the class head learns of each RoI's box (Config.roi_box_features; default "
                        "size_position: in a karyogram a chromosome's place and length tell much of its identity)")
    parser.add_argument("--synthetic-data", help="a generated synthetic data set to use (default: generate one "
                        "into OUTPUT/synthetic_data)")
    parser.add_argument("--assignments", nargs="+", choices=tuple(ASSIGNMENTS), default=list(ASSIGNMENTS),
                        help="the label assignments to score (default: both)")
    parser.add_argument("--regime", choices=REGIMES, default="real",
                        help="real: real karyograms only; synthetic: synthetic only (zero-shot on real); "
                        "pretrained: synthetic, then real from those weights (default: real)")
    parser.add_argument("--pretrain-fraction", type=float, default=0.5,
                        help="pretrained: the share of the budget spent on synthetic data (default 0.5)")
    parser.add_argument("--synthetic-images", type=int, default=2000,
                        help="synthetic karyograms to generate for the synthetic and pretrained regimes (default 2000)")
    args = parser.parse_args(argv)
    if not 0 < args.pretrain_fraction < 1:
        parser.error("--pretrain-fraction must be in (0, 1)")
    if not os.path.isdir(args.data):
        from keras_frcnn.errors import UserError

        raise UserError(f"{args.data}: no such folder; pass --data with the YOLO karyograms "
                        "(e.g. ../shared/data/karyograms/yolo)")
    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()

    from keras_frcnn.model.anchor_fit import anchor_coverage, suggest_anchors
    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.annotations.sources import source_of
    from keras_frcnn.demo import demo_config
    from keras_frcnn.training.runs import load_model

    start = time.perf_counter()
    classes = ClassMap.chromosomes24()
    records = read_annotations(args.data, classes=classes, format="yolo").records
    train_records, test_records = split_by_source(records, args.test_fraction, args.seed)
    if args.train_sources is not None:
        kept = sorted({source_of(r.path) for r in train_records})[:args.train_sources]
        train_records = [r for r in train_records if source_of(r.path) in kept]
    overlap = {source_of(r.path) for r in train_records} & {source_of(r.path) for r in test_records}
    assert not overlap, f"sources on both sides: {sorted(overlap)}"
    val_records = one_per_source(test_records)
    synthetic, generation_minutes = [], 0.0
    if args.regime != "real":
        synthetic, generation_minutes = synthetic_records(
            args.synthetic_data or os.path.join(args.output, "synthetic_data"), args.synthetic_images, args.seed)
    config = demo_config(classes.names, seed=args.seed, im_size=args.im_size, max_size=args.im_size,
                         hflip=False, vflip=False, rot90=False, max_detections=100,
                         roi_box_features=args.roi_box_features)
    fitted_on = synthetic if args.regime == "synthetic" else train_records  # zero-shot: nothing real for training
    scales, ratios = suggest_anchors(fitted_on, config, n_scales=3, n_ratios=4, max_anchors=16)
    config = config.replace(anchor_scales=scales, anchor_ratios=ratios)
    coverage = anchor_coverage(train_records, config, suggest=False)

    stages = {}
    init_from = None
    real_budget = args.budget_minutes
    if args.regime != "real":
        budget = args.budget_minutes * (args.pretrain_fraction if args.regime == "pretrained" else 1.0)
        run, history, training = common.train_within_budget(
            os.path.join(args.output, "synthetic_run"), config, args, classes, synthetic, val_records,
            budget_minutes=budget)
        stages["synthetic"] = {"images": len(synthetic), "generation_minutes": round(generation_minutes, 2),
                               "training": training,
                               "validation_curve": common.validation_curve(history)}
        init_from, real_budget = run.last, args.budget_minutes - budget
    if args.regime != "synthetic":
        run, history, training = common.train_within_budget(
            os.path.join(args.output, "run"), config, args, classes, train_records, val_records,
            budget_minutes=real_budget, init_from=init_from)
        stages["real"] = {"training": training, "validation_curve": common.validation_curve(history)}
    model = load_model(run.last)  # the last epoch: no epoch is picked on the held-out sources
    results = evaluate_modes(model, test_records, classes, args.assignments)
    best49 = max(results[key]["paper49"]["voc_mAP"] or 0 for key in args.assignments)
    best_ap24 = max(results[key]["classes24"]["coco_AP"] or 0 for key in args.assignments)
    common.emit({
        "benchmark": "real karyograms: 24 classes, and the paper's 49 labels by position",
        "command": common.command("accuracy_karyograms.py", argv),
        "machine": common.machine(), "budget_minutes": args.budget_minutes,
        "data": {"folder": os.path.abspath(args.data), "images": len(records),
                 "train_sources_count": len({source_of(r.path) for r in train_records}),
                 "train_images": len(train_records), "test_images": len(test_records),
                 "val_images_during_training": len(val_records),
                 "train_sources": sorted({source_of(r.path) for r in train_records}),
                 "test_sources": sorted({source_of(r.path) for r in test_records}),
                 "test_boxes": sum(r.num_boxes for r in test_records)},
        "model": common.model_summary(config, anchor_coverage_iou_50=common.rounded(coverage.fraction_covered),
                                      augmentation="none (karyograms are upright; their printed numbers stay readable)"),
        "regime": args.regime,
        "training": stages,
        "test": results,
        "goal": {"paper49_voc_mAP_at_least": GOAL_MAP49, "classes24_coco_AP_at_least": GOAL_COCO_AP24,
                 "met": best49 >= GOAL_MAP49 and best_ap24 >= GOAL_COCO_AP24},
        "total_minutes": round((time.perf_counter() - start) / 60, 1),
    }, args.json)
    return 0


if __name__ == "__main__":
    from keras_frcnn.errors import run_cli

    sys.exit(run_cli(_main))
