"""Annotated images: each detection's box, label and probability drawn on the image (the
paper's Fig. 5/8 view), in a colour fixed by the class index, written atomically.

Colours come from matplotlib's ``tab20``, ``tab20b`` and ``tab20c`` palettes (60 colours), so
class ``i`` has the same colour in every image, run and model with the same class list.
"""

from __future__ import annotations

import os
import zlib
from typing import Sequence

import cv2
import numpy as np
from matplotlib import colormaps

from keras_frcnn.atomic import atomic_path
from keras_frcnn.inference.detections import Detections
from keras_frcnn.errors import UserError

_PALETTES = ("tab20", "tab20b", "tab20c")
# Immutable: 60 RGB colours, uint8.
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(round(255 * channel)) for channel in colour[:3])
    for name in _PALETTES
    for colour in colormaps[name].colors
)


def class_colour(index: int) -> tuple[int, int, int]:
    """The RGB colour of class ``index`` (0-based); the palette repeats after 60 classes."""
    return PALETTE[int(index) % len(PALETTE)]


def label_colour(label: str, class_names: Sequence[str]) -> tuple[int, int, int]:
    """The colour of a class name: by its index in ``class_names``; a name outside the list gets
    a colour fixed by the name itself."""
    try:
        index = list(class_names).index(label)
    except ValueError:
        index = zlib.crc32(label.encode("utf-8"))
    return class_colour(index)


def _style(height: int, width: int) -> tuple[float, int, int]:
    """Font scale, text thickness and box line width for an image of this size."""
    short = min(height, width)
    scale = max(0.35, short / 1600.0)
    return scale, max(1, int(round(scale * 1.5))), max(2, int(round(short / 400.0)))


def draw_detections(
    image: np.ndarray, detections: Detections, class_names: Sequence[str], *, show_scores: bool = True
) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB ``[H, W, 3]``) with each detection's box and a tag
    ``label probability`` on a filled background in the class colour (lowest score drawn first,
    so the surest detections stay on top)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] RGB image, got {image.dtype} {image.shape}")
    canvas = np.ascontiguousarray(image.copy())
    height, width = canvas.shape[:2]
    font_scale, text_thickness, line_width = _style(height, width)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k in np.argsort(detections.scores, kind="stable"):
        label = detections.labels[k]
        colour = label_colour(label, class_names)
        x1, y1, x2, y2 = (int(round(float(v))) for v in detections.boxes[k])
        x1, x2 = np.clip([x1, x2], 0, width - 1)
        y1, y2 = np.clip([y1, y2], 0, height - 1)
        cv2.rectangle(canvas, (int(x1), int(y1)), (int(x2), int(y2)), colour, line_width)
        text = f"{label} {float(detections.scores[k]):.2f}" if show_scores else label
        (text_w, text_h), baseline = cv2.getTextSize(text, font, font_scale, text_thickness)
        tag_h = text_h + baseline + 2
        top = int(y1) - tag_h if int(y1) - tag_h >= 0 else int(y1)  # above the box, else inside it
        left = int(min(max(int(x1), 0), max(width - text_w - 2, 0)))
        cv2.rectangle(canvas, (left, top), (left + text_w + 2, top + tag_h), colour, cv2.FILLED)
        luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        cv2.putText(canvas, text, (left + 1, top + text_h + 1), font, font_scale, ink, text_thickness, cv2.LINE_AA)
    return canvas


def distinct_file_names(stems: Sequence[str], extension: str) -> list[str]:
    """``<stem><extension>`` per stem, made distinct ignoring case (``_2``, ``_3``... for repeats),
    so no two images of one output folder overwrite each other on any file system."""
    names: list[str] = []
    taken: set[str] = set()
    for stem in stems:
        name, copy = f"{stem}{extension}", 1
        while name.lower() in taken:
            copy += 1
            name = f"{stem}_{copy}{extension}"
        taken.add(name.lower())
        names.append(name)
    return names


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB image (the format from the extension, e.g. ``.png``) atomically."""
    path = os.fspath(path)
    extension = os.path.splitext(path)[1] or ".png"
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(np.asarray(image)[:, :, ::-1]))
    if not ok:
        raise UserError(f"{path}: cannot encode the image as {extension}")
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            handle.write(encoded.tobytes())


def write_annotated_image(
    path: str | os.PathLike, image: np.ndarray, detections: Detections, class_names: Sequence[str]
) -> None:
    """:func:`draw_detections` then :func:`save_image`."""
    save_image(path, draw_detections(image, detections, class_names))
