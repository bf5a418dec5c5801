"""Problems found in annotation files, and the checks all readers share.

A reader *parses* its format into :class:`ParsedImage` objects (numbers already converted,
coordinates already continuous ``x1, y1, x2, y2``), logging format-specific problems into a
:class:`ProblemLog`. :func:`build_records` then applies the same checks to every format:
readable image, declared size, box order, box inside the image (or clipped), class names,
duplicates. Nothing stops at the first problem: everything is collected, and
:func:`check_parsed` returns it all, in file order, as a :class:`CheckReport`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.images import ImageReadError, read_image_size
from keras_frcnn.annotations.label_schemes import SchemeReport, check_scheme, paper49_labels
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.errors import AnnotationError

ERROR = "error"
WARNING = "warning"

Location = int | str | None
"""Where in a file: a 1-based line number (CSV), a label such as ``"annotation 17"``, or None."""


@dataclass(frozen=True)
class Problem:
    """One problem of an annotation file; ``str`` gives ``path:line: message``."""

    path: str
    line: Location
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def where(self) -> str:
        if isinstance(self.line, int):
            return f"{self.path}:{self.line}"
        if self.line:
            return f"{self.path}: {self.line}"
        return self.path

    def __str__(self) -> str:
        prefix = "" if self.is_error else "warning: "
        return f"{self.where}: {prefix}{self.message}"


class ProblemLog:
    """The problems collected while reading one data set, in the order found."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def error(self, path: str, line: Location, message: str) -> None:
        self.problems.append(Problem(str(path), line, message, ERROR))

    def warning(self, path: str, line: Location, message: str) -> None:
        self.problems.append(Problem(str(path), line, message, WARNING))

    def note(self, message: str) -> None:
        """A fact about the data set worth a line in the check summary (not a problem)."""
        self.notes.append(message)


class AnnotationProblemsError(AnnotationError):
    """Raised by the readers when there are errors: the first one, and how many more.

    ``problems`` holds every error (the check command prints them all).
    """

    def __init__(self, problems: Sequence[Problem], checked_path: str):
        self.problems = list(problems)
        first = self.problems[0]
        line = first.line if isinstance(first.line, int) else None
        message = first.message if line is not None or not first.line else f"{first.line}: {first.message}"
        more = len(self.problems) - 1
        if more:
            noun = "problem" if more == 1 else "problems"
            message += (
                f" (and {more} more {noun}; run python -m keras_frcnn.annotations check "
                f"{shlex.quote(str(checked_path))})"
            )
        super().__init__(first.path, line, message)


@dataclass
class ParsedBox:
    """A box as parsed: continuous ``x1, y1, x2, y2`` (not yet checked), its class, where it is."""

    coords: tuple[float, float, float, float]
    label: str
    line: Location
    difficult: bool = False


@dataclass
class ParsedImage:
    """An image as parsed: resolved path, the annotation file naming it, declared size, boxes."""

    path: str
    source: str
    line: Location
    boxes: list[ParsedBox] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    image_bytes: bytes | None = None


Parser = Callable[[str, ProblemLog], list[ParsedImage]]


@dataclass
class CheckReport:
    """Everything read from an annotation path: the valid records and all problems."""

    path: str
    format: str
    records: list[ImageRecord]
    class_map: ClassMap | None
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    @property
    def num_boxes(self) -> int:
        return sum(r.num_boxes for r in self.records)

    def box_counts(self) -> dict[str, int]:
        """Boxes per class, in class-map order (classes without boxes included)."""
        counts = dict.fromkeys(self.class_map.names if self.class_map else (), 0)
        for record in self.records:
            for label in record.labels:
                counts[label] = counts.get(label, 0) + 1
        return counts

    def box_sizes(self) -> np.ndarray:
        """``[N, 2]`` float32 widths and heights of all boxes, in pixels."""
        boxes = [r.boxes for r in self.records if r.num_boxes]
        if not boxes:
            return np.zeros((0, 2), dtype=np.float32)
        boxes = np.concatenate(boxes)
        return np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)

    def raise_for_errors(self) -> None:
        """Raise :class:`AnnotationProblemsError` if there is any error."""
        if self.errors:
            raise AnnotationProblemsError(self.errors, self.path)


