"""Detections of one image, and the detections CSV: ``filepath,x1,y1,x2,y2,class_name,score``.

An image with no detections is written as ``filepath,,,,,,`` so that it is still listed (and
evaluated as "nothing found") when the file is read back.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from keras_frcnn.atomic import atomic_path
from keras_frcnn.errors import AnnotationError, UserError

CSV_HEADER = ("filepath", "x1", "y1", "x2", "y2", "class_name", "score")


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one image: ``boxes`` float32 ``[K, 4]`` (x1, y1, x2, y2, continuous
    coordinates), ``scores`` float32 ``[K]``, ``labels`` the K class names."""

    path: str
    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "path", os.fspath(self.path))
        object.__setattr__(self, "boxes", np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float32).reshape(-1))
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        if not (len(self.boxes) == len(self.scores) == len(self.labels)):
            raise ValueError(
                f"{self.path}: {len(self.boxes)} boxes, {len(self.scores)} scores, {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls, path: str) -> "Detections":
        """An image in which nothing was detected."""
        return cls(path, np.zeros((0, 4), np.float32), np.zeros(0, np.float32), ())


def _format_number(value: float) -> str:
    """Shortest text that reads back as the same float32 (``12``, ``0.1``, ``0.987``)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def write_detections_csv(path: str | os.PathLike, detections: Iterable[Detections]) -> None:
    """Write detections (header line first) atomically (:func:`keras_frcnn.atomic.atomic_path`)."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for image in detections:
            if len(image) == 0:
                writer.writerow([image.path, "", "", "", "", "", ""])
                continue
            for box, label, score in zip(image.boxes, image.labels, image.scores):
                writer.writerow([image.path, *(_format_number(v) for v in box), label, _format_number(score)])


def _parse_row(path: str, line: int, row: list[str]) -> tuple[str, tuple[float, ...] | None, str, float]:
    if len(row) != len(CSV_HEADER):
        raise AnnotationError(path, line, f"expected {len(CSV_HEADER)} fields ({','.join(CSV_HEADER)}), got {len(row)}")
    filepath, *coords, label, score = (field.strip() for field in row)
    if not filepath:
        raise AnnotationError(path, line, "empty filepath")
    rest = [*coords, label, score]
    if not any(rest):
        return filepath, None, "", 0.0  # an image with no detections
    if not all(rest):
        names = [name for name, value in zip(CSV_HEADER[1:], rest) if not value]
        raise AnnotationError(path, line, f"missing value for {', '.join(names)}")
    numbers = []
    for name, text in zip(CSV_HEADER[1:5] + ("score",), [*coords, score]):
        try:
            value = float(text)
        except ValueError:
            raise AnnotationError(path, line, f"{name} is not a number: {text!r}") from None
        if not math.isfinite(value):
            raise AnnotationError(path, line, f"{name} is not finite: {text!r}")
        numbers.append(value)
    x1, y1, x2, y2, score_value = numbers
    if x2 < x1 or y2 < y1:
        raise AnnotationError(path, line, f"inverted box ({x1}, {y1}, {x2}, {y2}): need x1 <= x2 and y1 <= y2")
    return filepath, (x1, y1, x2, y2), label, score_value


def _is_other_header(row: list[str]) -> bool:
    """A first line of column names other than :data:`CSV_HEADER` (its second field is a word)."""
    second = row[1].strip() if len(row) > 1 else ""
    if not second:
        return False
    try:
        float(second)
    except ValueError:
        return second[0].isalpha() or second[0] == "_"
    return False


def read_detections_csv(path: str | os.PathLike) -> list[Detections]:
    """Read a detections CSV (header line optional); one :class:`Detections` per image, in order of
    first appearance. A bad row raises :class:`UserError` ``file:line: problem``."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader]
    except OSError as err:
        raise UserError(f"{path}: cannot read detections ({err.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: not a readable CSV file ({err})") from None
    grouped: dict[str, tuple[list, list, list]] = {}
    for index, (line, row) in enumerate(rows):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if index == 0 and tuple(field.strip().lower() for field in row) == CSV_HEADER:
            continue
        if index == 0 and _is_other_header(row):
            raise AnnotationError(
                path, line, f"unknown columns {','.join(f.strip() for f in row)} (expected {','.join(CSV_HEADER)})"
            )
        filepath, box, label, score = _parse_row(path, line, row)
        boxes, labels, scores = grouped.setdefault(filepath, ([], [], []))
        if box is not None:
            boxes.append(box)
            labels.append(label)
            scores.append(score)
    return [
        Detections(filepath, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32), labels)
        for filepath, (boxes, labels, scores) in grouped.items()
    ]
