"""What the two accuracy benchmarks share: flags, a time-budgeted training run, scoring, JSON.

``accuracy_synthetic.py`` and ``accuracy_bioimlab.py`` differ only in their data and model
configuration; both train with :func:`keras_frcnn.training.loop.train` under a wall-clock budget and
score the held-out images with :func:`keras_frcnn.evaluation.evaluate`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout


def add_arguments(parser: argparse.ArgumentParser, output: str, lr_schedule: str = "step", warmup: float = 0.0,
                  budget_minutes: float = 60.0, validate_every: int = 1) -> None:
    """The flags every accuracy benchmark takes (the keywords: the benchmark's defaults)."""
    from keras_frcnn.training.distribute import PRECISIONS
    from keras_frcnn.training.loop import LR_SCHEDULES

    parser.add_argument("--output", default=output, help="work folder: data, the run, metrics (reused: a "
                        "finished run is scored again, an unfinished one resumed)")
    parser.add_argument("--budget-minutes", type=float, default=budget_minutes,
                        help=f"wall-clock training budget, validation included (default {budget_minutes:g})")
    parser.add_argument("--epoch-length", type=int, default=200, help="iterations per epoch (default 200)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="mixed: bfloat16 compute on a CPU (float16 on a GPU), float32 weights and losses; auto "
                        "(default): mixed on a CPU with native bfloat16 (AVX512-BF16 / AMX) and no GPU, else float32")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=lr_schedule,
                        help=f"step: learning rate / 10 at --lr-drop-at; cosine: down to 0 at the budget's end "
                        f"(default {lr_schedule})")
    parser.add_argument("--lr-drop-at", type=float, nargs="*", default=[0.8], metavar="FRACTION",
                        help="step schedule: learning rate / 10 after these fractions of the budget (default 0.8)")
    parser.add_argument("--warmup", type=float, default=warmup, metavar="FRACTION",
                        help=f"linear warm-up over this fraction of the budget (default {warmup:g})")
    parser.add_argument("--validate-every", type=int, default=validate_every, metavar="EPOCHS",
                        help=f"score the validation images every this many epochs and after the last "
                        f"(default {validate_every})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--note", help="recorded in the JSON (e.g. the conditions: pinned cores, what ran beside)")


def train_within_budget(run_dir: str, config, args, class_map, train_records, val_records, *,
                        budget_minutes: float | None = None, init_from: str | None = None) -> tuple:
    """Train (or resume) ``run_dir`` with Adamax until ``budget_minutes`` (default
    ``args.budget_minutes``) is spent (learning rate drops at ``args.lr_drop_at``), starting from
    ``init_from``'s weights where they match; returns the run folder, the history and a summary
    (epochs, iterations, minutes, best epoch)."""
    from keras_frcnn.training.distribute import resolve_precision
    from keras_frcnn.training.runs import RunFolder
    from keras_frcnn.training.loop import TrainOptions, train

    precision = resolve_precision(args.precision)
    budget_minutes = args.budget_minutes if budget_minutes is None else budget_minutes
    drops = tuple(args.lr_drop_at) if args.lr_schedule == "step" else ()
    options = TrainOptions(num_epochs=100_000, epoch_length=args.epoch_length, verbose=0,  # the budget stops it
                           time_budget_minutes=budget_minutes, mixed_precision=precision == "mixed",
                           optimizer="adamax", lr_schedule=args.lr_schedule, lr_drops=drops, warmup=args.warmup,
                           validate_every=args.validate_every, init_from=init_from)
    run = RunFolder(run_dir)
    resume = run.exists()
    result = train(run_dir, config=config, options=options, class_map=class_map, train_records=train_records,
                   val_records=val_records, resume=resume, print_fn=lambda line: print(line, file=sys.stderr))
    summary = {
        "epochs": result.epochs, "iterations": result.iterations,
        "train_minutes": round(result.train_seconds / 60, 2), "best_epoch": result.best_epoch,
        "best_val_mAP": result.best_val_map, "optimizer": options.optimizer, "learning_rate_schedule": options.lr_schedule,
        "learning_rate_drops": list(options.lr_drops), "warmup": options.warmup,
        "validate_every": options.validate_every, "precision": precision, "precision_choice": args.precision,
        "budget_minutes": budget_minutes, "init_from": init_from, "note": args.note,
    }
    return run, result.history, summary


def validation_curve(history) -> list[dict]:
    """The validated epochs of ``history``: minutes of training so far (validation included) and the
    validation VOC AP@0.5 and COCO AP."""
    import pandas as pd

    minutes = history["seconds"].cumsum() / 60
    return [{"epoch": int(row.epoch), "minutes": round(float(minute), 2), "voc_AP50": rounded(row.val_mAP),
             "coco_AP": rounded(row.val_coco_AP)}
            for minute, row in zip(minutes, history.itertuples()) if pd.notna(row.val_mAP)]


def score(model, records, class_names) -> tuple[dict, list]:
    """Detections on ``records`` and their VOC / COCO metrics (keras_frcnn.evaluation.evaluate)."""
    from keras_frcnn.evaluation import evaluate
    from keras_frcnn.inference.detector import predict_records

    start = time.perf_counter()
    detections = predict_records(model, records)
    seconds = time.perf_counter() - start
    metrics = evaluate(records, detections, class_names)
    metrics["seconds_per_image"] = round(seconds / max(len(records), 1), 3)
    return metrics, detections


def command(script: str, argv) -> str:
    """The command line that ran ``script``."""
    return f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])


def model_summary(config, **extra) -> dict:
    """The model settings a benchmark's JSON reports."""
    return {"network": config.network, "tiny_filters": list(config.tiny_filters), "tiny_stride": config.tiny_stride,
            "freeze_blocks": config.freeze_blocks,
            "im_size": config.im_size,
            "max_size": config.max_size, "anchor_scales": list(config.anchor_scales),
            "anchor_ratios": list(config.anchor_ratios), "num_rois": config.num_rois, "weights": config.weights,
            "roi_box_features": config.roi_box_features,
            "test_proposals": [config.pre_nms_top_n_test, config.post_nms_top_n_test],
            **extra}


def machine() -> dict:
    """Where and when the benchmark ran."""
    import keras
    import tensorflow as tf

    from keras_frcnn.cpu import describe_cpu

    return {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "cpu": describe_cpu(),
            "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__,
            "keras": keras.__version__}


def emit(result: dict, path: str | None) -> None:
    """Print ``result`` as JSON (and write it to ``path``)."""
    print(json.dumps(result, indent=2))
    if path:
        from keras_frcnn.atomic import write_json

        write_json(path, result)


def rounded(value, digits: int = 4):
    return None if value is None else round(float(value), digits)
