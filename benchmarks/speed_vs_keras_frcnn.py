"""The speed comparison with keras-frcnn: ``python -m keras_frcnn.cli.benchmark`` at keras-frcnn's
settings (600 px, batch 1, 32 RoIs per training image, 300 proposals at test), repeated in fresh
processes, with the median of each timing and the speed-ups over keras-frcnn's published times.

    python benchmarks/speed_vs_keras_frcnn.py --network vgg16 [--repeats 3] [--set KEY=VALUE] [--json OUT]

keras-frcnn's times (from issue #3, measured on a 2-core machine of this kind): VGG16 9.1 s per
training iteration and 2.1 s per image, ResNet50 3.6 s and 3.5 s. Detection is compared as the
inference commands run it (``detect_constant_weights_s``) and as ``model.call`` runs it
(``detect_s``). The machine is shared and its speed drifts by up to 30% between runs, hence the
repeats: the JSON keeps every run's timings beside the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout

from keras_frcnn.atomic import write_json  # noqa: E402

KERAS_FRCNN_SECONDS = {"vgg16": {"train": 9.1, "detect": 2.1}, "resnet50": {"train": 3.6, "detect": 3.5}}
TARGETS = {"train": 2.2, "detect": 1.5}
TIMINGS = ("backbone_forward_s", "dense_forward_s", "detect_s", "dense_forward_constant_weights_s",
           "detect_constant_weights_s", "backbone_train_step_s", "dense_train_step_s", "train_step_s")


def one_run(network: str, settings: list[str]) -> dict:
    """One ``keras_frcnn.cli.benchmark`` run in a fresh process (its JSON)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "speed.json")
        command = [sys.executable, "-m", "keras_frcnn.cli.benchmark", "--network", network, "--im-size", "600",
                   "--num-rois", "32", "--post-nms-test", "300", "--variants", "constant_weights", "--json", path]
        for setting in settings:
            command += ["--set", setting]
        environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
        subprocess.run(command, check=True, cwd=REPO, env=environment, stdout=subprocess.DEVNULL)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)


def summarise(network: str, runs: list[dict]) -> dict:
    """Medians of the timings over the runs, the overheads and the speed-ups over keras-frcnn."""
    medians = {key: round(statistics.median(run[key] for run in runs), 4) for key in TIMINGS}
    reference = KERAS_FRCNN_SECONDS[network]
    speedups = {
        "train": round(reference["train"] / medians["train_step_s"], 2),
        "detect": round(reference["detect"] / medians["detect_s"], 2),
        "detect_constant_weights": round(reference["detect"] / medians["detect_constant_weights_s"], 2),
    }
    return {
        "network": network, "repeats": len(runs), "overrides": runs[0]["overrides"],
        "medians": medians,
        "detect_overhead": round(medians["detect_s"] / medians["dense_forward_s"], 3),
        "detect_overhead_constant_weights": round(
            medians["detect_constant_weights_s"] / medians["dense_forward_constant_weights_s"], 3),
        "train_overhead": round(medians["train_step_s"] / medians["dense_train_step_s"], 3),
        "keras_frcnn_seconds": reference,
        "speedup_over_keras_frcnn": speedups,
        "speedup_targets": TARGETS,
        "runs": [{key: run[key] for key in TIMINGS} for run in runs],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=sorted(KERAS_FRCNN_SECONDS), default="vgg16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to the benchmark, e.g. freeze_batchnorm=true")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    runs = []
    for repeat in range(args.repeats):
        runs.append(one_run(args.network, args.set))
        print(f"run {repeat + 1}/{args.repeats}: train {runs[-1]['train_step_s']:.2f} s, "
              f"detect {runs[-1]['detect_s']:.2f} s, constant weights {runs[-1]['detect_constant_weights_s']:.2f} s",
              file=sys.stderr)
    result = summarise(args.network, runs)
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
