"""Detection throughput on a folder of images, per backbone; prints one JSON object.

Writes ``--images`` metaphase-like PNGs of 768 x 576 (as ``bench_pipeline.py`` does) and runs an
untrained model of each ``--networks`` backbone (random weights: the work per image is that of a
trained model at the same settings) over all of them in four ways:

- ``one_at_a_time``: read, resize and detect each image in turn (``detect_images`` on one path),
  as a plain loop in a notebook would; variable kernels.
- ``pipeline_batch_1``: ``test_frcnn.py``'s way, :func:`keras_frcnn.inference.detector.predict_records`
  on a :class:`~keras_frcnn.inference.detector.Detector` (constant kernels where small): images decoded and
  resized in parallel by tf.data, ahead of the model, one per step.
- ``pipeline_batch_2``: the same with two same-size images per step (``--batch-size 2``).
- ``model_only``: the bound: the same detector (batch 1) on images decoded and resized beforehand,
  held in memory; the time the model itself takes, with nothing to read.

Each way first runs on two images (tracing), then the timed pass over every image; ``--rounds``
repeats the passes (interleaved, so drift in the machine's speed hits all alike) and the medians
are reported, with each way's ratio to ``one_at_a_time`` and its share of ``model_only``'s rate.

    python benchmarks/bench_folder.py [--networks tiny vgg16 resnet50] [--images 100] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

WAYS = ("one_at_a_time", "pipeline_batch_1", "pipeline_batch_2", "model_only")


def _model(network: str, im_size: int):
    """An untrained model (seed 0) at the speed benchmark's settings (``keras_frcnn.benchmark``)."""
    import keras

    from keras_frcnn.benchmark import benchmark_config
    from keras_frcnn.model.faster_rcnn import build_model

    keras.utils.set_random_seed(0)
    return build_model(benchmark_config(network, im_size, num_rois=None, post_nms_test=None, pre_nms_test=None,
                                        overrides=None))


def _ways(model, records) -> dict:
    """The ways to run ``model`` over records, as functions of the records (``model_only`` runs on
    ``records`` prepared now, whatever it is given)."""
    from keras_frcnn.data.pipeline import image_dataset
    from keras_frcnn.inference.detector import Detector, detect_images, image_detections, predict_records

    constant = Detector(model, constant_weights="auto")
    variable = Detector(model)

    def one_at_a_time(records):
        for record in records:
            detect_images(variable, record.path)

    prepared = [{key: batch[key] for key in ("images", "image_shape", "scale")}
                for batch in image_dataset(records, model.frcnn_config, batch_size=1)]

    def model_only(records):
        for inputs in prepared[:len(records)]:
            image_detections(constant.predict_on_batch(inputs), 0, constant)

    return {"one_at_a_time": one_at_a_time,
            "pipeline_batch_1": lambda records: predict_records(constant, records, batch_size=1),
            "pipeline_batch_2": lambda records: predict_records(constant, records, batch_size=2),
            "model_only": model_only}


def measure(network: str, records, im_size: int, rounds: int) -> dict:
    """Images per second of each way (median over ``rounds``), their ratios to one at a time, and
    each way's share of the model's own rate (``model_only``)."""
    ways = _ways(_model(network, im_size), records)
    for run in ways.values():
        run(records[:2])  # trace
    seconds: dict = {name: [] for name in ways}
    for _ in range(rounds):
        for name, run in ways.items():
            start = time.perf_counter()
            run(records)
            seconds[name].append(time.perf_counter() - start)
    rates = {name: round(len(records) / statistics.median(values), 3) for name, values in seconds.items()}
    return {"images_per_second": rates,
            "speedup_over_one_at_a_time": {name: round(rate / rates["one_at_a_time"], 3) for name, rate in rates.items()},
            "share_of_model_only": {name: round(rate / rates["model_only"], 3) for name, rate in rates.items()},
            "seconds": {name: [round(s, 2) for s in values] for name, values in seconds.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["tiny", "vgg16", "resnet50"],
                        choices=("tiny", "vgg16", "resnet50"))
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--im-size", type=int, default=600)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    if args.images < 2 or args.rounds < 1:
        parser.error("--images must be at least 2 and --rounds at least 1")

    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()  # before anything imports TensorFlow: without the CUDA probing lines
    import accuracy_common as common  # the machine record and JSON output every benchmark shares
    from bench_pipeline import HEIGHT, WIDTH, write_records

    result = {"benchmark": "detection on a folder", "command": "python benchmarks/bench_folder.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": common.machine(),
              "images": args.images, "source_size": [WIDTH, HEIGHT], "im_size": args.im_size, "precision": "float32",
              "networks": {}}
    with tempfile.TemporaryDirectory() as folder:
        records = write_records(folder, args.images)
        for network in args.networks:
            print(f"{network}: {args.images} images x {len(WAYS)} ways x {args.rounds} round(s)", file=sys.stderr)
            result["networks"][network] = measure(network, records, args.im_size, args.rounds)
            print(f"{network}: {result['networks'][network]}", file=sys.stderr, flush=True)
    common.emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
