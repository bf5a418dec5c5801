"""Pascal VOC XML files (one per image).

VOC coordinates are 1-based pixel *indices*, both ends included: a box covering the image's
first pixel only is ``xmin = xmax = 1``. The records use continuous coordinates where that
pixel spans ``[0, 1]``, so ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax``
(a box of width ``xmax - xmin + 1``). Tools that write 0-based VOC (``xmin = 0``) give
``x1 = -1``: outside the image, which ``clip_boxes=True`` clips with a warning.

``<filename>`` is looked for beside the XML file, then in ``../JPEGImages/`` (the standard
VOC layout). ``<difficult>1</difficult>`` marks a box difficult; ``<truncated>`` is ignored.
Problems are located as ``file.xml: object 2``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.images import resolve_image_path
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.validation import ParsedBox, ParsedImage, ProblemLog, parse_numbers, read_checked

_BOUNDS = ("xmin", "ymin", "xmax", "ymax")


def parse_voc(path: str, log: ProblemLog) -> list[ParsedImage]:
    """Parse one VOC XML file, or every ``*.xml`` of a folder (or of its ``Annotations/`` subfolder)."""
    if not os.path.isdir(path):
        image = _parse_file(path, log)
        return [image] if image is not None else []
    folder = path
    names = _xml_names(folder)
    if not names and os.path.isdir(os.path.join(path, "Annotations")):
        folder = os.path.join(path, "Annotations")
        names = _xml_names(folder)
    if not names:
        log.error(path, None, "no .xml files in this folder")
    images = [_parse_file(os.path.join(folder, name), log) for name in names]
    return [image for image in images if image is not None]


def read_voc(
    path: str | os.PathLike,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read and check Pascal VOC XML (a file or a folder); raise one error listing the first problem."""
    return read_checked(parse_voc, path, "pascal_voc", classes=classes, clip_boxes=clip_boxes,
                        check_images=check_images)


def _xml_names(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(".xml"))


def _parse_file(path: str, log: ProblemLog) -> ParsedImage | None:
    try:
        root = ET.parse(path).getroot()
    except OSError as err:
        log.error(path, None, f"cannot read ({err.strerror})")
        return None
    except ET.ParseError as err:
        log.error(path, err.position[0], f"invalid XML ({err})")
        return None
    if root.tag != "annotation":
        log.error(path, None, f"not a Pascal VOC file (root element <{root.tag}>, expected <annotation>)")
        return None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        log.error(path, None, "<filename> is missing")
        return None
    folder = os.path.dirname(path)
    image = ParsedImage(
        path=resolve_image_path(filename, [folder, os.path.join(folder, os.pardir, "JPEGImages")]),
        source=path,
        line=None,
        width=_size(root, "width", path, log),
        height=_size(root, "height", path, log),
    )
    for index, obj in enumerate(root.findall("object"), 1):
        box = _parse_object(obj, path, f"object {index}", log)
        if box is not None:
            image.boxes.append(box)
    return image


def _parse_object(obj: ET.Element, path: str, where: str, log: ProblemLog) -> ParsedBox | None:
    bndbox = obj.find("bndbox")
    if bndbox is None:
        log.error(path, where, "<bndbox> is missing")
        return None
    numbers, message = parse_numbers([bndbox.findtext(tag) for tag in _BOUNDS], _BOUNDS)
    if message:
        log.error(path, where, message)
        return None
    xmin, ymin, xmax, ymax = numbers  # type: ignore[misc]
    for low, high, low_name, high_name in ((xmin, xmax, "xmin", "xmax"), (ymin, ymax, "ymin", "ymax")):
        if high < low:
            log.error(path, where, f"{high_name} ({high!r}) must not be less than {low_name} ({low!r})")
            return None
    difficult = (obj.findtext("difficult") or "0").strip()
    if difficult not in ("0", "1"):
        log.error(path, where, f"<difficult> must be 0 or 1, not {difficult!r}")
        return None
    label = (obj.findtext("name") or "").strip()
    return ParsedBox((xmin - 1.0, ymin - 1.0, xmax, ymax), label, where, difficult == "1")


def _size(root: ET.Element, tag: str, path: str, log: ProblemLog) -> int | None:
    """``<size><width>`` or ``<height>``; missing or 0 (common in VOC files) means unknown."""
    text = (root.findtext(f"size/{tag}") or "").strip()
    if not text:
        return None
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        log.error(path, None, f"<size><{tag}> is not a number ({text!r})")
        return None
    if value < 0 or value != float(text):
        log.error(path, None, f"<size><{tag}> must be a whole number of pixels, not {text!r}")
        return None
    return value or None
