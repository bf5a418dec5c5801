"""Time the review page (``report.html``, :mod:`keras_frcnn.inference.review_page`) of a large folder: write
a page of N images (default 500) from synthetic karyograms and fake detections (the ground truth
jittered: a few missed, relabelled or false boxes; no model), then open it in headless Chromium
and measure how long it takes to open, and to react to the score slider. Prints JSON.

    python benchmarks/bench_report.py [--images 500] [--distinct 4] [--out DIR] [--repeats 3]
                                      [--screenshot PAGE.png] [--no-browser]

The N images are copies (hard links) of ``--distinct`` synthetic karyograms (generating 500
would take minutes), each with its own fake detections, so the page holds N pictures, N
thumbnails and ~47 boxes per image. Needs Chromium at /usr/bin/chromium (Debian: ``apt-get
install chromium``, or ``--chromium PATH``) and the ``playwright`` Python package (not its
browser download). "open" = navigation start to the load event (the images below the screen
load lazily, later); the page should open in under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from keras_frcnn.annotations import read_annotations
from keras_frcnn.annotations.classes import chromosome_labels
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.inference.review_page import write_review_page

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def fake_detections(record: ImageRecord, rng: np.random.Generator, classes) -> Detections:
    """The ground truth as a decent model would find it: boxes jittered by ~1.5 px, scores mostly
    high (some below 0.5), ~3% missed, ~4% given the other side's label, 0-2 false boxes."""
    n = record.num_boxes
    keep = rng.random(n) >= 0.03
    boxes = record.boxes[keep] + rng.normal(0, 1.5, (int(keep.sum()), 4)).astype(np.float32)
    labels = []
    for label in np.asarray(record.labels, dtype=object)[keep]:
        if rng.random() < 0.04 and label[-2:] in ("-l", "-r"):
            label = label[:-1] + ("r" if label.endswith("l") else "l")
        labels.append(str(label))
    scores = np.clip(rng.beta(6.0, 1.2, len(labels)), 0.05, 0.999)
    width = float(record.boxes[:, 2].max()) if n else 600.0
    height = float(record.boxes[:, 3].max()) if n else 400.0
    n_false = int(rng.integers(0, 3))
    corner = rng.uniform([0, 0], [max(width - 20, 1), max(height - 50, 1)], (n_false, 2))
    false_boxes = np.concatenate([corner, corner + rng.uniform([8, 25], [16, 50], (n_false, 2))], 1)
    boxes = np.concatenate([boxes, false_boxes]).astype(np.float32)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    labels += [str(c) for c in rng.choice(classes, n_false)]
    scores = np.concatenate([scores, rng.uniform(0.3, 0.8, n_false)]).astype(np.float32)
    return Detections(record.path, boxes, scores, labels)