def parse_numbers(values: Sequence[object], names: Sequence[str]) -> tuple[list[float] | None, str | None]:
    """Convert coordinate values (text or JSON numbers) to finite floats.

    Returns ``(numbers, None)``, or ``(None, message)`` naming the first bad value.
    """
    numbers = []
    for value, name in zip(values, names):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, f"{name} is missing"
        if isinstance(value, bool):
            return None, f"{name} is not a number ({value!r})"
        try:
            number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None, f"{name} is not a number ({value!r})"
        if not math.isfinite(number):
            return None, f"{name} is not finite ({value!r})"
        numbers.append(number)
    return numbers, None


def read_json(path: str, log: ProblemLog) -> object | None:
    """A JSON file's content, or None after logging why it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except OSError as err:
        log.error(path, None, f"cannot read ({err.strerror})")
    except UnicodeDecodeError:
        log.error(path, None, "not UTF-8 text")
    except json.JSONDecodeError as err:
        log.error(path, err.lineno, f"invalid JSON ({err.msg})")
    return None


def check_parsed(
    parse: Parser,
    path: str,
    format: str,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
    labels: str = "as-is",
) -> CheckReport:
    """Parse ``path`` with ``parse``, turn its labels into the scheme ``labels`` (see
    :mod:`keras_frcnn.annotations.label_schemes`), check everything, return records and problems
    (never raises for a problem of the data; only for an unusable ``path``)."""
    path = os.fspath(path)
    log = ProblemLog()
    images = parse(path, log)
    if not images and not any(p.is_error for p in log.problems):
        log.error(path, None, "no annotations found (the file or folder is empty)")
    if labels != "as-is":
        _apply_scheme(images, labels, log)
    records = build_records(images, log, classes=classes, clip_boxes=clip_boxes, check_images=check_images)
    class_map = classes
    if class_map is None:
        labels = {box.label for image in images for box in image.boxes if box.label}
        if labels:
            class_map = ClassMap.from_labels(labels)
        elif images:
            log.error(path, None, "no objects annotated, so no class list can be made (give one)")
    return CheckReport(path, format, records, class_map, sorted(log.problems, key=_file_order), log.notes)


def _apply_scheme(images: list[ParsedImage], scheme: str, log: ProblemLog) -> None:
    """Relabel the parsed boxes in ``scheme`` (in place); its report becomes a note."""
    if check_scheme(scheme) != "paper49":
        return
    relabelled = touched = extra = 0
    for image in images:
        coords = np.asarray([box.coords for box in image.boxes], np.float64).reshape(-1, 4)
        labels, difficult, middle = paper49_labels(coords, [box.label for box in image.boxes])
        for box, label, hard in zip(image.boxes, labels, difficult):
            relabelled += box.label != label
            box.label, box.difficult = label, box.difficult or bool(hard)
        touched += middle > 0
        extra += middle
    note = SchemeReport(relabelled, touched, extra).note()
    if note:
        log.note(note)


def read_checked(parse: Parser, path: str | os.PathLike, format: str, **options) -> list[ImageRecord]:
    """:func:`check_parsed`, then one error naming the first problem (if any); the records.
    The body of every format's ``read_*`` function."""
    report = check_parsed(parse, os.fspath(path), format, **options)
    report.raise_for_errors()
    return report.records


