"""``python -m keras_frcnn.annotations check PATH``: summarise annotations and list every problem;
``python -m keras_frcnn.annotations convert SRC OUT.csv``: write any supported format as the CSV.

Exit status 0 when there is no error (warnings allowed), 2 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

from keras_frcnn.annotations import FORMATS, SCHEMES, check_annotations, read_annotations, write_csv
from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.images import image_extension
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.validation import CheckReport
from keras_frcnn.atomic import atomic_path
from keras_frcnn.errors import EXIT_USER_ERROR, UserError, run_cli

COMMANDS = ("check", "convert")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_frcnn.annotations", description="Check ground-truth annotations."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="summarise a data set and list every problem",
        description="Read annotations (CSV, LabelMe JSON file or folder, Pascal VOC XML file or folder, "
        "COCO JSON, YOLO folder), print a summary and every problem. Exit 0 if there is no error, 2 otherwise.",
    )
    check.add_argument("path", metavar="PATH", help="annotation file or folder")
    _add_reading_arguments(check)
    check.add_argument("--no-images", action="store_true", help="do not open the images")
    convert = commands.add_parser(
        "convert",
        help="write annotations of any supported format as the project's CSV",
        description="Read annotations (CSV, LabelMe, Pascal VOC, COCO, YOLO), check them, and write the CSV "
        "filepath,x1,y1,x2,y2,class_name. Images embedded in LabelMe files are saved beside the CSV.",
    )
    convert.add_argument("path", metavar="SRC", help="annotation file or folder")
    convert.add_argument("output", metavar="OUT.csv", help="the CSV to write")
    _add_reading_arguments(convert)
    return parser


def _add_reading_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", metavar="FILE", help="class list (one name a line, or JSON); others are errors")
    parser.add_argument("--clip", action="store_true", help="clip boxes crossing the image border (a warning)")
    parser.add_argument("--format", choices=FORMATS, help="the annotation format (default: from PATH)")
    parser.add_argument("--labels", choices=SCHEMES, default="as-is",
                        help="as-is, or paper49: 24-class karyogram labels become the paper's 49 (N-l, N-r by "
                        "box centre x; see keras_frcnn.annotations.label_schemes)")


def format_report(report: CheckReport) -> str:
    """The check command's text: counts, boxes per class, box sizes, then every problem."""
    records = report.records
    empty = sum(1 for r in records if not r.num_boxes)
    classes = len(report.class_map) if report.class_map else 0
    lines = [
        f"{report.path} ({report.format})",
        f"images: {len(records)} ({empty} without boxes)",
        f"boxes: {report.num_boxes}",
        f"classes: {classes}",
    ]
    counts = report.box_counts()
    if counts:
        lines.append("boxes per class:")
        width = max(len(name) for name in counts)
        lines += [f"  {name:<{width}}  {count:>6}" for name, count in counts.items()]
    sizes = report.box_sizes()
    if len(sizes):
        lines.append(f"box size (pixels) {'min':>8} {'median':>8} {'max':>8}")
        columns = {"width": sizes[:, 0], "height": sizes[:, 1], "longer side": sizes.max(axis=1)}
        for name, values in columns.items():
            low, middle, high = np.min(values), np.median(values), np.max(values)
            lines.append(f"  {name:<15} {low:8.1f} {middle:8.1f} {high:8.1f}")
    errors, warnings = len(report.errors), len(report.warnings)
    if report.problems:
        lines.append(f"problems: {errors} {_plural(errors, 'error')}, {warnings} {_plural(warnings, 'warning')}")
        lines += [f"  {problem}" for problem in report.problems]
    else:
        lines.append("problems: none")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "check")  # `keras-frcnn-check PATH` means `... check PATH`
    args = build_parser().parse_args(argv)
    classes = ClassMap.from_file(args.classes) if args.classes else None
    if args.command == "convert":
        return convert(args.path, args.output, classes=classes, clip_boxes=args.clip, format=args.format,
                       labels=args.labels)
    report = check_annotations(
        args.path, classes, args.clip, format=args.format, check_images=not args.no_images, labels=args.labels
    )
    print(format_report(report))
    return 0 if report.ok else EXIT_USER_ERROR


def convert(source: str, output: str, **reading) -> int:
    """Read ``source`` (any format, checked), write it as the CSV ``output``; print what was written."""
    if not output.lower().endswith(".csv"):
        raise UserError(f"{output}: the output must be a .csv file")
    data = read_annotations(source, **reading)
    records = _save_embedded_images(data.records, os.path.splitext(output)[0] + "_images")
    with atomic_path(output) as temporary:
        write_csv(records, temporary)  # the temporary file is beside the output: same relative paths
    for warning in data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{output}: {len(records)} images, {data.num_boxes} boxes, {len(data.class_map)} classes")
    return 0


def _save_embedded_images(records: list[ImageRecord], folder: str) -> list[ImageRecord]:
    """Records whose image is embedded (LabelMe ``imageData``) now name a file written to ``folder``."""
    out = []
    for record in records:
        if record.image_bytes is not None:
            os.makedirs(folder, exist_ok=True)
            stem = os.path.splitext(os.path.basename(record.path))[0]
            path = os.path.join(folder, stem + image_extension(record.image_bytes))
            with atomic_path(path) as temporary, open(temporary, "wb") as handle:
                handle.write(record.image_bytes)
            record = ImageRecord(path, record.boxes, record.labels, record.difficult, record.width, record.height)
        out.append(record)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (also the ``keras-frcnn-check`` console script): errors become one line, exit 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
