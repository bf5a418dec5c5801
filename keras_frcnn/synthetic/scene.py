"""One synthetic image: karyotype -> layout -> labels -> developed grey image with boxes.

The style picks the look: ``gband`` and ``qband`` (both modes) use :mod:`layout`; ``framed``
(karyogram mode only, 416x416 by default) uses :mod:`framed` and adds the print/scan
:mod:`defects` of real karyogram exports to the developed image. Mode ``composite`` is not
rendered here: it composes real chromosomes (:mod:`keras_frcnn.synthetic.composite`).
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from keras_frcnn.errors import UserError
from keras_frcnn.synthetic import defects, framed, layout
from keras_frcnn.synthetic.imaging import FRAMED, STYLES, develop, sample_imaging
from keras_frcnn.synthetic.karyotypes import (
    Karyotype,
    assign_labels,
    parse_karyotype,
    sample_karyotype,
)

COMPOSITE = "composite"  # spreads of real chromosomes cut out of karyograms: keras_frcnn.synthetic.composite
MODES: tuple[str, ...] = ("karyogram", "metaphase", COMPOSITE)
DEFAULT_SIZE = types.MappingProxyType(
    {"karyogram": (640, 480), "metaphase": (768, 576), COMPOSITE: (768, 576)}
)  # (w, h)
STYLE_SIZE = types.MappingProxyType({FRAMED: (416, 416)})  # karyogram-only styles: default (w, h)
MIN_SIZE = (160, 120)


@dataclass(frozen=True)
class Scene:
    """A rendered image with its ground truth (``boxes`` float32 ``[N, 4]`` x1, y1, x2, y2)."""

    image: np.ndarray  # uint8 HxW grey
    boxes: np.ndarray
    labels: tuple[str, ...]
    chromosomes: tuple[str, ...]  # "1".."22", "X", "Y" for each box
    karyotype: Karyotype


def check_options(
    mode: str, width: int | None, height: int | None, abnormal_rate: float, exception_rate: float, style: str
) -> tuple[int, int]:
    """Validate the rendering options (raising :class:`UserError`); return ``(width, height)``."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    if style not in STYLES:
        raise UserError(f"unknown style {style!r}; expected one of: {', '.join(STYLES)}")
    if style in STYLE_SIZE and mode != "karyogram":
        raise UserError(f"style {style!r} draws karyograms only; it cannot be used with mode {mode!r}")
    default_w, default_h = STYLE_SIZE.get(style, DEFAULT_SIZE[mode])
    width = default_w if width is None else int(width)
    height = default_h if height is None else int(height)
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise UserError(f"image size {width}x{height} is too small (at least {MIN_SIZE[0]}x{MIN_SIZE[1]})")
    if width > 8192 or height > 8192:
        raise UserError(f"image size {width}x{height} is too large (at most 8192x8192)")
    for flag, rate in (("abnormal rate", abnormal_rate), ("exception rate", exception_rate)):
        if not 0.0 <= float(rate) <= 1.0:
            raise UserError(f"{flag} must be between 0 and 1, got {rate}")
    return width, height


def render_scene(
    rng: np.random.Generator,
    mode: str = "karyogram",
    width: int | None = None,
    height: int | None = None,
    abnormal_rate: float = 0.1,
    exception_rate: float = 0.02,
    style: str = "gband",
    karyotype: Karyotype | str | None = None,
) -> Scene:
    """Render one image of ``mode``; ``karyotype`` (e.g. ``"47,XY,+21"``) overrides the draw."""
    width, height = check_options(mode, width, height, abnormal_rate, exception_rate, style)
    if mode == COMPOSITE:
        raise UserError(f"mode {COMPOSITE!r} composes real chromosomes: use keras_frcnn.synthetic.composite")
    if karyotype is None:
        karyotype = sample_karyotype(rng, abnormal_rate)
    elif isinstance(karyotype, str):
        karyotype = parse_karyotype(karyotype)
    imaging = sample_imaging(rng, mode, style)
    od = np.zeros((height, width), dtype=np.float32)
    if style == FRAMED:
        place = framed.karyogram
    else:
        place = layout.karyogram if mode == "karyogram" else layout.metaphase
    placed = place(od, karyotype, rng)
    # A chromosome (partly) outside the image keeps the box of its visible part, or is dropped.
    visible = [(name, layout.visible_box(rc, od.shape)) for name, rc in placed]
    visible = [(name, box) for name, box in visible if box is not None]
    names = tuple(name for name, _ in visible)
    boxes = np.asarray([box for _, box in visible], dtype=np.float32).reshape(-1, 4)
    labels = assign_labels(names, (boxes[:, 0] + boxes[:, 2]) / 2, rng, exception_rate)
    image = develop(od, imaging, rng)
    if style == FRAMED:
        image = defects.apply_defects(image, defects.sample_defects(rng), rng)
    return Scene(image, boxes, tuple(labels), names, karyotype)


def render_image(
    rng: np.random.Generator,
    mode: str = "karyogram",
    width: int | None = None,
    height: int | None = None,
    abnormal_rate: float = 0.1,
    exception_rate: float = 0.02,
    style: str = "gband",
    karyotype: Karyotype | str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """``(image uint8 HxW, boxes float32 [N, 4] x1 y1 x2 y2, labels, karyotype name)``."""
    scene = render_scene(rng, mode, width, height, abnormal_rate, exception_rate, style, karyotype)
    return scene.image, scene.boxes, list(scene.labels), scene.karyotype.name
