"""COCO object-detection JSON: one file with ``images``, ``annotations`` and ``categories``.

``bbox`` is ``[x, y, width, height]`` in continuous pixels, giving ``x1 = x, x2 = x + width``.
Class names come from ``categories``; ``file_name`` is relative to the JSON file's folder.
Every image gets a record, also those without annotations; ``iscrowd`` boxes are marked
difficult. Problems are located as ``train.json: annotation 17`` (the annotation's id).
"""

from __future__ import annotations

import math
import os

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

_BBOX = ("bbox x", "bbox y", "bbox width", "bbox height")


def is_coco(data: object) -> bool:
    """True for parsed JSON that has COCO's ``images``, ``annotations`` and ``categories``."""
    return isinstance(data, dict) and all(key in data for key in ("images", "annotations", "categories"))


def parse_coco(path: str, log: ProblemLog, data: object | None = None) -> list[ParsedImage]:
    """Parse a COCO JSON file (``data``: its already-loaded content, if any)."""
    if data is None:
        data = read_json(path, log)
        if data is None:
            return []
    if not is_coco(data) or not all(isinstance(data[k], list) for k in ("images", "annotations", "categories")):
        log.error(path, None, "not a COCO file (needs 'images', 'annotations' and 'categories' lists)")
        return []
    categories = _categories(path, data["categories"], log)
    images = _images(path, data["images"], log)
    for index, annotation in enumerate(data["annotations"], 1):
        box = _parse_annotation(path, index, annotation, images, categories, log)
        if box is not None:
            images[annotation["image_id"]].boxes.append(box)
    return list(images.values())


def read_coco(
    path: str | os.PathLike,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read and check a COCO JSON file; raise one error listing the first problem."""
    return read_checked(parse_coco, path, "coco", classes=classes, clip_boxes=clip_boxes, check_images=check_images)


def _categories(path: str, entries: list, log: ProblemLog) -> dict[object, str]:
    names: dict[object, str] = {}
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not _is_id(entry.get("id")) or not isinstance(entry.get("name"), str):
            log.error(path, f"category {index}", "needs an 'id' and a 'name'")
        elif entry["id"] in names:
            log.error(path, f"category {entry['id']}", "duplicate category id")
        else:
            names[entry["id"]] = entry["name"].strip()
    return names


def _images(path: str, entries: list, log: ProblemLog) -> dict[object, ParsedImage]:
    folder = os.path.dirname(path)
    images: dict[object, ParsedImage] = {}
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not _is_id(entry.get("id")):
            log.error(path, f"image {index}", "needs an 'id'")
            continue
        where = f"image {entry['id']}"
        name = entry.get("file_name")
        if not isinstance(name, str) or not name.strip():
            log.error(path, where, "needs a 'file_name'")
        elif entry["id"] in images:
            log.error(path, where, "duplicate image id")
        else:
            images[entry["id"]] = ParsedImage(
                path=os.path.normpath(os.path.join(folder, name.strip())),
                source=path,
                line=where,
                width=_dimension(entry.get("width")),
                height=_dimension(entry.get("height")),
            )
    return images


def _parse_annotation(
    path: str,
    index: int,
    annotation: object,
    images: dict[object, ParsedImage],
    categories: dict[object, str],
    log: ProblemLog,
) -> ParsedBox | None:
    if not isinstance(annotation, dict):
        log.error(path, f"annotation {index}", "must be a JSON object")
        return None
    where = f"annotation {annotation['id']}" if _is_id(annotation.get("id")) else f"annotation {index}"
    image_id, category_id = annotation.get("image_id"), annotation.get("category_id")
    if not _is_id(image_id) or image_id not in images:
        log.error(path, where, f"image_id {image_id!r} is not in 'images'")
        return None
    if not _is_id(category_id) or category_id not in categories:
        log.error(path, where, f"category_id {category_id!r} is not in 'categories'")
        return None
    bbox = annotation.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        log.error(path, where, f"bbox must be [x, y, width, height], not {bbox!r}")
        return None
    numbers, message = parse_numbers(bbox, _BBOX)
    if message:
        log.error(path, where, message)
        return None
    x, y, width, height = numbers  # type: ignore[misc]
    if width <= 0 or height <= 0:
        name, value = ("width", width) if width <= 0 else ("height", height)
        log.error(path, where, f"bbox {name} ({value!r}) must be positive")
        return None
    crowd = bool(annotation.get("iscrowd", 0))
    return ParsedBox((x, y, x + width, y + height), categories[category_id], where, crowd)


def _is_id(value: object) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _dimension(value: object) -> int | None:
    """A declared ``width``/``height``; anything but a positive whole number counts as unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if value > 0 and value == int(value) else None
