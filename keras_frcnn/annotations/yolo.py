"""YOLO / Ultralytics annotations: ``images/`` + ``labels/`` folders, class names from ``data.yaml``.

Layouts read (``path`` is any of them):

- a folder with ``images/`` and ``labels/`` (one ``.txt`` per image, same relative path and stem);
- the Ultralytics split layout: ``train/images``, ``train/labels``, ``valid/...``, ``test/...``
  (every split found is read, in that order);
- a ``data.yaml`` file: its ``train``, ``val`` and ``test`` entries (image folders, relative to its
  ``path`` entry or to the file's folder) are read.

Class names: ``names`` of a ``data.yaml`` (a list, or a dict ``{index: name}``) or a
``classes.txt`` (one name a line), looked for in the folder and up to two folders above it.

A label line is ``class x_center y_center width height``, relative to the image size (so each
image's size is read from its header); an Ultralytics segment line ``class x1 y1 x2 y2 ...``
(three or more points) becomes the box of its points. A corner outside ``[0, 1]`` by no more
than :data:`ROUNDING` is put on the border; further out it is an error (or, with
``clip_boxes``, clipped with a warning). An image without a label file is an image without
objects; a label file without an image is an error. Problems are located as ``file.txt:LINE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.validation import ParsedBox, ParsedImage, ProblemLog, parse_numbers, read_checked

ROUNDING = 1e-4
"""How far (relative to the image size) a corner may lie outside ``[0, 1]`` and still count as rounding."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLITS = ("train", "valid", "val", "test")
_BOX_FIELDS = ("x_center", "y_center", "width", "height")


@dataclass(frozen=True)
class YoloFolder:
    """One ``images/`` folder and the ``labels/`` folder beside it."""

    images: str
    labels: str


def is_yolo(path: str) -> bool:
    """True for a ``data.yaml`` file or a folder in one of the YOLO layouts."""
    if os.path.isfile(path):
        return path.lower().endswith((".yaml", ".yml"))
    return bool(os.path.isdir(path) and (_pair(path) or any(_pair(os.path.join(path, s)) for s in SPLITS)))


def parse_yolo(path: str, log: ProblemLog) -> list[ParsedImage]:
    """Parse a YOLO data set (see the module docstring); problems go to ``log``."""
    if os.path.isfile(path):
        data = _read_yaml(path, log)
        if data is None:
            return []
        names = _names_from_yaml(data, path, log)
        if any(data.get(key) for key in ("train", "val", "test")):
            folders = _yaml_folders(path, data, log)
        else:  # a data.yaml beside images/ and labels/ (or the split folders)
            folders = _layout_folders(os.path.dirname(os.path.abspath(path)), log)
    else:
        folders = _layout_folders(path, log)
        names = _find_names(path, log) if folders else None
    if names is None:
        return []
    images: list[ParsedImage] = []
    for folder in folders:
        images += _parse_folder(folder, names, log)
    unlabelled = sum(1 for image in images if image.source == image.path)
    if unlabelled:
        log.note(f"{unlabelled} of {len(images)} images have no label file: read as images without objects")
    return images


