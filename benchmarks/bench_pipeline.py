"""Throughput of the input pipeline on realistic-size images; prints one JSON object.

Writes its own images (768x576 PNG, grey and RGB, smooth background + dark blobs + noise, like a
metaphase spread) to a temporary folder, then times training datasets (im_size 600, hflip + vflip
+ rot90, shuffle) at batch 1 and 2: one warm-up pass, then ``--runs`` timed passes of every image.
``cpu_ms_per_image`` (process CPU time, all threads) is less sensitive to other load on the machine.

    python benchmarks/bench_pipeline.py [--images 40] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from keras_frcnn.annotations.classes import ClassMap, chromosome_labels  # noqa: E402
from keras_frcnn.annotations.records import ImageRecord  # noqa: E402
from keras_frcnn.config import Config  # noqa: E402
from keras_frcnn.data.pipeline import make_dataset  # noqa: E402

HEIGHT, WIDTH = 576, 768


def synthetic_image(rng: np.random.Generator, grey: bool) -> tuple[np.ndarray, np.ndarray]:
    """A metaphase-like image and the boxes of its 46 blobs."""
    coarse = rng.uniform(200, 250, size=(9, 12))
    background = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    image = background.astype(np.float32)
    boxes = []
    for _ in range(46):
        cx, cy = rng.uniform(40, WIDTH - 40), rng.uniform(40, HEIGHT - 40)
        axes = (int(rng.uniform(4, 9)), int(rng.uniform(12, 35)))
        angle = rng.uniform(0, 180)
        cv2.ellipse(image, (int(cx), int(cy)), axes, angle, 0, 360, float(rng.uniform(40, 110)), -1)
        reach = max(axes) + 1
        boxes.append([cx - reach, cy - reach, cx + reach, cy + reach])
    image += rng.normal(0, 6, size=image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if not grey:
        tint = np.array([1.0, 0.95, 0.9], np.float32)
        image = np.clip(image[..., None] * tint, 0, 255).astype(np.uint8)
    return image, np.clip(np.asarray(boxes, np.float32), 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])


def write_records(folder: str, count: int) -> list[ImageRecord]:
    rng = np.random.default_rng(0)
    labels = chromosome_labels()
    records = []
    for i in range(count):
        image, boxes = synthetic_image(rng, grey=i % 2 == 0)
        path = os.path.join(folder, f"spread_{i:03d}.png")
        cv2.imwrite(path, image)
        names = tuple(labels[j % len(labels)] for j in range(len(boxes)))
        records.append(ImageRecord(path=path, boxes=boxes, labels=names, width=WIDTH, height=HEIGHT))
    return records


def time_pass(iterator, num_batches: int, batch_size: int) -> dict:
    """Images per second (wall clock) and CPU milliseconds per image over ``num_batches`` batches."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(num_batches):
        batch = next(iterator)
    batch["images"].numpy()  # make sure the last batch is materialised
    images = num_batches * batch_size
    return {
        "batch_size": batch_size,
        "images_per_second": round(images / (time.perf_counter() - start), 2),
        "cpu_ms_per_image": round(1000 * (time.process_time() - cpu_start) / images, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    config = Config(im_size=600, max_size=1000, hflip=True, vflip=True, rot90=True)
    classes = ClassMap.chromosomes()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        records = write_records(folder, args.images)
        for batch_size in (1, 2):
            dataset = make_dataset(records, classes, config, training=True, batch_size=batch_size, seed=0)
            iterator = iter(dataset)
            num_batches = args.images // batch_size
            time_pass(iterator, num_batches, batch_size)  # warm-up: tracing, autotuning, file cache
            for _ in range(args.runs):
                runs.append(time_pass(iterator, num_batches, batch_size))
            del iterator, dataset  # stop its prefetching before timing the next one
    by_batch = {
        str(b): round(statistics.median(r["images_per_second"] for r in runs if r["batch_size"] == b), 2)
        for b in (1, 2)
    }
    result = {
        "images_per_second": round(statistics.median(r["images_per_second"] for r in runs), 2),
        "by_batch_size": by_batch,
        "cpu_ms_per_image": round(statistics.median(r["cpu_ms_per_image"] for r in runs), 2),
        "runs": runs,
        "im_size": config.im_size,
        "max_size": config.max_size,
        "source_size": [HEIGHT, WIDTH],
        "num_images": args.images,
        "augment": "hflip+vflip+rot90",
        "cpu_count": os.cpu_count(),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
