"""The README's first command: synthetic karyograms -> train -> test -> measure, on a CPU.

    python -m keras_frcnn.cli.demo --output demo_run        (make demo)

Generates the embedded synthetic data set, trains the demo configuration (a small backbone sized
for a 2-core CPU; see :func:`keras_frcnn.demo.demo_settings`), runs ``test_frcnn.py`` on the
held-out test images and ``measure_map.py`` against their ground truth, then prints where the
report is and the mAP.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from keras_frcnn.cli import measure, test, train
from keras_frcnn.cli.tensorflow_start import start_tensorflow
from keras_frcnn.demo import demo_settings
from keras_frcnn.errors import UserError, run_cli
from keras_frcnn.progress import Progress
from keras_frcnn.training.distribute import PRECISIONS, resolve_precision
from keras_frcnn.synthetic import generate_dataset


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_frcnn.cli.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_run", help="folder for the data, the run and the reports")
    parser.add_argument("--train-images", type=int, default=300)
    parser.add_argument("--test-images", type=int, default=30)
    parser.add_argument("--num-epochs", type=int, default=10)
    parser.add_argument("--epoch-length", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="training precision; auto (default): mixed bfloat16 on a CPU that computes it natively "
                        "(AVX512-BF16 / AMX) and has no GPU, about twice as fast; float32 elsewhere")
    args = parser.parse_args(argv)
    start_tensorflow()
    precision = resolve_precision(args.precision)
    start = time.perf_counter()
    data = os.path.join(args.output, "data")
    run = os.path.join(args.output, "run")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        print(f"[1/4] generating {args.train_images} + {args.test_images} synthetic karyograms in {data}")
        progress = Progress(args.train_images + args.test_images, "      generated")
        generate_dataset(data, args.train_images, args.test_images, mode="karyogram", seed=args.seed,
                         progress=lambda split, done, count: progress.update(
                             done + (args.train_images if split == "test" else 0)))
    train_flags = ["-p", os.path.join(data, "train.csv"), "--output", run, "--num_epochs", str(args.num_epochs),
                   "--epoch_length", str(args.epoch_length), "--seed", str(args.seed), "--val-fraction", "0.1",
                   *demo_settings(), *(["--mixed-precision"] if precision == "mixed" else [])]
    if os.path.exists(os.path.join(run, "state.json")):
        train_flags = ["--resume", "--output", run, "--num_epochs", str(args.num_epochs)]
    arithmetic = "mixed bfloat16" if precision == "mixed" else "float32"
    if precision == "mixed" and args.precision == "auto":
        arithmetic += ": this CPU computes bfloat16 natively; --precision float32 for float32"
    print(f"[2/4] training ({args.num_epochs} epochs x {args.epoch_length} iterations, {arithmetic}) -> {run}")
    _check(train.main(train_flags + ["--quiet"]), "training")
    test_dir = os.path.join(args.output, "test")
    print(f"[3/4] detecting on the test images -> {test_dir}")
    _check(test.main(["-p", os.path.join(data, "test.csv"), "--model", run, "--output", test_dir]), "testing")
    measure_dir = os.path.join(args.output, "measure")
    print(f"[4/4] measuring mAP -> {measure_dir}")
    _check(measure.main(["-p", os.path.join(data, "test.csv"), "--detections", os.path.join(test_dir, "detections.csv"),
                         "--output", measure_dir]), "measuring")
    with open(os.path.join(measure_dir, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    minutes = (time.perf_counter() - start) / 60
    print(f"\ndemo finished in {minutes:.1f} min: test VOC mAP@0.5 = {metrics['voc']['mAP']:.4f}, "
          f"COCO AP = {metrics['coco']['AP']:.4f}, AP50 = {metrics['coco']['AP50']:.4f}")
    print(f"  loss curve:              {os.path.join(run, 'loss_curve.png')}")
    print(f"  per-class precision:     {os.path.join(measure_dir, 'per_class_precision.png')}")
    print(f"  review page:             {os.path.join(test_dir, 'report.html')} (with the ground truth: "
          f"{os.path.join(measure_dir, 'report.html')})")
    print(f"  annotated images:        {os.path.join(test_dir, 'images')}")
    print(f"  detections / karyotypes: {os.path.join(test_dir, 'detections.csv')}, {os.path.join(test_dir, 'karyotype.csv')}")
    print(f"  metrics:                 {os.path.join(measure_dir, 'metrics.json')}")
    return 0


def _check(code: int, step: str) -> None:
    if code:
        raise UserError(f"the demo stopped: {step} failed (exit {code}), see the message above")


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
