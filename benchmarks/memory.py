"""Peak memory of training and detection per backbone and image size; prints one JSON object.

For each ``--networks`` backbone and ``--im-sizes`` size (square images, batch 1, 46 boxes, float32
or ``--precision mixed``, the library's defaults), :func:`keras_frcnn.benchmark.peak_memory` saves
an untrained model, then measures in fresh processes the peak resident memory of three training
steps (``train_peak_rss_mb``: the model built with the Adamax ``train_frcnn.py`` uses, gradients
and both optimizer slots) and of three detections (``detect_peak_rss_mb``: the saved model loaded
as ``test_frcnn.py`` loads and runs it; ``--constant-kernels`` changes how). ``--repeats`` runs
each phase that many times and reports the median (the peaks vary between runs, as TensorFlow's
allocators keep what they once held). MB here: MiB, the kernel's ``ru_maxrss`` / 1024.

    python benchmarks/memory.py [--networks vgg16 resnet50 tiny] [--im-sizes 600 1000] [--repeats 3] [--precision mixed]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", choices=("vgg16", "resnet50", "tiny"),
                        default=["vgg16", "resnet50", "tiny"])
    parser.add_argument("--im-sizes", nargs="+", type=int, default=[600, 1000], metavar="PIXELS")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each phase (median; default 1)")
    parser.add_argument("--precision", choices=("float32", "mixed"), default="float32",
                        help="mixed: mixed_bfloat16 on a CPU, mixed_float16 on a GPU (default float32)")
    parser.add_argument("--constant-kernels", choices=("auto", "yes", "no"), default="auto",
                        help="detection with the convolution kernels as graph constants: auto (as test_frcnn.py: "
                        "only small ones), yes or no")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)

    import accuracy_common as common
    from keras_frcnn.benchmark import peak_memory
    from keras_frcnn.training.distribute import mixed_precision_policy

    policy = mixed_precision_policy(args.precision == "mixed")
    constant = {"auto": "auto", "yes": True, "no": False}[args.constant_kernels]

    results = []
    for network in args.networks:
        for im_size in args.im_sizes:
            setup = {"network": network, "im_size": im_size, "num_rois": None, "post_nms_test": None,
                     "pre_nms_test": None, "overrides": None}
            results.append({"network": network, "im_size": im_size, **peak_memory(setup, args.repeats, policy, constant)})
            print(f"{network} {im_size} px: {results[-1]}", file=sys.stderr)
    common.emit({"benchmark": "peak resident memory (MB) per backbone and image size",
                 "command": common.command("memory.py", argv), "machine": common.machine(),
                 "precision": policy, "constant_kernels": args.constant_kernels, "repeats": args.repeats,
                 "results": results}, args.json)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from keras_frcnn.errors import run_cli

    sys.exit(run_cli(_main))