def read_yolo(
    path: str | os.PathLike,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read and check a YOLO data set; raise one error naming the first problem."""
    return read_checked(parse_yolo, path, "yolo", classes=classes, clip_boxes=clip_boxes, check_images=check_images)


# ----------------------------------------------------------------------------- layout
def _layout_folders(folder: str, log: ProblemLog) -> list[YoloFolder]:
    """``folder``'s ``images/`` + ``labels/``, else those of its split folders (train, valid, val, test)."""
    folders = [pair for pair in [_pair(folder)] if pair] or [
        pair for split in SPLITS if (pair := _pair(os.path.join(folder, split)))
    ]
    if not folders:
        log.error(folder, None, "not a YOLO folder (no images/ and labels/ folders, nor train/images ...)")
    return folders


def _pair(folder: str) -> YoloFolder | None:
    images, labels = os.path.join(folder, "images"), os.path.join(folder, "labels")
    return YoloFolder(images, labels) if os.path.isdir(images) and os.path.isdir(labels) else None


def _read_yaml(path: str, log: ProblemLog) -> dict | None:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        log.error(path, None, f"cannot read ({err.strerror})")
        return None
    except UnicodeDecodeError:
        log.error(path, None, "not UTF-8 text")
        return None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        log.error(path, mark.line + 1 if mark else None, f"invalid YAML ({getattr(err, 'problem', None) or err})")
        return None
    if not isinstance(data, dict):
        log.error(path, None, "expected a YAML mapping with 'names' (and 'train', 'val', 'test')")
        return None
    return data


def _names_from_yaml(data: dict, path: str, log: ProblemLog) -> list[str] | None:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            indexed = {int(key): str(value) for key, value in names.items()}
        except (TypeError, ValueError):
            log.error(path, None, "'names' as a mapping must have integer keys")
            return None
        if sorted(indexed) != list(range(len(indexed))):
            log.error(path, None, f"'names' keys must be 0..{len(indexed) - 1} without gaps")
            return None
        return [indexed[i] for i in range(len(indexed))]
    if isinstance(names, list) and names:
        return [str(name) for name in names]
    log.error(path, None, "no class names: 'names' must be a non-empty list or a {index: name} mapping")
    return None


def _yaml_folders(path: str, data: dict, log: ProblemLog) -> list[YoloFolder]:
    """The image folders a data.yaml lists (``train``, ``val``, ``test``), each with its labels."""
    root = os.path.dirname(os.path.abspath(path))
    base = data.get("path")
    if isinstance(base, str) and base.strip():
        base = os.path.join(root, base) if not os.path.isabs(base) else base
        if not os.path.isdir(base):
            base = root  # an exported data.yaml often keeps the exporting machine's 'path'
    else:
        base = root
    folders: list[YoloFolder] = []
    for key in ("train", "val", "test"):
        entries = data.get(key)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            images = os.path.normpath(os.path.join(base, str(entry)))
            if not os.path.isdir(images):
                log.error(path, None, f"'{key}': {images} is not a folder")
                continue
            labels = _labels_folder(images)
            if not os.path.isdir(labels):
                log.error(path, None, f"'{key}': no labels folder {labels} beside {images}")
                continue
            folder = YoloFolder(images, labels)
            if folder not in folders:
                folders.append(folder)
    return folders


def _labels_folder(images: str) -> str:
    """Ultralytics' rule: the last ``images`` of the path becomes ``labels``."""
    head, tail = os.path.split(os.path.normpath(images))
    if tail == "images":
        return os.path.join(head, "labels")
    parts = os.path.normpath(images).split(os.sep)
    if "images" in parts:
        index = len(parts) - 1 - parts[::-1].index("images")
        parts[index] = "labels"
        return os.sep.join(parts)
    return os.path.join(head, "labels")


def _find_names(folder: str, log: ProblemLog) -> list[str] | None:
    """Class names from ``data.yaml`` / ``classes.txt`` in ``folder`` or up to two folders above."""
    here = os.path.abspath(folder)
    for _ in range(3):
        for name in ("data.yaml", "data.yml", "dataset.yaml"):
            candidate = os.path.join(here, name)
            if os.path.isfile(candidate):
                data = _read_yaml(candidate, log)
                return None if data is None else _names_from_yaml(data, candidate, log)
        candidate = os.path.join(here, "classes.txt")
        if os.path.isfile(candidate):
            return _names_from_text(candidate, log)
        here = os.path.dirname(here)
    log.error(folder, None, "no class names: put a data.yaml ('names') or a classes.txt beside images/ and labels/")
    return None


def _names_from_text(path: str, log: ProblemLog) -> list[str] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            names = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as err:
        log.error(path, None, f"cannot read ({getattr(err, 'strerror', None) or 'not UTF-8 text'})")
        return None
    while names and not names[-1]:
        names.pop()
    if not names:
        log.error(path, None, "no class names in this file")
        return None
    return names


# ----------------------------------------------------------------------------- labels
def _parse_folder(folder: YoloFolder, names: list[str], log: ProblemLog) -> list[ParsedImage]:
    images = _files(folder.images, IMAGE_EXTENSIONS)
    labels = _files(folder.labels, (".txt",))
    for stem in sorted(set(labels) - set(images)):
        log.error(labels[stem], None, f"no image for this label file in {folder.images}")
    parsed = []
    for stem in sorted(images):
        image_path = images[stem]
        label_path = labels.get(stem)
        image = ParsedImage(path=image_path, source=label_path or image_path, line=None)
        if label_path is None:
            parsed.append(image)  # no label file: an image without objects
            continue
        size = _header_size(image_path)
        if size is None:
            log.error(label_path, None, f"cannot read the size of image {image_path}")
            parsed.append(image)
            continue
        image.width, image.height = size
        image.boxes = _parse_label_file(label_path, names, size, log)
        parsed.append(image)
    return parsed


def _files(folder: str, extensions: tuple[str, ...]) -> dict[str, str]:
    """``{relative path without extension: path}`` of the files under ``folder`` with these extensions."""
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            stem, extension = os.path.splitext(name)
            if extension.lower() in extensions:
                key = os.path.relpath(os.path.join(root, stem), folder)
                found.setdefault(key, os.path.join(root, name))
    return found


def _header_size(path: str) -> tuple[int, int] | None:
    """``(width, height)`` from the image file's header (Pillow reads no pixels for this)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _parse_label_file(path: str, names: list[str], size: tuple[int, int], log: ProblemLog) -> list[ParsedBox]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        log.error(path, None, f"cannot read ({err.strerror})")
        return []
    except UnicodeDecodeError:
        log.error(path, None, "not UTF-8 text")
        return []
    boxes = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        box = _parse_line(fields, names, size, path, number, log)
        if box is not None:
            boxes.append(box)
    return boxes


def _parse_line(fields: list[str], names: list[str], size: tuple[int, int], path: str, number: int,
                log: ProblemLog) -> ParsedBox | None:
    if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
        log.error(path, number, f"expected 5 fields (class x_center y_center width height) or a segment "
                                f"(class and 3 or more x y points), found {len(fields)}")
        return None
    label = _class_name(fields[0], names)
    if label is None:
        log.error(path, number, f"class index {fields[0]!r} is not one of 0..{len(names) - 1} (the class names)")
        return None
    if len(fields) == 5:
        values, message = parse_numbers(fields[1:], _BOX_FIELDS)
        if message:
            log.error(path, number, message)
            return None
        xc, yc, w, h = values
        if w <= 0 or h <= 0:
            log.error(path, number, f"zero-size box (width {fields[3]}, height {fields[4]})")
            return None
        corners = [xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2]
    else:
        point_names = [f"point {i // 2 + 1} {'xy'[i % 2]}" for i in range(len(fields) - 1)]
        values, message = parse_numbers(fields[1:], point_names)
        if message:
            log.error(path, number, message)
            return None
        xs, ys = values[0::2], values[1::2]
        corners = [min(xs), min(ys), max(xs), max(ys)]
        if corners[2] <= corners[0] or corners[3] <= corners[1]:
            log.error(path, number, "zero-size box (the segment's points have one x or one y)")
            return None
    corners = [0.0 if -ROUNDING <= c < 0 else 1.0 if 1 < c <= 1 + ROUNDING else c for c in corners]
    width, height = size
    x1, y1, x2, y2 = corners
    pixels = (round(x1 * width, 6), round(y1 * height, 6), round(x2 * width, 6), round(y2 * height, 6))
    return ParsedBox(pixels, label, number)  # rounded to a millionth of a pixel: no float noise in messages


def _class_name(text: str, names: list[str]) -> str | None:
    try:
        index = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None
        if not value.is_integer():
            return None
        index = int(value)
    return names[index] if 0 <= index < len(names) else None
