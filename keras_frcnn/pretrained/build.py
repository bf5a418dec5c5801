"""Rebuild the shipped ``chromosomes`` weights (see :mod:`keras_frcnn.pretrained`).

    python -m keras_frcnn.pretrained.build --work WORK_DIR --output keras_frcnn/pretrained

Renders synthetic Q-banded metaphase spreads (``keras_frcnn.synthetic``, mode ``metaphase``,
style ``qband``, 768 x 576, seeded), trains the tiny one-class detector on them (``chr``, the
real-spread benchmark's model: 1000 px, rotations and flips, 16 anchors fitted to the boxes,
Adamax, cosine schedule) in float32 with TensorFlow's deterministic kernels for a fixed number of
steps, and writes the backbone and RPN weights (``.npz``) with their manifest (``.json``).

Deterministic: the same command on the same kind of CPU and thread count gives the same weights
(the manifest's checksum); another CPU's kernels may round differently.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
import time
from typing import Sequence

SHIPPED_LAYERS = ("block", "rpn_")
"""Layer-name prefixes of the weights shipped: the tiny backbone's ``blockN_conv1`` and the RPN."""


def spread_config(seed: int, im_size: int = 1000):
    """The one-class spread model of the real-spread benchmark (demo backbone at ``im_size``).

    At test time the RPN keeps 1,000 proposals of the best 6,000 (detectron2's C4 values) instead
    of the demo's 150 of 1,000: a spread holds about 42 chromosomes, and 150 proposals left a fifth
    of them without one (BioImLab validation spreads, one model: recall at IoU 0.5 0.79 with 150,
    0.90 with 1,000; AP50 0.88 and 0.95). On karyograms more proposals scored lower, so the demo
    keeps its own."""
    from keras_frcnn.demo import demo_config

    return demo_config(("chr",), seed=seed, im_size=im_size, max_size=(im_size * 4 + 2) // 3,
                       hflip=True, vflip=True, rot90=True, nms_iou=0.5, max_detections=100,
                       pre_nms_top_n_test=6000, post_nms_top_n_test=1000)


def synthetic_spreads(folder: str, images: int, seed: int) -> list:
    """Render ``images`` synthetic Q-banded spreads into ``folder`` and read them as one-class records."""
    from keras_frcnn.annotations import read_annotations
    from keras_frcnn.synthetic.generate import generate_dataset

    if not os.path.isfile(os.path.join(folder, "train.csv")):
        generate_dataset(folder, images, 0, mode="metaphase", style="qband", seed=seed)
    records = read_annotations(os.path.join(folder, "train.csv")).records
    return [dataclasses.replace(record, labels=("chr",) * record.num_boxes) for record in records]


def build(work: str, output: str, *, images: int = 300, epochs: int = 5, epoch_length: int = 200, seed: int = 0,
          im_size: int = 1000, name: str = "chromosomes", command: str = "",
          print_fn=print) -> dict:
    """Train on synthetic spreads in ``work`` and write ``<output>/<file>.npz`` and ``.json``;
    returns the manifest."""
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.cpu import describe_cpu
    from keras_frcnn.model.anchor_fit import suggest_anchors
    from keras_frcnn.pretrained import SHIPPED_FILES, save_weights, weights_checksum
    from keras_frcnn.training.loop import TrainOptions, train

    import keras
    import tensorflow as tf

    import keras_frcnn

    start = time.perf_counter()
    records = synthetic_spreads(os.path.join(work, "data"), images, seed)
    config = spread_config(seed, im_size)
    scales, ratios = suggest_anchors(records, config, n_scales=3, n_ratios=4, max_anchors=16)
    config = config.replace(anchor_scales=scales, anchor_ratios=ratios)
    options = TrainOptions(optimizer="adamax", num_epochs=epochs, epoch_length=epoch_length, deterministic=True,
                           lr_schedule="cosine", verbose=0)
    result = train(os.path.join(work, "run"), config=config, options=options, class_map=ClassMap(("chr",)),
                   train_records=records, resume=os.path.isfile(os.path.join(work, "run", "state.json")),
                   print_fn=print_fn)
    from keras_frcnn.training.runs import load_model

    model = load_model(result.run.last)
    stem = SHIPPED_FILES[name]
    arrays = save_weights(model, os.path.join(output, stem + ".npz"), SHIPPED_LAYERS)
    last = result.history.iloc[-1]
    manifest = {
        "name": name, "file": stem + ".npz", "network": config.network, "tiny_filters": list(config.tiny_filters),
        "tiny_stride": config.tiny_stride,
        "layers": sorted({path.split("/")[0] for path in arrays}),
        "anchor_scales": [float(s) for s in config.anchor_scales],
        "anchor_ratios": [float(r) for r in config.anchor_ratios],
        "im_size": config.im_size, "max_size": config.max_size,
        "data": {"generator": "keras_frcnn.synthetic, mode metaphase, style qband, 768 x 576",
                 "images": len(records), "boxes": int(sum(r.num_boxes for r in records)), "seed": seed,
                 "classes": ["chr"]},
        "training": {"optimizer": options.optimizer, "schedule": options.lr_schedule, "epochs": result.epochs,
                     "epoch_length": options.epoch_length, "iterations": result.iterations,
                     "precision": "float32", "deterministic": True,
                     "augmentation": "rotations by 90 degrees, horizontal and vertical flips",
                     "last_epoch_losses": {k: round(float(last[k]), 4) for k in
                                           ("loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg")},
                     "minutes": round((time.perf_counter() - start) / 60, 1)},
        "command": command, "seed": seed, "date": datetime.date.today().isoformat(),
        "versions": {"keras_frcnn": keras_frcnn.__version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "cpu": describe_cpu(), "checksum": weights_checksum(arrays),
        "bytes": int(sum(a.nbytes for a in arrays.values())),
    }
    from keras_frcnn.atomic import write_json

    write_json(os.path.join(output, stem + ".json"), manifest)
    return manifest


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_frcnn.pretrained.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="work folder: the synthetic spreads and the training run "
                        "(reused: an unfinished run resumes)")
    parser.add_argument("--output", required=True, help="folder for chromosomes_tiny.npz and .json "
                        "(keras_frcnn/pretrained to replace the shipped ones)")
    parser.add_argument("--images", type=int, default=300, help="synthetic spreads (default 300)")
    parser.add_argument("--epochs", type=int, default=5, help="default 5")
    parser.add_argument("--epoch-length", type=int, default=200, help="steps per epoch (default 200)")
    parser.add_argument("--im-size", type=int, default=1000, help="shorter image side (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()
    command = "python -m keras_frcnn.pretrained.build " + " ".join(sys.argv[1:] if argv is None else argv)
    manifest = build(args.work, args.output, images=args.images, epochs=args.epochs,
                     epoch_length=args.epoch_length, seed=args.seed, im_size=args.im_size, command=command)
    print(f"wrote {os.path.join(args.output, manifest['file'])} ({manifest['bytes'] / 1e6:.1f} MB, "
          f"checksum {manifest['checksum'][:12]}...) after {manifest['training']['iterations']} steps "
          f"({manifest['training']['minutes']} min)")
    return 0


if __name__ == "__main__":
    from keras_frcnn.errors import run_cli

    sys.exit(run_cli(_main))
