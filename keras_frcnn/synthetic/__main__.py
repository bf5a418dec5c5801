"""Command line: ``python -m keras_frcnn.synthetic --out DIR --train N --test M ...``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from keras_frcnn.cli.args import ArgumentParser, non_negative_int, probability
from keras_frcnn.errors import flag_names, run_cli
from keras_frcnn.progress import Progress
from keras_frcnn.synthetic.generate import generate_dataset
from keras_frcnn.synthetic.imaging import STYLES
from keras_frcnn.synthetic.scene import DEFAULT_SIZE, MODES, STYLE_SIZE


def _fraction(text: str) -> float:
    value = probability(text)
    if value in (0.0, 1.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _size(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m keras_frcnn.synthetic",
        description="Write a synthetic banded chromosome data set (PNG images, "
        "train.csv/test.csv as filepath,x1,y1,x2,y2,class_name, manifest.json).",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--train", type=non_negative_int, default=100, help="training images (default 100)")
    parser.add_argument("--test", type=non_negative_int, default=20, help="test images (default 20)")
    parser.add_argument(
        "--mode", choices=MODES, default="karyogram",
        help="image kind (default karyogram); composite: metaphase spreads of the real, labelled chromosomes "
        "of the karyograms in --from (the rendering options below do not apply)",
    )
    parser.add_argument(
        "--from", dest="source", metavar="FOLDER", default=None,
        help="composite mode: labelled karyograms to cut chromosomes from (e.g. a YOLO folder; labels 1..22, X, Y)",
    )
    parser.add_argument(
        "--test-fraction", type=_fraction, default=0.2,
        help="composite mode: fraction of the source karyograms kept for the test spreads (default 0.2)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    sizes = ", ".join(f"{m} {w}x{h}" for m, (w, h) in DEFAULT_SIZE.items())
    sizes += "".join(f", style {s} {w}x{h}" for s, (w, h) in STYLE_SIZE.items())
    parser.add_argument("--width", type=_size, default=None, help=f"image width (default: {sizes})")
    parser.add_argument("--height", type=_size, default=None, help="image height")
    parser.add_argument(
        "--abnormal-rate", type=probability, default=0.1, help="fraction of aneuploid cells (default 0.1)"
    )
    parser.add_argument(
        "--exception-rate",
        type=probability,
        default=0.02,
        help="per-image probability of one 5-? or X-? label (default 0.02)",
    )
    parser.add_argument(
        "--style", choices=STYLES, default="gband",
        help="gband: dark on light bright-field (default); qband: bright on dark fluorescence; "
        "framed (karyogram mode only, default 416x416): like real karyogram exports -- bright "
        "chromosomes on a dark field, each pair in a thin numbered frame with centromere ticks, "
        "with print/scan defects (brightness/contrast, speckle noise, blur, JPEG artefacts)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    progress = Progress(args.train + args.test, f"generating {args.out}", quiet=args.quiet)
    manifest = generate_dataset(
        args.out,
        args.train,
        args.test,
        mode=args.mode,
        seed=args.seed,
        width=args.width,
        height=args.height,
        abnormal_rate=args.abnormal_rate,
        exception_rate=args.exception_rate,
        style=args.style,
        source=args.source,
        test_fraction=args.test_fraction,
        progress=lambda split, done, count: progress.update(done + (args.train if split == "test" else 0)),
    )
    elapsed = time.perf_counter() - start
    if not args.quiet:
        total = args.train + args.test
        boxes = sum(split["boxes"] for split in manifest["splits"].values())
        rate = f", {total / elapsed:.1f} images/s" if total and elapsed > 0 else ""
        print(f"wrote {args.train} train + {args.test} test images ({boxes} boxes) to {args.out}{rate}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: returns the exit code (0, or 2 for a user error)."""
    return run_cli(_main, argv, flag_names(build_parser()))


if __name__ == "__main__":
    sys.exit(main())
