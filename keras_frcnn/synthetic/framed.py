"""The framed karyogram: the layout of real karyogram exports, one numbered frame per pair.

Each homologous pair stands upright in its own thin rectangular frame, centromeres on a short
tick inside both sides of the frame, the pair number small at the frame's bottom left. The
frames fill the image in four rows: 1-5 on a 5-column grid, then 6-12, 13 14 15 . 16 17 18 and
19 20 . 21 22 . X Y on a 7-column grid (21 and 22 half a column right). The template constants
are measured on 416x416 exports and stretch to any image size; :func:`sample_frames` varies the
margins, gaps, row heights and tick heights a little per karyogram, and :func:`karyogram`
varies the condensation (chromosome 1 about 40-80 px long at 416x416), chromatid width, tilt,
bends and the brightness of each pair. Every frame is drawn, an empty one too (Y in 46,XX).
The chromosomes (photographs) are blurred a little; the frames (drawn by the karyotyping
software) stay crisp one-pixel lines. Each pair is kept inside its frame's columns.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from keras_frcnn.synthetic import clutter
from keras_frcnn.synthetic.chromosome import RenderedChromosome
from keras_frcnn.synthetic.karyotypes import Karyotype
from keras_frcnn.synthetic.layout import (
    KARYOGRAM_ROWS,
    CellLook,
    Placed,
    arm_extents,
    karyogram_look,
    paste,
    place_homologs,
)

TEMPLATE = 416.0  # size (px) of the exports the constants below are measured on
# Per row of KARYOGRAM_ROWS: columns of the row's grid, and the column of each frame.
FRAME_GRID: tuple[tuple[int, tuple[float, ...]], ...] = (
    (5, (0, 1, 2, 3, 4)),
    (7, (0, 1, 2, 3, 4, 5, 6)),
    (7, (0, 1, 2, 4, 5, 6)),
    (7, (0, 1, 2.5, 3.5, 5, 6)),
)
ROW_HEIGHTS: tuple[float, ...] = (130.0, 101.0, 72.0, 91.0)  # frame heights (px)
TICK_HEIGHTS: tuple[float, ...] = (0.49, 0.42, 0.39, 0.41)  # centromere line / frame height
MARGINS: tuple[float, float, float, float] = (5.0, 7.0, 7.0, 6.0)  # left, top, right, bottom (px)
ROW_GAP = 3.0  # px between the rows of frames
COLUMN_GAP = 2.0  # px between neighbouring frames


@dataclass(frozen=True)
class Frame:
    """The frame of chromosome ``name``: rectangle lines at ``x0``..``x1``, ``y0``..``y1``
    (continuous pixel coordinates) and the centromere line at height ``tick``."""

    name: str
    x0: float
    y0: float
    x1: float
    y1: float
    tick: float


def sample_frames(rng: np.random.Generator, width: int, height: int) -> tuple[Frame, ...]:
    """The frames of one karyogram of ``width`` x ``height``, in KARYOGRAM_ROWS order."""
    sx, sy = width / TEMPLATE, height / TEMPLATE
    left, top, right, bottom = (m + rng.uniform(-3.0, 4.0) for m in MARGINS)
    left, right, top, bottom = left * sx, right * sx, top * sy, bottom * sy
    row_gap = (ROW_GAP + rng.uniform(-1.0, 2.0)) * sy
    column_gap = (COLUMN_GAP + rng.uniform(-1.0, 1.5)) * sx
    heights = np.asarray(ROW_HEIGHTS) * rng.uniform(0.94, 1.06, size=len(ROW_HEIGHTS))
    heights = (heights * (height - top - bottom - (len(heights) - 1) * row_gap) / heights.sum()).tolist()
    frames = []
    y = top
    for row, (columns, slots), frame_height, tick in zip(KARYOGRAM_ROWS, FRAME_GRID, heights, TICK_HEIGHTS):
        pitch = (width - left - right + column_gap) / columns
        tick_y = y + (tick + rng.uniform(-0.03, 0.03)) * frame_height
        for name, slot in zip(row, slots):
            x0 = left + slot * pitch
            frames.append(Frame(name, x0, y, x0 + pitch - column_gap, y + frame_height, tick_y))
        y += frame_height + row_gap
    return tuple(frames)


def _longest_fit(frames: tuple[Frame, ...], pad: float, stretch: float = 1.08) -> float:
    """The largest chromosome-1 length whose chromosomes all stay inside their frames (``pad``
    px clear of the lines; ``stretch`` leaves room for the per-chromosome length jitter)."""
    fit = math.inf
    for frame in frames:
        p, q = arm_extents((frame.name,))
        fit = min(fit, (frame.tick - frame.y0 - pad) / (p * stretch), (frame.y1 - frame.tick - pad) / (q * stretch))
    return fit


def _inside_columns(placed: dict[int, RenderedChromosome], copies: list[int], frame: Frame, pad: int = 2) -> None:
    """Move the copies of a frame's chromosome sideways by whole pixels so that their boxes keep
    ``pad`` px clear of the frame's sides: closer together if the group is too wide, then into
    the frame (centred if it still does not fit)."""
    if not copies:
        return
    low, high = math.ceil(frame.x0) + 1 + pad, math.floor(frame.x1) - pad  # free columns low..high

    def extent() -> tuple[float, float]:
        return min(float(placed[i].box[0]) for i in copies), max(float(placed[i].box[2]) for i in copies)

    def shift(i: int, dx: float) -> None:
        if round(dx):
            placed[i] = placed[i].shifted(int(round(dx)), 0)

    left, right = extent()
    widest = max(float(placed[i].box[2] - placed[i].box[0]) for i in copies)
    if right - left > high - low and right - left > widest:
        squeeze = max(high - low - widest, 0.0) / (right - left - widest)
        middle = (left + right) / 2
        for i in copies:
            centre = float(placed[i].box[0] + placed[i].box[2]) / 2
            shift(i, (centre - middle) * (squeeze - 1.0))
        left, right = extent()
    if right - left > high - low:
        dx = (low + high - left - right) / 2
    else:
        dx = max(low - left, 0) + min(high - right, 0)
    for i in copies:
        shift(i, dx)


def karyogram(
    od: np.ndarray, karyotype: Karyotype, rng: np.random.Generator, frames: tuple[Frame, ...] | None = None
) -> Placed:
    """Lay out ``karyotype`` as a framed karyogram on ``od`` (frames drawn from ``rng`` unless
    given); see the module docstring."""
    height, width = od.shape
    if frames is None:
        frames = sample_frames(rng, width, height)
    size = min(width, height) / TEMPLATE
    # Real exports: chromosome 1 is 36-84 px long (5-95 %; the labels' ~6 px slack taken off),
    # about 0.42 of the first row's frame height, log-normally spread.
    first = frames[0].y1 - frames[0].y0
    chr1 = first * 0.42 * math.exp(float(np.clip(rng.normal(0.0, 0.24), -0.45, 0.7)))
    chr1 = min(chr1, _longest_fit(frames, pad=3.0 * size))
    narrowest = min(frame.x1 - frame.x0 for frame in frames)
    cell = CellLook(
        width=max(min((3.5 * size + 0.065 * chr1) * rng.uniform(0.8, 1.25), 0.2 * narrowest), 2.5),
        groove=float(rng.uniform(1.0, 1.15)),
        band_blur=float(rng.uniform(0.7, 1.3)) * size,
        floor=float(rng.uniform(0.2, 0.4)),
        darkness=float(rng.uniform(0.85, 1.1)),
    )
    focus = float(rng.uniform(0.4, 0.8)) * size  # blur of the chromosome photographs only
    placed: dict[int, RenderedChromosome] = {}
    for frame in frames:
        pair = replace(cell, darkness=cell.darkness * float(rng.uniform(0.7, 1.25)))
        bent = rng.random() < 0.25  # a pair of bent chromosomes, a little further apart
        look = functools.partial(
            karyogram_look, tilt=3.0, max_tilt=8.0, bend=1.1 if bent else 0.3, constriction=(0.3, 0.5), splay=0.3
        )
        spread = (1.6, 2.2) if bent else (1.25, 1.6)
        frame_width = frame.x1 - frame.x0
        cx = (frame.x0 + frame.x1) / 2 + rng.normal(0.0, 0.03 * frame_width)
        place_homologs(placed, karyotype, frame.name, (cx, frame.tick), chr1, pair, rng, spread, look)
        _inside_columns(placed, [i for i, n in enumerate(karyotype.chromosomes) if n == frame.name], frame)
    clutter.add_frames(
        od,
        [(f.name, (f.x0, f.y0, f.x1, f.y1), f.tick) for f in frames],
        scale=float(rng.uniform(0.28, 0.34)) * size,
        tick=float(rng.uniform(5.0, 8.0)) * width / TEMPLATE,
        density=float(rng.uniform(0.6, 0.85)),
    )
    result = [(karyotype.chromosomes[i], placed[i]) for i in range(len(karyotype.chromosomes))]
    photos = np.zeros_like(od)
    for _, rc in result:
        paste(photos, rc)
    od += cv2.GaussianBlur(photos, (0, 0), focus)  # the frames, drawn by software, stay crisp
    return result