def _file_order(problem: Problem) -> tuple:
    """Sort key putting problems in file order: by file, then line (``shape 10`` after ``shape 9``)."""
    if problem.line is None:
        return problem.path, 0
    if isinstance(problem.line, int):
        return problem.path, 1, problem.line
    parts = re.split(r"(\d+)", problem.line)
    return problem.path, 2, tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def build_records(
    images: Iterable[ParsedImage],
    log: ProblemLog,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Check parsed images and their boxes; return one :class:`ImageRecord` per image.

    Bad boxes are logged and left out; images that cannot be read are logged and kept
    (with their declared size), so that statistics still count them.
    """
    images = list(images)
    sizes = _read_sizes(images) if check_images else [None] * len(images)
    records = []
    for image, size in zip(images, sizes):
        width, height = _image_size(image, size, log)
        kept: list[ParsedBox] = []
        seen: dict[tuple, ParsedBox] = {}
        for box in image.boxes:
            key = (tuple(box.coords), box.label)
            if key in seen:
                first = seen[key].line
                where = f"line {first}" if isinstance(first, int) else (first or "an earlier box")
                log.warning(image.source, box.line, f"duplicate of {where} (ignored)")
                continue
            seen[key] = box
            coords = _checked_box(image, box, width, height, clip_boxes, classes, log)
            if coords is not None:
                kept.append(ParsedBox(coords, box.label, box.line, box.difficult))
        records.append(
            ImageRecord(
                path=image.path,
                boxes=np.asarray([b.coords for b in kept], dtype=np.float32).reshape(-1, 4),
                labels=tuple(b.label for b in kept),
                difficult=np.asarray([b.difficult for b in kept], dtype=bool),
                width=width,
                height=height,
                image_bytes=image.image_bytes,
            )
        )
    return records


def _read_sizes(images: list[ParsedImage]) -> list[tuple[int, int] | ImageReadError]:
    """Each image's ``(height, width)`` or the error reading it; every file is decoded once."""

    def size(image: ParsedImage) -> tuple[int, int] | ImageReadError:
        try:
            return read_image_size(image)
        except ImageReadError as err:
            return err

    # Files are keyed by path (several parsed images may name the same file); embedded images
    # are their own key.
    keys = [image.path if image.image_bytes is None else ("embedded", i) for i, image in enumerate(images)]
    unique: dict[object, ParsedImage] = {}
    for key, image in zip(keys, images):
        unique.setdefault(key, image)
    workers = max(1, min(8, os.cpu_count() or 1, len(unique)))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV decodes without the GIL
        results = dict(zip(unique, pool.map(size, unique.values())))
    return [results[key] for key in keys]


def _image_size(
    image: ParsedImage, size: tuple[int, int] | ImageReadError | None, log: ProblemLog
) -> tuple[int | None, int | None]:
    """``(width, height)`` to check the boxes against: the real size when read, else the declared one."""
    if isinstance(size, ImageReadError):
        if image.image_bytes is not None:
            log.error(image.source, image.line, f"cannot decode the embedded image ({size.reason})")
        else:
            log.error(image.source, image.line, f"cannot read image {image.path} ({size.reason})")
        return image.width, image.height
    if size is None:
        return image.width, image.height
    height, width = size
    declared = (image.width, image.height)
    if None not in declared and declared != (width, height):
        log.error(
            image.source,
            image.line,
            f"image {image.path} is {width}x{height} pixels but the annotation says "
            f"{image.width}x{image.height}",
        )
    return width, height


def _checked_box(
    image: ParsedImage,
    box: ParsedBox,
    width: int | None,
    height: int | None,
    clip_boxes: bool,
    classes: ClassMap | None,
    log: ProblemLog,
) -> tuple[float, float, float, float] | None:
    """The box's coordinates after the shared checks (clipped if asked), or None if it is bad."""
    x1, y1, x2, y2 = (float(c) for c in box.coords)
    where = (image.source, box.line)
    if not box.label:
        log.error(*where, "the class name is empty")
        return None
    if classes is not None and box.label not in classes:
        log.error(*where, f"unknown class {box.label!r} (not in the class list)")
        return None
    if x2 <= x1:
        log.error(*where, f"x2 ({x2!r}) must be greater than x1 ({x1!r})")
        return None
    if y2 <= y1:
        log.error(*where, f"y2 ({y2!r}) must be greater than y1 ({y1!r})")
        return None
    if width is None or height is None:
        return x1, y1, x2, y2
    if x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height:
        return x1, y1, x2, y2
    shown = f"box ({x1!r}, {y1!r}, {x2!r}, {y2!r})"
    if not clip_boxes:
        log.error(*where, f"{shown} extends outside the {width}x{height} image (--clip / clip_boxes=True clips it)")
        return None
    cx1, cy1 = max(x1, 0.0), max(y1, 0.0)
    cx2, cy2 = min(x2, float(width)), min(y2, float(height))
    if cx2 <= cx1 or cy2 <= cy1:
        log.error(*where, f"{shown} lies entirely outside the {width}x{height} image")
        return None
    log.warning(*where, f"{shown} clipped to the {width}x{height} image")
    return cx1, cy1, cx2, cy2
