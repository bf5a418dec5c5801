"""``test_frcnn.py``: run a trained model on images; write annotated images, the detections CSV
and a draft karyotype per image.

Outputs (all written atomically) in ``--output``:

- ``images/<name>.png``: each image with the chromosomes its karyotype counts (box, label,
  probability; score >= ``--karyotype-score``, overlapping readings once), one colour per class;
- ``detections.csv``: ``filepath,x1,y1,x2,y2,class_name,score`` (an image without detections is
  one line ``filepath,,,,,,``), readable by ``measure_map.py --detections``;
- ``karyotype.csv``: one row per image: count per chromosome, total (vs 46), sex chromosomes,
  gains/losses, a draft ISCN string (always "draft, needs review") and the items to review;
- ``report.html`` (with ``report_images/``): a self-contained page to review every image in a
  browser, boxes and draft karyotype side by side (:mod:`keras_frcnn.inference.review_page`).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

import numpy as np

from keras_frcnn.annotations.images import load_image
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.atomic import write_text
from keras_frcnn.cli import common
from keras_frcnn.inference.batching import resolve_batch_size
from keras_frcnn.inference.detections import Detections, write_detections_csv
from keras_frcnn.errors import run_cli
from keras_frcnn.inference.karyotype import karyotype_table, select_chromosomes, summarise_detections
from keras_frcnn.inference.report import distinct_file_names, write_annotated_image
from keras_frcnn.inference.review_page import describe_model, write_review_page

PROG = "test_frcnn.py"


def build_parser() -> common.ArgumentParser:
    parser = common.ArgumentParser(
        prog=PROG,
        description="Detect and label chromosomes with a trained model: annotated images, detections.csv "
        "and karyotype.csv (draft karyotypes, to be reviewed).",
    )
    common.add_path_argument(
        parser, "an image folder (png, jpg, jpeg, bmp, tif), one image, or an annotation file or folder "
        "(its images are used, its boxes ignored)",
    )
    common.add_parser_argument(parser)
    common.add_model_argument(parser)
    common.add_output_argument(parser, "test_output")
    common.add_batch_size_argument(parser)
    common.add_quiet_argument(parser)
    common.add_detection_arguments(parser, label_assignment=None)
    return parser


def keep_confident(detections: Detections, threshold: float) -> Detections:
    """The detections scoring at least ``threshold``."""
    keep = detections.scores >= threshold
    return Detections(detections.path, detections.boxes[keep], detections.scores[keep],
                      [label for label, k in zip(detections.labels, keep) if k])


def output_names(records: Sequence[ImageRecord]) -> list[str]:
    """A distinct ``<name>.png`` per record (its file name without extension; ``_2``, ``_3``... for repeats)."""
    stems = [os.path.splitext(os.path.basename(record.path))[0] or "image" for record in records]
    return distinct_file_names(stems, ".png")


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    records, model, threshold = common.detection_setup(args)
    class_names = model.class_names
    batch_size = resolve_batch_size(args.batch_size, model.frcnn_config.network)
    print(f"{len(records)} image(s) from {args.path}; model {args.model} ({len(class_names)} classes); "
          f"score threshold {threshold:g}; {batch_size} image(s) per model call")

    images_dir = os.path.join(args.output, "images")
    names = output_names(records)
    found: list[Detections] = []
    summaries = []
    seconds: list[float] = []
    began = time.perf_counter()
    for start, chunk, chunk_seconds in common.predict_in_chunks(model, records, batch_size):
        for offset, (raw, image_seconds) in enumerate(zip(chunk, chunk_seconds)):
            index = start + offset
            detections = common.in_label_scheme(keep_confident(raw, threshold), args.labels,
                                                min_score=args.karyotype_score)
            chromosomes = select_chromosomes(detections, min_score=args.karyotype_score)
            write_annotated_image(os.path.join(images_dir, names[index]), load_image(records[index]),
                                  chromosomes, class_names)
            summary = summarise_detections(detections, low_confidence=args.low_confidence,
                                           min_score=args.karyotype_score)
            summaries.append(summary)
            if not args.quiet:
                print(f"[{index + 1}/{len(records)}] {records[index].path}: {len(detections)} detections, "
                      f"draft {_shorten(summary.iscn_draft)}, {image_seconds:.3f} s"
                      f"{common.time_left_suffix(began, index + 1, len(records))}")
            found.append(detections)
        seconds += chunk_seconds

    detections_csv = os.path.join(args.output, "detections.csv")
    karyotype_csv = os.path.join(args.output, "karyotype.csv")
    write_detections_csv(detections_csv, found)
    table = karyotype_table(summaries)
    write_text(karyotype_csv, table.to_csv(index=False))
    report = write_review_page(
        args.output, images=records, detections=found, karyotypes=summaries, class_names=class_names,
        model_info=describe_model(args.model, network=model.frcnn_config.network, class_names=class_names),
        run_info={"Input": args.path, "Score threshold": f"{threshold:g} (lower-scoring detections are not kept)"},
        seconds_per_image=seconds, program=PROG, score_threshold=max(threshold, args.karyotype_score),
        low_confidence=args.low_confidence, karyotype_score=args.karyotype_score,
    )
    print(_timing_line(seconds, batch_size))
    review = int(table["needs_review"].sum())
    print(f"karyotypes: {review} of {len(table)} need review (all ISCN strings are drafts)")
    print(f"wrote {images_dir}{os.sep} ({len(records)} images), {detections_csv}, {karyotype_csv}, {report}")
    return 0


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _timing_line(seconds: Sequence[float], batch_size: int) -> str:
    """Mean time per image, and without the first batch (which includes start-up) when there is more."""
    line = f"time per image: mean {np.mean(seconds):.3f} s over {len(seconds)} image(s)"
    if len(seconds) > batch_size:
        line += f" ({np.mean(seconds[batch_size:]):.3f} s without the first batch, which includes start-up)"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``test_frcnn.py``: bad input is one line on stderr and exit status 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
