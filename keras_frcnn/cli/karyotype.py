"""``karyotype_frcnn.py``: from metaphase spreads to karyograms and draft karyotypes.

Runs a trained chromosome model (the 24 classes ``1``..``22``, ``X``, ``Y`` or the paper's 49
labels) on each spread, keeps the chromosomes a karyotype counts (as ``test_frcnn.py`` does) and
writes, all atomically, in ``--output``:

- ``<image name>/karyogram.png``: the counted chromosomes cut out, upright, in ISCN rows at one
  scale, numbered in reading order; uncertain ones (score < ``--low-confidence``) framed in orange
  with a ``?``; groups gained or lost named in red (:mod:`keras_frcnn.inference.karyogram`);
- ``<image name>/spread.png``: the spread with the counted chromosomes' boxes, labels and their
  karyogram numbers (``#12``), to cross-reference the two;
- ``<image name>/karyotype.json``: the draft karyotype (:class:`~keras_frcnn.inference.karyotype.KaryotypeSummary`:
  counts, total, sex chromosomes, gains, losses, ``iscn_draft``, review items), the confidence behind
  it and every counted chromosome (number, label, score, box, turn);
- ``karyotypes.csv``: one row per spread (the columns of ``test_frcnn.py``'s ``karyotype.csv``).

Every ISCN string is a draft for a cytogeneticist to review.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Sequence

import numpy as np

from keras_frcnn.annotations.classes import chromosome_classes, chromosome_labels, chromosome_of
from keras_frcnn.annotations.images import load_image
from keras_frcnn.atomic import write_json, write_text
from keras_frcnn.cli import common
from keras_frcnn.cli.test import keep_confident, output_names
from keras_frcnn.inference.detections import Detections
from keras_frcnn.errors import UserError, run_cli
from keras_frcnn.inference.karyogram import BACKGROUNDS, Karyogram, draw_numbers, render_karyogram
from keras_frcnn.inference.karyotype import KaryotypeSummary, karyotype_table, select_chromosomes, summarise_detections
from keras_frcnn.inference.report import draw_detections, save_image
from keras_frcnn.inference.review_page import describe_model, write_review_page

PROG = "karyotype_frcnn.py"
KARYOGRAM_FILE = "karyogram.png"
SPREAD_FILE = "spread.png"
KARYOTYPE_FILE = "karyotype.json"
TABLE_FILE = "karyotypes.csv"


def build_parser() -> common.ArgumentParser:
    parser = common.ArgumentParser(
        prog=PROG,
        description="Detect the chromosomes of metaphase spreads with a trained model and write, per spread, a "
        "karyogram, the spread with numbered boxes and a draft karyotype (karyotype.json); karyotypes.csv "
        "lists them all. Every ISCN string is a draft, to be reviewed.",
    )
    common.add_path_argument(
        parser, "a metaphase spread, a folder of them (png, jpg, jpeg, bmp, tif), or an annotation file or "
        "folder (its images are used, its boxes ignored)",
    )
    common.add_parser_argument(parser)
    common.add_model_argument(parser)
    common.add_output_argument(parser, "karyotype_output")
    common.add_batch_size_argument(parser)
    common.add_quiet_argument(parser)
    common.add_detection_arguments(parser, label_assignment="karyotype")
    parser.add_argument("--background", choices=BACKGROUNDS, default="white",
                        help="karyogram background: white (dark chromosomes, default) or black (bright ones), "
                        "whatever the staining of the spread")
    parser.add_argument("--no-mask", dest="mask", action="store_false",
                        help="show each chromosome's whole box instead of masking it to the chromosome")
    parser.add_argument("--scale", type=common.positive_float, default=None, metavar="S",
                        help="karyogram pixels per spread pixel, the same for every chromosome (default: the "
                        "longest chromosome 150 pixels tall)")
    return parser


def check_chromosome_classes(class_names: Sequence[str], model_path: str) -> None:
    """Raise a :class:`UserError` unless the model's classes cover every chromosome ``1``..``22``,
    ``X``, ``Y`` (as the 24 classes, the 49 labels or a mix), saying which classes it has."""
    covered = {chromosome_of(name) for name in class_names}
    missing = [c for c in chromosome_classes() if c not in covered]
    if missing:
        has = _short_list(class_names)
        raise UserError(
            f"{model_path}: not a chromosome model: its {len(class_names)} classes are {has}, missing chromosome(s) "
            f"{_short_list(missing)}; a karyotype needs the 24 classes {_short_list(chromosome_classes())} or the "
            f"49 labels {_short_list(chromosome_labels())}"
        )


def _short_list(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names) if len(names) <= limit else ", ".join(names[:3] + ["..."] + names[-2:])


def confidence(chromosomes: Detections, *, low_confidence: float) -> dict:
    """The confidence behind a draft karyotype: mean and minimum score of the counted chromosomes
    (those with a chromosome label), how many score below ``low_confidence``."""
    scores = np.asarray([s for s, label in zip(chromosomes.scores, chromosomes.labels) if chromosome_of(label)],
                        np.float64)
    return {
        "counted": int(len(scores)),
        "mean_score": round(float(scores.mean()), 4) if len(scores) else None,
        "min_score": round(float(scores.min()), 4) if len(scores) else None,
        "low_confidence": low_confidence,
        "below_low_confidence": int((scores < low_confidence).sum()),
    }


def karyotype_record(summary: KaryotypeSummary, chromosomes: Detections, karyogram: Karyogram, *,
                     low_confidence: float, karyotype_score: float) -> dict:
    """The content of ``karyotype.json``: the fields of ``summary`` (as :func:`summarise_detections`
    gives them), ``confidence`` (:func:`confidence`, with ``review_items`` and ``karyotype_score``),
    the output files and every counted chromosome in karyogram order."""
    record = json_ready(dataclasses.asdict(summary))
    record["confidence"] = {
        **confidence(chromosomes, low_confidence=low_confidence),
        "karyotype_score": karyotype_score,
        "review_items": len(summary.review_items),
    }
    record["files"] = {"karyogram": KARYOGRAM_FILE, "spread": SPREAD_FILE}
    order = np.argsort(np.asarray(karyogram.numbers), kind="stable")
    record["chromosomes"] = [
        {
            "number": int(karyogram.numbers[i]),
            "label": chromosomes.labels[i],
            "chromosome": chromosome_of(chromosomes.labels[i]),
            "score": round(float(chromosomes.scores[i]), 4),
            "low_confidence": bool(chromosomes.scores[i] < low_confidence),
            "box": [round(float(v), 1) for v in chromosomes.boxes[i]],
            "turned_degrees": round(float(karyogram.angles[i]), 1),
            "masked": bool(karyogram.masked[i]),
        }
        for i in order
    ]
    return record


def json_ready(value):
    """Tuples as lists, recursively (what ``json`` writes), so records compare with their file."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def write_spread(folder: str, image: np.ndarray, detections: Detections, class_names: Sequence[str], *,
                 karyotype_score: float = 0.3, low_confidence: float = 0.5, title: str = "",
                 background: str = "white", mask: bool = True, scale: float | None = None) -> KaryotypeSummary:
    """Write ``karyogram.png``, ``spread.png`` and ``karyotype.json`` (last) of one spread's
    ``detections`` in ``folder``; returns its :func:`summarise_detections`."""
    chromosomes = select_chromosomes(detections, min_score=karyotype_score)
    summary = summarise_detections(detections, low_confidence=low_confidence, min_score=karyotype_score)
    heading = f"{title}: " if title else ""
    karyogram = render_karyogram(
        image, chromosomes, low_confidence=low_confidence, title=f"{heading}{summary.iscn_draft} ({summary.iscn_status})",
        highlight={change[1:] for change in summary.gains + summary.losses}, scale=scale, background=background,
        mask=mask,
    )
    spread = draw_numbers(draw_detections(image, chromosomes, class_names, show_scores=False), chromosomes.boxes,
                          karyogram.numbers)
    save_image(os.path.join(folder, KARYOGRAM_FILE), karyogram.image)
    save_image(os.path.join(folder, SPREAD_FILE), spread)
    write_json(os.path.join(folder, KARYOTYPE_FILE), karyotype_record(
        summary, chromosomes, karyogram, low_confidence=low_confidence, karyotype_score=karyotype_score))
    return summary


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    records, model, threshold = common.detection_setup(args)
    class_names = model.class_names
    check_chromosome_classes(class_names, args.model)
    print(f"{len(records)} spread(s) from {args.path}; model {args.model} ({len(class_names)} classes, label "
          f"assignment {args.label_assignment}); score threshold {threshold:g}")

    folders = [os.path.splitext(name)[0] for name in output_names(records)]
    summaries: list[KaryotypeSummary] = []
    found: list[Detections] = []
    began = time.perf_counter()
    seconds: list[float] = []
    for start, chunk, chunk_seconds in common.predict_in_chunks(model, records, args.batch_size):
        seconds += chunk_seconds
        for offset, raw in enumerate(chunk):
            index = start + offset
            detections = common.in_label_scheme(keep_confident(raw, threshold), args.labels,
                                                min_score=args.karyotype_score)
            folder = os.path.join(args.output, folders[index])
            summary = write_spread(
                folder, load_image(records[index]), detections, class_names, karyotype_score=args.karyotype_score,
                low_confidence=args.low_confidence, title=os.path.basename(records[index].path),
                background=args.background, mask=args.mask, scale=args.scale,
            )
            summaries.append(summary)
            found.append(detections)
            if not args.quiet:
                print(f"[{index + 1}/{len(records)}] {records[index].path}: {summary.total} chromosomes, draft "
                      f"{summary.iscn_draft} -> {folder}{os.sep}{common.time_left_suffix(began, index + 1, len(records))}")

    table_path = os.path.join(args.output, TABLE_FILE)
    table = karyotype_table(summaries)
    write_text(table_path, table.to_csv(index=False))
    report = write_review_page(
        args.output, images=records, detections=found, karyotypes=summaries, class_names=class_names,
        karyograms=[os.path.join(args.output, folder, KARYOGRAM_FILE) for folder in folders],
        model_info=describe_model(args.model, network=model.frcnn_config.network, class_names=class_names),
        run_info={"Input": args.path, "Score threshold": f"{threshold:g}",
                  "Label assignment": args.label_assignment},
        seconds_per_image=seconds, program=PROG, title="Karyotype review",
        score_threshold=max(threshold, args.karyotype_score), low_confidence=args.low_confidence,
        karyotype_score=args.karyotype_score,
    )
    review = int(table["needs_review"].sum())
    print(f"karyotypes: {review} of {len(table)} need review (all ISCN strings are drafts)")
    print(f"wrote {KARYOGRAM_FILE}, {SPREAD_FILE} and {KARYOTYPE_FILE} for {len(records)} spread(s) in "
          f"{args.output}{os.sep}<image name>{os.sep}, {table_path} and {report}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``karyotype_frcnn.py``: bad input is one line on stderr and exit status 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
