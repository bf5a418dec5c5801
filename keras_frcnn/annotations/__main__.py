"""``python -m keras_frcnn.annotations check PATH``: summarise annotations and list every problem.

Exit status 0 when there is no error (warnings allowed), 2 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from keras_frcnn.annotations import FORMATS, check_annotations
from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.validation import CheckReport
from keras_frcnn.errors import EXIT_USER_ERROR, run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_frcnn.annotations", description="Check ground-truth annotations."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="summarise a data set and list every problem",
        description="Read annotations (CSV, LabelMe JSON file or folder, Pascal VOC XML file or folder, "
        "COCO JSON), print a summary and every problem. Exit 0 if there is no error, 2 otherwise.",
    )
    check.add_argument("path", metavar="PATH", help="annotation file or folder")
    check.add_argument("--classes", metavar="FILE", help="class list (one name a line, or JSON); others are errors")
    check.add_argument("--clip", action="store_true", help="clip boxes crossing the image border (a warning)")
    check.add_argument("--format", choices=FORMATS, help="the annotation format (default: from PATH)")
    check.add_argument("--no-images", action="store_true", help="do not open the images")
    return parser


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
    return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("check", "-h", "--help"):
        argv.insert(0, "check")  # `keras-frcnn-check PATH` means `... check PATH`
    args = build_parser().parse_args(argv)
    classes = ClassMap.from_file(args.classes) if args.classes else None
    report = check_annotations(
        args.path, classes, args.clip, format=args.format, check_images=not args.no_images
    )
    print(format_report(report))
    return 0 if report.ok else EXIT_USER_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (also the ``keras-frcnn-check`` console script): errors become one line, exit 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
