"""``export_frcnn.py``: export a trained model for serving (:mod:`keras_frcnn.inference.export`)."""

from __future__ import annotations

import argparse
import sys

from keras_frcnn.cli.args import ArgumentParser
from keras_frcnn.cli.tensorflow_start import start_tensorflow
from keras_frcnn.errors import flag_names, run_cli
from keras_frcnn.inference.export import FORMATS, SIGNATURES, export


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="export_frcnn.py", description="Export a trained model for serving.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="a run folder (its best.keras, else last.keras) or a .keras file")
    parser.add_argument("--format", choices=FORMATS, default="saved_model",
                        help="saved_model: TensorFlow-only serving; keras: an inference-only .keras file")
    parser.add_argument("--output", required=True, help="SavedModel folder, or .keras file / folder for --format keras")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export")
    return parser


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    start_tensorflow()
    written = export(args.model, args.output, args.format, overwrite=args.overwrite)
    if args.format == "saved_model":
        print(f"exported {args.model} -> {written} (SavedModel; signatures: {', '.join(SIGNATURES)}; "
              "load with tf.saved_model.load)")
    else:
        print(f"exported {args.model} -> {written} (.keras, no optimizer; load with keras_frcnn.training.runs.load_model)")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv, flag_names(build_parser(), fmt="--format"))


if __name__ == "__main__":
    sys.exit(main())
