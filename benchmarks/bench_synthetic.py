"""Speed of the synthetic data generator: images per second per mode, printed as JSON.

``python benchmarks/bench_synthetic.py [--images N] [--seed S]`` measures, on one core (OpenCV
limited to one thread), the in-memory rendering (:func:`keras_frcnn.synthetic.render_image`) and
the full writer (:func:`keras_frcnn.synthetic.generate_dataset`: rendering, PNG encoding, CSV)
for each mode, per CPU second (robust to other load on the machine) and per wall-clock second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from keras_frcnn.synthetic import MODES, generate_dataset, render_image  # noqa: E402


def _rates(run, images: int) -> tuple[float, float]:
    """(images per CPU second, images per wall-clock second) of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return images / max(cpu, 1e-9), images / max(wall, 1e-9)


def bench(mode: str, images: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    render_image(rng, mode)  # warm up (band table, OpenCV)
    render_cpu, render_wall = _rates(lambda: [render_image(rng, mode) for _ in range(images)], images)
    with tempfile.TemporaryDirectory() as out:
        write_cpu, write_wall = _rates(lambda: generate_dataset(out, images, 0, mode=mode, seed=seed), images)
    return {
        "render_images_per_cpu_s": round(render_cpu, 1),
        "render_images_per_s": round(render_wall, 1),
        "write_images_per_cpu_s": round(write_cpu, 1),
        "write_images_per_s": round(write_wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="images per measurement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core
    results = {mode: bench(mode, args.images, args.seed) for mode in MODES}
    print(json.dumps({"images": args.images, "modes": results}, indent=2))


if __name__ == "__main__":
    main()