def make_data(folder: str, n_images: int, distinct: int, seed: int) -> tuple[list[ImageRecord], list[Detections]]:
    """``n_images`` ground-truth records (hard links to ``distinct`` synthetic karyograms) and fake detections."""
    from keras_frcnn.synthetic.generate import generate_dataset

    data = os.path.join(folder, "data")
    generate_dataset(data, 0, distinct, seed=seed)
    sources = read_annotations(os.path.join(data, "test.csv")).records
    images = os.path.join(folder, "images")
    os.makedirs(images, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = chromosome_labels()
    truth, found = [], []
    for i in range(n_images):
        source = sources[i % len(sources)]
        path = os.path.join(images, f"cell_{i + 1:04d}.png")
        if not os.path.exists(path):
            try:
                os.link(source.path, path)
            except OSError:
                import shutil

                shutil.copyfile(source.path, path)
        record = ImageRecord(path, source.boxes, source.labels, width=source.width, height=source.height)
        truth.append(record)
        found.append(fake_detections(record, rng, classes))
    return truth, found


def browser_timings(page_path: str, repeats: int, chromium: str, screenshot: str | None) -> dict:
    from playwright.sync_api import sync_playwright

    url = "file://" + os.path.abspath(page_path)
    loads, ready, dcl, fcp, wall, slider, jump = [], [], [], [], [], [], []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.on("pageerror", lambda err: errors.append(str(err)))
                page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                page.on("requestfailed", lambda req: errors.append(f"failed: {req.url}"))
                start = time.perf_counter()
                page.goto(url, wait_until="load", timeout=60_000)
                # two animation frames: the first screen has been laid out and painted
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                wall.append(1000 * (time.perf_counter() - start))
                timing = page.evaluate("""() => {
                    const nav = performance.getEntriesByType('navigation')[0];
                    const paint = performance.getEntriesByName('first-contentful-paint')[0];
                    return {load: nav.loadEventEnd, dcl: nav.domContentLoadedEventEnd,
                            fcp: paint ? paint.startTime : null, now: performance.now()};
                }""")
                loads.append(timing["load"])
                dcl.append(timing["dcl"])
                ready.append(timing["now"])
                if timing["fcp"] is not None:
                    fcp.append(timing["fcp"])
                if screenshot and not os.path.exists(screenshot):
                    page.screenshot(path=screenshot)
                slider.append(page.evaluate("""() => {
                    const s = document.getElementById('score'), t = performance.now();
                    s.value = '0.9'; s.dispatchEvent(new Event('input'));
                    void document.body.offsetHeight;
                    const first = performance.now() - t;
                    s.value = '0'; s.dispatchEvent(new Event('input'));
                    return first;
                }"""))
                jump.append(page.evaluate("""async () => {
                    const sections = document.querySelectorAll('section.img');
                    const last = sections[sections.length - 1], img = last.querySelector('img');
                    const t = performance.now();
                    location.hash = '#' + last.id;
                    if (img) {
                        while (!(img.complete && img.naturalWidth > 0)) {
                            await new Promise(r => setTimeout(r, 10));
                            if (performance.now() - t > 10000) break;
                        }
                    }
                    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                    return performance.now() - t;
                }"""))
                page.close()
        finally:
            browser.close()
    median = lambda values: round(statistics.median(values), 1) if values else None
    return {
        "open_ms": median(loads), "dom_content_loaded_ms": median(dcl), "first_contentful_paint_ms": median(fcp),
        "first_frame_ms": median(ready), "wall_goto_ms": median(wall), "slider_ms": median(slider),
        "jump_to_last_image_ms": median(jump), "open_ms_all": [round(v, 1) for v in loads],
        "under_2s": bool(loads) and statistics.median(loads) < 2000.0, "browser_errors": errors[:10],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="images on the page (default 500)")
    parser.add_argument("--distinct", type=int, default=4, help="distinct synthetic karyograms (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the data and the page (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=3, help="page loads to time (median; default 3)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--screenshot", help="also save a screenshot of the first screen")
    parser.add_argument("--no-browser", action="store_true", help="only write the page")
    args = parser.parse_args(argv)

    folder = args.out or tempfile.mkdtemp(prefix="bench_report_")
    start = time.perf_counter()
    truth, found = make_data(folder, args.images, max(1, min(args.distinct, args.images)), args.seed)
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    page = write_review_page(
        os.path.join(folder, "report"), images=truth, detections=found, ground_truth=truth,
        class_names=chromosome_labels(), model_info={"Detections": "synthetic (ground truth jittered, no model)"},
        program="benchmarks/bench_report.py", score_threshold=0.3,
    )
    write_seconds = time.perf_counter() - start
    result = {
        "images": len(truth), "distinct_images": min(args.distinct, args.images),
        "detections": sum(len(d) for d in found), "ground_truth_boxes": sum(r.num_boxes for r in truth),
        "page": page, "html_bytes": os.path.getsize(page), "data_seconds": round(data_seconds, 2),
        "write_seconds": round(write_seconds, 2), "cpus": os.cpu_count(),
    }
    if not args.no_browser:
        result.update(browser_timings(page, args.repeats, args.chromium, args.screenshot))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
