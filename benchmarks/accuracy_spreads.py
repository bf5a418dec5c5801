"""Identifying chromosomes in metaphase spreads (24 classes) within a time budget; prints JSON.

    python benchmarks/accuracy_spreads.py --data ../shared/data/karyograms/yolo [--bioimlab ../shared/data/bioimlab/json]

Makes composite spreads from the real karyograms of ``--data`` (``python -m keras_frcnn.synthetic
--mode composite``: each spread holds the real chromosomes of one source karyogram, cut out and
scattered at random angles; training and test spreads come from disjoint source karyograms),
trains a 24-class detector from scratch until the budget is spent (the paper's rotations and flips:
a spread has no left or right), and scores the last epoch on the held-out spreads:

- 24-class VOC mAP@0.5, COCO AP, per-class AP;
- identification: of the chromosomes found (IoU >= 0.5, score >= 0.5, matched whatever their
  label), the share labelled right, with per-class NMS and with the karyotype prior
  (``--label-assignment karyotype``: each class at most twice per cell, Y once, a sure third copy kept);
- the share of cells whose draft karyotype (``46,XY``, ``47,XX,+21``) is exactly the truth;
- the class confusions (which chromosomes are taken for which).

The class head also sees each RoI's box size (``--roi-box-features size``): RoI pooling scales every
chromosome to one grid, and length is the first thing a cytogeneticist sorts by.

With ``--bioimlab``, the same model on the real BioImLab spreads (no identities): class-agnostic
AP50 on their validation samples (split by sample as ``accuracy_bioimlab.py`` does), and the
karyograms ``karyotype_frcnn.py`` composes for the first ``--karyogram-examples`` of them (with the
karyotype prior) in ``<output>/bioimlab_karyograms/<spread>/``.
Goal: 24-class mAP@0.5 >= 0.90 and identification >= 0.95 with the prior. Nothing is copied from
the data folders.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import accuracy_common as common

GOAL_MAP = 0.90
GOAL_IDENTIFICATION = 0.95
ASSIGNMENTS = {"per_class_nms": "none", "karyotype_prior": "karyotype"}


def composite_data(folder: str, source: str, train: int, test: int, seed: int) -> str:
    """The composite spreads (generated once into ``folder``)."""
    from keras_frcnn.synthetic import generate_dataset

    if not os.path.exists(os.path.join(folder, "manifest.json")):
        print(f"composing {train} + {test} spreads from {source} in {folder}", file=sys.stderr)
        generate_dataset(folder, train, test, mode="composite", seed=seed, source=source)
    return folder


def identification(confusion) -> float | None:
    """Of the matched chromosomes (class-agnostic, the confusion matrix's class-to-class cells), the
    share whose label is right."""
    from keras_frcnn.evaluation import side_confusion

    sides = side_confusion(confusion.matrix)
    matched = sides.correct + sides.left_right + sides.side_unknown + sides.other_chromosome
    return sides.correct / matched if matched else None


def exact_karyotypes(records, detections) -> float:
    """The share of cells whose draft karyotype string equals the one of their ground truth."""
    from keras_frcnn.inference.karyotype import summarise_detections, summarise_karyotype

    right = 0
    for record, found in zip(records, detections):
        truth = summarise_karyotype(record.labels, [1.0] * record.num_boxes).iscn_draft
        right += summarise_detections(found).iscn_draft == truth
    return right / max(len(records), 1)


def agnostic(detections, name: str = "chr"):
    """Detections as one class: overlapping readings of one chromosome (IoU >= 0.5) counted once."""
    from keras_frcnn.inference.detections import Detections
    from keras_frcnn.inference.karyotype import chromosome_indices

    out = []
    for found in detections:
        kept = chromosome_indices(found, min_score=0.0)
        out.append(Detections(found.path, found.boxes[kept], found.scores[kept], [name] * len(kept)))
    return out


def score_spreads(model, records, classes) -> dict:
    from keras_frcnn.evaluation import confusion_summary

    results = {}
    for key, mode in ASSIGNMENTS.items():
        model.set_label_assignment(mode)
        metrics, detections = common.score(model, records, classes.names)
        confusion = confusion_summary(records, detections, classes.names)
        per_class = {name: common.rounded(row["ap"]) for name, row in metrics["voc"]["per_class"].items()}
        results[key] = {
            "voc_mAP": common.rounded(metrics["voc"]["mAP"]), "coco_AP": common.rounded(metrics["coco"]["AP"]),
            "coco_AP50": common.rounded(metrics["coco"]["AP50"]),
            "identification_at_score_0.5": common.rounded(identification(confusion)),
            "exact_karyotypes": common.rounded(exact_karyotypes(records, detections)),
            "weakest_five": sorted(((ap, name) for name, ap in per_class.items() if ap is not None))[:5],
            "per_class_voc_ap": per_class,
            "top_confusions_at_score_0.5": [{"ground_truth": gt, "predicted": p, "count": n}
                                            for gt, p, n in confusion.top_confusions],
            "seconds_per_image": metrics["seconds_per_image"],
        }
    return results


def score_bioimlab(model, folder: str, val_fraction: float, seed: int, examples: int, examples_folder: str) -> dict:
    """Class-agnostic AP50 of the 24-class model on the BioImLab validation samples, and the
    karyograms of the first ``examples`` of them written into ``examples_folder``."""
    from accuracy_bioimlab import sample_of

    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.evaluation import evaluate
    from keras_frcnn.inference.detector import predict_records
    from keras_frcnn.training.loop import split_records

    records = read_annotations(folder, classes=ClassMap(("chr",)), format="labelme").records
    _, val_records = split_records(records, val_fraction, seed, group_of=sample_of)
    model.set_label_assignment("none")
    detections = agnostic(predict_records(model, val_records))
    metrics = evaluate(val_records, detections, ("chr",))
    return {"images": len(val_records), "AP50": common.rounded(metrics["coco"]["AP50"]),
            "coco_AP": common.rounded(metrics["coco"]["AP"]),
            "karyograms": write_karyograms(model, val_records[:examples], examples_folder)}


def write_karyograms(model, records, folder: str) -> list[dict]:
    """``karyotype_frcnn.py``'s outputs (karyogram, numbered spread, karyotype.json) for ``records``,
    with the karyotype prior; returns each spread's folder and draft."""
    from keras_frcnn.annotations.images import load_image
    from keras_frcnn.cli.karyotype import write_spread
    from keras_frcnn.inference.detector import predict_records

    model.set_label_assignment("karyotype")
    written = []
    for record, found in zip(records, predict_records(model, records)):
        name = os.path.splitext(os.path.basename(record.path))[0]
        summary = write_spread(os.path.join(folder, name), load_image(record), found, model.class_names,
                               title=name)
        written.append({"spread": name, "folder": os.path.join(folder, name), "chromosomes": summary.total,
                        "iscn_draft": summary.iscn_draft})
    return written


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the YOLO folder of real karyograms to cut chromosomes from")
    parser.add_argument("--bioimlab", help="also score the BioImLab spreads (LabelMe folder), class-agnostic")
    common.add_arguments(parser, output="bench_runs/spreads")
    parser.add_argument("--train-spreads", type=int, default=1000)
    parser.add_argument("--test-spreads", type=int, default=100)
    parser.add_argument("--im-size", type=int, default=1000, help="shorter side (default 1000: 768x576 -> 1333x1000)")
    parser.add_argument("--roi-box-features", choices=("none", "size", "size_position"), default="size",
                        help="what the class head learns of each RoI's box (Config.roi_box_features; default size: "
                        "a chromosome's length tells much of its identity, its place in a spread nothing)")
    parser.add_argument("--karyogram-examples", type=int, default=3, metavar="N",
                        help="with --bioimlab: compose the karyograms of N validation spreads (default 3)")
    args = parser.parse_args(argv)
    for folder in filter(None, (args.data, args.bioimlab)):
        if not os.path.isdir(folder):
            from keras_frcnn.errors import UserError

            raise UserError(f"{folder}: no such folder")
    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()

    from keras_frcnn.model.anchor_fit import anchor_coverage, suggest_anchors
    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.demo import demo_config
    from keras_frcnn.training.runs import load_model

    start = time.perf_counter()
    classes = ClassMap.chromosomes24()
    data = composite_data(os.path.join(args.output, "composite"), args.data, args.train_spreads,
                          args.test_spreads, args.seed)
    train_records = read_annotations(os.path.join(data, "train.csv"), classes=classes).records
    test_records = read_annotations(os.path.join(data, "test.csv"), classes=classes).records
    val_records = test_records[:20]  # the curve only: the last epoch is reported, none is picked on it
    config = demo_config(classes.names, seed=args.seed, im_size=args.im_size, max_size=(args.im_size * 4 + 2) // 3,
                         hflip=True, vflip=True, rot90=True, max_detections=100,
                         roi_box_features=args.roi_box_features)
    scales, ratios = suggest_anchors(train_records, config, n_scales=3, n_ratios=4, max_anchors=16)
    config = config.replace(anchor_scales=scales, anchor_ratios=ratios)
    coverage = anchor_coverage(train_records, config, suggest=False)

    run, history, training = common.train_within_budget(
        os.path.join(args.output, "run"), config, args, classes, train_records, val_records)
    model = load_model(run.last)
    results = score_spreads(model, test_records, classes)
    bioimlab = (score_bioimlab(model, args.bioimlab, 0.2, args.seed, args.karyogram_examples,
                               os.path.join(args.output, "bioimlab_karyograms")) if args.bioimlab else None)
    best_map = max(results[key]["voc_mAP"] or 0 for key in ASSIGNMENTS)
    identified = results["karyotype_prior"]["identification_at_score_0.5"] or 0
    common.emit({
        "benchmark": "composite spreads of real chromosomes, 24 classes",
        "command": common.command("accuracy_spreads.py", argv),
        "machine": common.machine(), "budget_minutes": args.budget_minutes,
        "data": {"source": os.path.abspath(args.data), "train_spreads": len(train_records),
                 "test_spreads": len(test_records), "test_boxes": sum(r.num_boxes for r in test_records)},
        "model": common.model_summary(config, anchor_coverage_iou_50=common.rounded(coverage.fraction_covered),
                                      augmentation="rotations by 90 degrees, horizontal and vertical flips"),
        "training": training,
        "validation_curve": common.validation_curve(history),
        "test": results,
        "bioimlab": bioimlab,
        "goal": {"voc_mAP_at_least": GOAL_MAP, "identification_at_least": GOAL_IDENTIFICATION,
                 "met": best_map >= GOAL_MAP and identified >= GOAL_IDENTIFICATION},
        "total_minutes": round((time.perf_counter() - start) / 60, 1),
    }, args.json)
    return 0


if __name__ == "__main__":
    from keras_frcnn.errors import run_cli

    sys.exit(run_cli(_main))
