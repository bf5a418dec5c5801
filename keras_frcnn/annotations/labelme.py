"""LabelMe JSON files (one per image): every shape becomes the bounding box of its points.

Polygons, rectangles, lines, line strips and points give the box of their points; a circle
(centre, a point on the circle) gives the box of the circle. The image is ``imageData``
(base64, embedded) when present, and then the record's ``path`` is the JSON file itself;
otherwise it is ``imagePath``, relative to the JSON file's folder. ``imageWidth`` and
``imageHeight`` give the declared size. Problems are located as ``file.json: shape 3``.
"""

from __future__ import annotations

import base64
import binascii
import math
import os

import numpy as np

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.validation import (
    ParsedBox,
    ParsedImage,
    ProblemLog,
    read_checked,
    parse_numbers,
    read_json,
)


def parse_labelme(path: str, log: ProblemLog, data: object | None = None) -> list[ParsedImage]:
    """Parse one LabelMe JSON file, or every ``*.json`` of a folder (sorted by name).

    ``data`` is the already-loaded content of a single file (saves reading it twice).
    """
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(".json"))
        if not names:
            log.error(path, None, "no .json files in this folder")
        images = [_parse_file(os.path.join(path, name), log, None) for name in names]
    else:
        images = [_parse_file(path, log, data)]
    return [image for image in images if image is not None]


def read_labelme(
    path: str | os.PathLike,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read and check LabelMe JSON (a file or a folder); raise one error listing the first problem."""
    return read_checked(parse_labelme, path, "labelme", classes=classes, clip_boxes=clip_boxes,
                        check_images=check_images)


def _parse_file(path: str, log: ProblemLog, data: object | None) -> ParsedImage | None:
    if data is None:
        data = read_json(path, log)
        if data is None:
            return None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        log.error(path, None, "not a LabelMe file (no 'shapes' list)")
        return None
    image = _parsed_image(path, data, log)
    if image is None:
        return None
    for index, shape in enumerate(data["shapes"], 1):
        where = f"shape {index}"
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            log.error(path, where, "a shape must be an object with a 'label' string")
            continue
        box, message = _shape_box(shape.get("points"), str(shape.get("shape_type") or "polygon"))
        if message:
            log.error(path, where, message)
            continue
        image.boxes.append(ParsedBox(box, shape["label"].strip(), where))  # type: ignore[arg-type]
    return image


def _parsed_image(path: str, data: dict, log: ProblemLog) -> ParsedImage | None:
    width = _positive_int(data.get("imageWidth"), "imageWidth", path, log)
    height = _positive_int(data.get("imageHeight"), "imageHeight", path, log)
    encoded = data.get("imageData")
    if encoded:
        try:
            image_bytes = base64.b64decode(encoded)
        except (binascii.Error, TypeError, ValueError):
            log.error(path, None, "imageData is not valid base64")
            return None
        return ParsedImage(path=path, source=path, line=None, width=width, height=height, image_bytes=image_bytes)
    name = data.get("imagePath")
    if not isinstance(name, str) or not name.strip():
        log.error(path, None, "no image: imageData and imagePath are both missing")
        return None
    image_path = os.path.normpath(os.path.join(os.path.dirname(path), name.strip()))
    return ParsedImage(path=image_path, source=path, line=None, width=width, height=height)


def _positive_int(value: object, name: str, path: str, log: ProblemLog) -> int | None:
    if value is None:
        return None
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or number <= 0 or number != int(number):
        log.error(path, None, f"{name} must be a positive integer, not {value!r}")
        return None
    return int(value)


def _shape_box(points: object, shape_type: str) -> tuple[tuple[float, ...] | None, str | None]:
    """The shape's bounding box ``(x1, y1, x2, y2)``, or ``(None, message)``."""
    if not isinstance(points, list) or not points:
        return None, "the shape has no points"
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        return None, _bad_point(points)
    if shape_type == "circle" and len(array) == 2:
        (cx, cy), (ex, ey) = array.tolist()
        radius = math.hypot(ex - cx, ey - cy)
        return (cx - radius, cy - radius, cx + radius, cy + radius), None
    x1, y1 = array.min(axis=0)
    x2, y2 = array.max(axis=0)
    return (float(x1), float(y1), float(x2), float(y2)), None


def _bad_point(points: list) -> str:
    """The message for the first malformed point of a shape."""
    for index, point in enumerate(points, 1):
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            return f"point {index} is not an [x, y] pair"
        _, message = parse_numbers(point, (f"point {index} x", f"point {index} y"))
        if message:
            return message
    return "the points are not [x, y] pairs of numbers"
