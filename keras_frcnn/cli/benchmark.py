"""``python -m keras_frcnn.cli.benchmark``: the speed benchmark of :mod:`keras_frcnn.benchmark`."""

from __future__ import annotations

import argparse
import json
import sys

from keras_frcnn.atomic import write_json
from keras_frcnn.benchmark import VARIANTS, measure
from keras_frcnn.cli.args import parse_set_values
from keras_frcnn.cli.tensorflow_start import start_tensorflow
from keras_frcnn.errors import run_cli


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_frcnn.cli.benchmark",
                                     description="Speed benchmark: what the full model costs beyond its dense layers.")
    parser.add_argument("--network", choices=("vgg16", "resnet50", "tiny"), default="vgg16")
    parser.add_argument("--im-size", type=int, default=600)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--num-rois", type=int, help="RoIs per image in training (default: config)")
    parser.add_argument("--post-nms-test", type=int, help="proposals kept at test time (default: config)")
    parser.add_argument("--pre-nms-test", type=int, help="proposals before NMS at test time (default: config)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                        help="which variants of the training step and detection to time (default: all)")
    parser.add_argument("--no-variants", action="store_true",
                        help="skip the XLA, mixed precision and constant-weights timings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (JSON value), e.g. --set tiny_filters=[32,64,128,256]")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.im_size < 32:
        parser.error("--runs must be >= 1 and --im-size >= 32")
    start_tensorflow()
    overrides = parse_set_values(args.set)
    result = measure(args.network, args.im_size, args.runs, args.num_rois, args.post_nms_test, args.pre_nms_test,
                     variants=() if args.no_variants else args.variants, overrides=overrides)
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
