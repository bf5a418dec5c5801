"""Ground-truth annotations: read CSV, LabelMe, Pascal VOC, COCO or YOLO into :class:`ImageRecord` lists.

:func:`read_annotations` tells the format from the path (or takes ``format=``), reads
everything, checks everything, and raises one :class:`UserError` naming the first problem and
how many more there are. :func:`check_annotations` returns all of them instead (the
``python -m keras_frcnn.annotations check PATH`` command prints that report). ``labels="paper49"``
turns 24-class karyogram labels into the paper's 49 (:mod:`keras_frcnn.annotations.label_schemes`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from keras_frcnn.annotations.classes import ClassMap, chromosome_classes, chromosome_labels
from keras_frcnn.annotations.coco import is_coco, parse_coco, read_coco
from keras_frcnn.annotations.csv_format import parse_csv, read_csv, write_csv
from keras_frcnn.annotations.images import ImageReadError, decode_image, load_image, read_image_size
from keras_frcnn.annotations.labelme import parse_labelme, read_labelme
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.validation import (
    AnnotationProblemsError,
    CheckReport,
    Parser,
    Problem,
    ProblemLog,
    check_parsed,
    read_json,
)
from keras_frcnn.annotations.label_schemes import SCHEMES
from keras_frcnn.annotations.voc import parse_voc, read_voc
from keras_frcnn.annotations.yolo import is_yolo, parse_yolo, read_yolo
from keras_frcnn.errors import UserError

FORMATS = ("csv", "labelme", "pascal_voc", "coco", "yolo")

__all__ = [
    "FORMATS",
    "AnnotationProblemsError",
    "AnnotationSet",
    "CheckReport",
    "ClassMap",
    "ImageReadError",
    "ImageRecord",
    "Problem",
    "SCHEMES",
    "check_annotations",
    "chromosome_classes",
    "chromosome_labels",
    "collect_problems",
    "decode_image",
    "detect_format",
    "load_image",
    "read_annotations",
    "read_coco",
    "read_csv",
    "read_image_size",
    "read_labelme",
    "read_voc",
    "read_yolo",
    "write_csv",
]


@dataclass
class AnnotationSet:
    """A checked data set: its records, its class map, and the warnings met reading it."""

    records: list[ImageRecord]
    class_map: ClassMap
    warnings: list[str] = field(default_factory=list)

    @property
    def num_boxes(self) -> int:
        return sum(record.num_boxes for record in self.records)


def read_annotations(
    path: str | os.PathLike,
    *,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    check_images: bool = True,
    format: str | None = None,
    labels: str = "as-is",
) -> AnnotationSet:
    """Read and check annotations (CSV, LabelMe file or folder, VOC file or folder, COCO, YOLO
    folder or data.yaml).

    ``classes``: the allowed classes, in ``labels``' scheme (others are errors); default: the labels seen.
    ``labels``: ``as-is`` or ``paper49`` (24-class karyogram labels -> the paper's 49, by position).
    ``clip_boxes``: clip boxes crossing the image border (a warning) instead of an error.
    ``check_images``: open every image once to check it and learn its size.
    Raises :class:`AnnotationProblemsError` (a :class:`UserError`) if there is any error.
    """
    report = check_annotations(path, classes, clip_boxes, format=format, check_images=check_images, labels=labels)
    report.raise_for_errors()
    assert report.class_map is not None  # no error means some label or a given class list
    return AnnotationSet(report.records, report.class_map, [str(p) for p in report.warnings])


def check_annotations(
    path: str | os.PathLike,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    *,
    format: str | None = None,
    check_images: bool = True,
    labels: str = "as-is",
) -> CheckReport:
    """Read ``path`` and return every problem found (raises only if ``path`` itself is unusable)."""
    path = os.fspath(path)
    format, parse = _parser(path, format)
    return check_parsed(parse, path, format, classes=classes, clip_boxes=clip_boxes, check_images=check_images,
                        labels=labels)


def collect_problems(
    path: str | os.PathLike,
    classes: ClassMap | None = None,
    clip_boxes: bool = False,
    *,
    format: str | None = None,
    check_images: bool = True,
) -> list[Problem]:
    """Every problem (errors and warnings) of the annotations at ``path``, in file order."""
    return check_annotations(path, classes, clip_boxes, format=format, check_images=check_images).problems


def detect_format(path: str | os.PathLike) -> str:
    """The annotation format of a file or folder: one of :data:`FORMATS`."""
    return _parser(os.fspath(path), None)[0]


def _parser(path: str, format: str | None) -> tuple[str, Parser]:
    """The format of ``path`` and the function parsing it (JSON is read once, here)."""
    if format is not None and format not in FORMATS:
        raise UserError(f"unknown annotation format {format!r} (choose from {', '.join(FORMATS)})")
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        format = format or _folder_format(path)
        if format in ("csv", "coco"):
            raise UserError(f"{path}: is a folder; name the {format.upper()} file itself")
        return format, {"labelme": parse_labelme, "pascal_voc": parse_voc, "yolo": parse_yolo}[format]
    extension = os.path.splitext(path)[1].lower()
    if format is None:
        format = {".csv": "csv", ".txt": "csv", ".xml": "pascal_voc", ".json": "json", ".yaml": "yolo",
                  ".yml": "yolo"}.get(extension)
        if format is None:
            raise UserError(
                f"{path}: unknown annotation format (expected .csv, .txt, .json, .xml, a YOLO data.yaml or a "
                "folder; or give the format)"
            )
    if format == "csv":
        return format, parse_csv
    if format == "yolo":
        return format, parse_yolo
    if format == "pascal_voc":
        return format, parse_voc
    data = read_json(path, ProblemLog())  # on failure the parser reads it again and reports why
    if format == "json":
        format = "coco" if is_coco(data) else "labelme"
    parse = parse_coco if format == "coco" else parse_labelme
    return format, functools.partial(parse, data=data) if data is not None else parse


def _folder_format(path: str) -> str:
    if is_yolo(path):
        return "yolo"
    extensions = {os.path.splitext(name)[1].lower() for name in os.listdir(path)}
    has_json, has_xml = ".json" in extensions, ".xml" in extensions
    if has_json and has_xml:
        raise UserError(f"{path}: holds both .json and .xml files; give the format")
    if has_json:
        return "labelme"
    if has_xml or os.path.isdir(os.path.join(path, "Annotations")):
        return "pascal_voc"
    raise UserError(f"{path}: no LabelMe (.json) or Pascal VOC (.xml) files, nor a YOLO layout (images/ and "
                    "labels/), in this folder")
