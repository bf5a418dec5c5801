"""How long the end of a tf.data pass takes with tf.data's autotuning on and off; prints one JSON object.

A pass is: build a dataset of ``--elements`` elements (each three matrix products of side
``--map-size``, standing in for an image's decode and resize) with
``map(num_parallel_calls=AUTOTUNE)`` and ``prefetch(AUTOTUNE)``, iterate it while the consumer does
``--work-ms`` of matrix products per element (standing in for the model), then delete the iterator.
With autotuning on, the deletion often (not always: a race) waits for the autotuning thread's next
wake-up, whose period doubles from 10 ms (to 60 s) while the iterator lives, so such a pass ends at
one of 0.01, 0.03, 0.07, ..., 20.47, 40.95, 81.91, 141.91 s after its start: ``tick_after_s`` is
the first of them not before the iteration's end. :mod:`keras_frcnn.data.pipeline` turns
autotuning off for this reason.

    python benchmarks/tfdata_iterator_end.py [--elements 40] [--map-size 1500] [--work-ms 0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

FIRST_PERIOD_S, LAST_PERIOD_S = 0.01, 60.0
STALL_S = 0.05  # a deletion slower than this waited for something


def autotune_ticks(until: float) -> list[float]:
    """The autotuning thread's wake-up times after an iterator's start, up to ``until`` and one more."""
    ticks, period, now = [], FIRST_PERIOD_S, 0.0
    while not ticks or ticks[-1] < until:
        now += period
        ticks.append(round(now, 2))
        period = min(2 * period, LAST_PERIOD_S)
    return ticks


def one_pass(autotune: bool, elements: int, work_ms: float, map_size: int) -> dict:
    """Iterate a fresh dataset once; seconds to the last element and to the iterator's deletion."""
    import tensorflow as tf

    def prepare(index):
        x = tf.random.stateless_uniform([map_size, map_size], seed=tf.stack([index, 0]))
        for _ in range(3):
            x = tf.matmul(x, x) / map_size
        return tf.reduce_sum(x)

    dataset = tf.data.Dataset.range(elements).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.autotune.enabled = autotune
    dataset = dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
    work = tf.random.stateless_uniform([512, 512], seed=[1, 2])
    start = time.perf_counter()
    iterator = iter(dataset)
    for _ in iterator:
        deadline = time.perf_counter() + work_ms / 1000
        while time.perf_counter() < deadline:
            tf.matmul(work, work)
    iterated = time.perf_counter() - start
    del iterator
    ended = time.perf_counter() - start
    return {"iterated_s": round(iterated, 3), "ended_s": round(ended, 3),
            "tick_after_s": next(t for t in autotune_ticks(iterated) if t >= iterated)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=40)
    parser.add_argument("--work-ms", type=float, default=0.0, help="the consumer's work per element")
    parser.add_argument("--map-size", type=int, default=1500, help="matrix side of each element's work")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    if min(args.elements, args.repeats, args.map_size) < 1 or args.work_ms < 0:
        parser.error("--elements, --repeats and --map-size must be at least 1, --work-ms not negative")

    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    start_tensorflow()
    import accuracy_common as common

    one_pass(False, 2, 0.0, 8)  # warm-up
    passes: dict = {"autotune_on": [], "autotune_off": []}
    for _ in range(args.repeats):  # interleaved
        passes["autotune_on"].append(one_pass(True, args.elements, args.work_ms, args.map_size))
        passes["autotune_off"].append(one_pass(False, args.elements, args.work_ms, args.map_size))
    summary = {way: {"median_iterated_s": statistics.median(p["iterated_s"] for p in runs),
                     "median_ended_s": statistics.median(p["ended_s"] for p in runs),
                     "passes_whose_end_waited": sum(p["ended_s"] - p["iterated_s"] > STALL_S for p in runs),
                     "passes": len(runs)} for way, runs in passes.items()}
    common.emit({"benchmark": "end of a tf.data pass", "command": "python benchmarks/tfdata_iterator_end.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": common.machine(), "elements": args.elements,
                 "work_ms": args.work_ms, "summary": summary, "passes": passes}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
