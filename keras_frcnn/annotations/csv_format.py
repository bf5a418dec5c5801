"""The keras-frcnn CSV format: ``filepath,x1,y1,x2,y2,class_name``, one box a line.

- The header line is optional: a first line whose four coordinates are words (``x1``,
  ``xmin``...) is skipped.
- Coordinates are pixels, continuous (``x2 - x1`` is the width), integers or floats.
- A relative ``filepath`` is relative to the CSV file's folder.
- An image without objects is one line ``filepath,,,,,``.
- The lines of one image need not be adjacent; images keep their first-appearance order.
- Fields follow the usual CSV quoting (a path with a comma is written in double quotes).

See ``annotations/README.md`` at the repository root for an example.
"""

from __future__ import annotations

import csv
import os
import re
from typing import Iterable, Iterator

import numpy as np

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.validation import ParsedBox, ParsedImage, ProblemLog, parse_numbers, read_checked
from keras_frcnn.errors import UserError

COLUMNS = ("filepath", "x1", "y1", "x2", "y2", "class_name")
_COORDINATES = COLUMNS[1:5]
_HEADER_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")


def parse_csv(path: str, log: ProblemLog) -> list[ParsedImage]:
    """Parse a CSV annotation file; problems of its lines go to ``log`` with their line number."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _parse_rows(path, _numbered_rows(handle), log)
    except OSError as err:
        log.error(path, None, f"cannot read ({err.strerror})")
    except UnicodeDecodeError:
        log.error(path, None, "not UTF-8 text")
    except _CsvSyntaxError as err:
        log.error(path, err.line, f"invalid CSV ({err.message})")
    return []


def read_csv(
    path: str | os.PathLike,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read and check a CSV annotation file; raise one error listing the first problem."""
    return read_checked(parse_csv, path, "csv", classes=classes, clip_boxes=clip_boxes, check_images=check_images)


def write_csv(records: Iterable[ImageRecord], path: str | os.PathLike) -> None:
    """Write records as a CSV annotation file (with header; paths relative to its folder when inside it)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for record in records:
            if record.image_bytes is not None:
                raise UserError(f"{record.path}: the image is embedded in its annotation; save it to a file first")
            name = _relative_path(record.path, folder)
            if not record.num_boxes:
                writer.writerow([name, "", "", "", "", ""])
            for box, label in zip(record.boxes, record.labels):
                writer.writerow([name, *(_format_number(v) for v in box), label])


class _CsvSyntaxError(Exception):
    def __init__(self, line: int, message: str):
        self.line = line
        self.message = message


def _numbered_rows(handle) -> Iterator[tuple[int, list[str]]]:
    """``(first line number, fields)`` of each CSV record (a quoted field may span lines)."""
    reader = csv.reader(handle)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise _CsvSyntaxError(reader.line_num, str(err)) from None
        yield line, row
        line = reader.line_num + 1


def _parse_rows(path: str, rows: Iterable[tuple[int, list[str]]], log: ProblemLog) -> list[ParsedImage]:
    folder = os.path.dirname(path)
    images: dict[str, ParsedImage] = {}
    resolved: dict[str, str] = {}
    first_row = True
    any_row = False
    for line, row in rows:
        if not any(field.strip() for field in row):
            continue  # blank line
        if first_row:
            first_row = False
            if _is_header(row):
                continue
        any_row = True
        if len(row) != len(COLUMNS):
            log.error(path, line, f"expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), found {len(row)}")
            continue
        name, *coordinates, label = (field.strip() for field in row)
        if not name:
            log.error(path, line, "the image path (first column) is empty")
            continue
        image_path = resolved.get(name)
        if image_path is None:
            image_path = resolved[name] = os.path.normpath(os.path.join(folder, name))
        image = images.get(image_path)
        if image is None:
            image = images[image_path] = ParsedImage(path=image_path, source=path, line=line)
        if not label and not any(coordinates):
            continue  # an image without objects
        numbers, message = parse_numbers(coordinates, _COORDINATES)
        if message:
            log.error(path, line, message)
            continue
        image.boxes.append(ParsedBox(tuple(numbers), label, line))  # type: ignore[arg-type]
    if not any_row:
        log.error(path, None, "no annotations (the file is empty" + (")" if first_row else " but for its header)"))
    return list(images.values())


def _is_header(row: list[str]) -> bool:
    """A first line naming the columns: its four coordinates are words such as ``x1`` or ``xmin``."""
    if len(row) != len(COLUMNS):
        return False
    for field in row[1:5]:
        field = field.strip()
        if not _HEADER_WORD.fullmatch(field):
            return False
        try:
            float(field)  # "nan", "inf" are numbers, not names
            return False
        except ValueError:
            pass
    return True


def _relative_path(path: str, folder: str) -> str:
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute, folder)
    except ValueError:  # another drive (Windows)
        return absolute
    outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
    return absolute if outside else relative


def _format_number(value: float) -> str:
    """Shortest text that reads back to the same float32."""
    return np.format_float_positional(np.float32(value), trim="-")
