"""Accuracy on real metaphase spreads (BioImLab, one class ``chr``) within a time budget; prints JSON.

    python benchmarks/accuracy_bioimlab.py --data ../shared/data/bioimlab/json [--budget-minutes 20] [--weights chromosomes|none]

Reads the LabelMe files of ``--data`` (112 Q-banded spreads, 768 x 576, every chromosome one
polygon ``chr``), splits them train/validation by *sample* (``original_104a`` and
``original_104b`` are two cells of sample 104 and stay on one side), fine-tunes the one-class
spread detector (the demo's small backbone at 1000 px, the paper's rotations and flips) until the
budget is spent, and scores the last epoch on the validation spreads: AP50 and COCO AP.

Default configuration: the shipped ``chromosomes`` weights (backbone and RPN pre-trained on
synthetic spreads; their anchors) with the first two backbone blocks kept frozen, mixed bfloat16
where the CPU computes it natively, a cosine schedule with 5% warm-up, validation every third
epoch (and after the last), 1,000 RPN proposals at test time. The earlier configuration (from
scratch, float32, anchors fitted to the training boxes, learning rate / 10 after 80%, validation
every epoch, 150 of the best 1,000 proposals at test time) is ``--weights none --precision
float32 --lr-schedule step --warmup 0 --validate-every 1 --test-proposals 1000 150``.
Goal: AP50 >= 0.91 (the earlier configuration's 60-minute result on two cores) within 20 minutes.
Nothing is copied from ``--data``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

import accuracy_common as common

GOAL = 0.91
SAMPLE = re.compile(r"^(.*?)(\d+)[a-z]?$")


def sample_of(path: str) -> str:
    """The sample a spread belongs to: ``original_104a.json`` and ``original_104b.json`` -> ``original_104``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    match = SAMPLE.match(stem)
    return match.group(1) + match.group(2) if match else stem


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the folder of BioImLab LabelMe JSON files")
    common.add_arguments(parser, output="bench_runs/bioimlab", lr_schedule="cosine", warmup=0.05,
                           budget_minutes=20.0, validate_every=3)
    parser.add_argument("--weights", choices=("chromosomes", "none"), default="chromosomes",
                        help="chromosomes (default): start from the shipped pre-trained backbone and RPN; none: from scratch")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="of the samples (default 0.2)")
    parser.add_argument("--im-size", type=int, default=1000, help="shorter image side (default 1000: 768x576 -> 1333x1000)")
    parser.add_argument("--tiny-stride", type=int, choices=(8, 16), default=16,
                        help="feature stride of the tiny backbone (default 16; 8 keeps twice the rows and columns)")
    parser.add_argument("--freeze-blocks", type=int,
                        help="keep the first N backbone blocks as they start (default 2 with the shipped weights, 0 without)")
    parser.add_argument("--test-proposals", type=int, nargs=2, metavar=("PRE_NMS", "POST_NMS"),
                        help="RPN proposals at test time: the best PRE_NMS, POST_NMS kept after NMS "
                        "(default 6000 1000; the earlier configuration 1000 150)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data):
        from keras_frcnn.errors import UserError

        raise UserError(f"{args.data}: no such folder; pass --data with the BioImLab LabelMe JSON files "
                        "(e.g. ../shared/data/bioimlab/json)")
    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()

    from keras_frcnn.model.anchor_fit import anchor_coverage, suggest_anchors
    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.pretrained import CHROMOSOMES, read_manifest
    from keras_frcnn.pretrained.build import spread_config
    from keras_frcnn.training.runs import load_model
    from keras_frcnn.training.loop import split_records

    start = time.perf_counter()
    classes = ClassMap(("chr",))
    records = read_annotations(args.data, classes=classes, format="labelme").records
    train_records, val_records = split_records(records, args.val_fraction, args.seed, group_of=sample_of)
    freeze_blocks = args.freeze_blocks if args.freeze_blocks is not None else 2 if args.weights == "chromosomes" else 0
    config = spread_config(args.seed, args.im_size).replace(tiny_stride=args.tiny_stride, freeze_blocks=freeze_blocks)
    if args.test_proposals:
        config = config.replace(pre_nms_top_n_test=args.test_proposals[0], post_nms_top_n_test=args.test_proposals[1])
    shipped_anchors = None  # the shipped RPN's own, at the image size and stride it was trained at
    if args.weights == "chromosomes":
        config = config.replace(weights=CHROMOSOMES)
        manifest = read_manifest(CHROMOSOMES)
        if (config.im_size, config.tiny_stride) == (manifest["im_size"], manifest["tiny_stride"]):
            shipped_anchors = manifest["anchor_scales"], manifest["anchor_ratios"]
    # else fitted to the training boxes (with shipped weights, their RPN outputs then start fresh)
    scales, ratios = shipped_anchors or suggest_anchors(train_records, config, n_scales=3, n_ratios=4, max_anchors=16)
    config = config.replace(anchor_scales=tuple(scales), anchor_ratios=tuple(ratios))
    coverage = anchor_coverage(train_records, config, suggest=False)

    run, history, training = common.train_within_budget(
        os.path.join(args.output, "run"), config, args, classes, train_records, val_records)
    model = load_model(run.last)  # the last epoch: the validation spreads are also the ones reported
    metrics, _ = common.score(model, val_records, classes.names)
    ap50 = metrics["coco"]["AP50"]
    common.emit({
        "benchmark": "BioImLab metaphase spreads, one class (chr)",
        "command": common.command("accuracy_bioimlab.py", argv),
        "machine": common.machine(), "budget_minutes": args.budget_minutes,
        "data": {"folder": os.path.abspath(args.data), "images": len(records),
                 "train_images": len(train_records), "val_images": len(val_records),
                 "train_samples": len({sample_of(r.path) for r in train_records}),
                 "val_samples": len({sample_of(r.path) for r in val_records}),
                 "val_boxes": sum(r.num_boxes for r in val_records)},
        "model": common.model_summary(config, anchor_coverage_iou_50=common.rounded(coverage.fraction_covered),
                                      augmentation="rotations by 90 degrees, horizontal and vertical flips"),
        "training": training,
        "validation_curve": common.validation_curve(history),
        "validation": {"AP50": common.rounded(ap50), "coco_AP": common.rounded(metrics["coco"]["AP"]),
                       "AP75": common.rounded(metrics["coco"]["AP75"]),
                       "voc_AP": common.rounded(metrics["voc"]["mAP"]),
                       "precision_at_0.5": common.rounded(metrics["voc"]["per_class"]["chr"]["precision"]),
                       "recall_at_0.5": common.rounded(metrics["voc"]["per_class"]["chr"]["recall"]),
                       "seconds_per_image": metrics["seconds_per_image"]},
        "goal": {"AP50_at_least": GOAL, "met": ap50 is not None and ap50 >= GOAL},
        "total_minutes": round((time.perf_counter() - start) / 60, 1),
    }, args.json)
    return 0


if __name__ == "__main__":
    from keras_frcnn.errors import run_cli

    sys.exit(run_cli(_main))
