"""Things on a slide or karyogram that are not chromosomes: interphase nuclei, debris, captions
and the numbered frames of a framed karyogram.

Each function adds optical density to a float32 canvas in place; :func:`add_nucleus` also
returns the mask of what it drew (where chromosomes should not be placed).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from keras_frcnn.synthetic.imaging import smooth_field


def add_nucleus(
    od: np.ndarray,
    rng: np.random.Generator,
    centre: tuple[float, float],
    radius: float,
) -> np.ndarray:
    """A round-to-oval interphase nucleus with mottled chromatin; returns its bool mask."""
    height, width = od.shape
    a = radius * rng.uniform(0.9, 1.15)
    b = radius * rng.uniform(0.75, 1.0)
    angle = rng.uniform(0, math.pi)
    extent = int(math.ceil(max(a, b) + 3))
    cx, cy = centre
    x0, x1 = max(int(cx) - extent, 0), min(int(cx) + extent + 1, width)
    y0, y1 = max(int(cy) - extent, 0), min(int(cy) + extent + 1, height)
    mask = np.zeros(od.shape, dtype=bool)
    if x0 >= x1 or y0 >= y1:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / a
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / b
    phi = np.arctan2(v, u)
    lumps = rng.uniform(0, 2 * math.pi, size=2)
    outline = 1.0 + 0.04 * np.sin(2 * phi + lumps[0]) + 0.03 * np.sin(3 * phi + lumps[1])
    r = np.sqrt(u * u + v * v) / outline
    edge = np.clip((1.0 - r) * min(a, b) / 2.0, 0.0, 1.0)
    shape = (y1 - y0, x1 - x0)
    coarse = smooth_field(rng, *shape, cells=max(int(radius / 12), 3))
    fine = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 1.6)
    fine /= max(float(fine.std()), 1e-6)
    texture = 0.85 + 0.12 * coarse + 0.12 * fine
    rim = 1.0 + 0.2 * np.clip(r - 0.75, 0.0, 0.25) / 0.25
    od[y0:y1, x0:x1] += rng.uniform(0.45, 0.85) * edge * texture * rim
    mask[y0:y1, x0:x1] = edge > 0.05
    return mask


def add_debris(od: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """``count`` small dark dots and specks scattered over the canvas."""
    height, width = od.shape
    for _ in range(count):
        radius = rng.uniform(0.6, 2.8)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        extent = int(math.ceil(3 * radius)) + 1
        x0, x1 = max(int(cx) - extent, 0), min(int(cx) + extent + 1, width)
        y0, y1 = max(int(cy) - extent, 0), min(int(cy) + extent + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d2 = ((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2) / (radius * radius)
        od[y0:y1, x0:x1] += rng.uniform(0.2, 1.0) * np.exp(-d2)


def add_captions(
    od: np.ndarray,
    captions: list[tuple[str, float, float]],
    scale: float,
    line_width: float,
) -> None:
    """Karyogram pair numbers ``(text, centre_x, top)``, each under a short rule."""
    ink = np.zeros(od.shape, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    half = int(round(line_width / 2))
    for text, centre_x, top in captions:
        y = int(round(top))
        cx = int(round(centre_x))
        cv2.line(ink, (cx - half, y), (cx + half, y), 255, 1, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
        cv2.putText(ink, text, (cx - tw // 2, y + 4 + th), font, scale, 255, 1, cv2.LINE_AA)
    _stamp(od, ink, 0.9)


def add_frames(
    od: np.ndarray,
    frames: Sequence[tuple[str, tuple[float, float, float, float], float]],
    scale: float,
    tick: float,
    density: float = 0.9,
) -> None:
    """Framed karyogram cells ``(text, (x0, y0, x1, y1), tick_y)``: a crisp one-pixel rectangle,
    the pair number small at its bottom left and a short tick of length ``tick`` inside each
    side at height ``tick_y`` (the centromere line), all of optical density ``density``."""
    ink = np.zeros(od.shape, dtype=np.uint8)
    span = int(round(tick))
    for text, corners, tick_y in frames:
        x0, y0, x1, y1 = (int(round(v)) for v in corners)
        y = int(round(tick_y))
        cv2.rectangle(ink, (x0, y0), (x1, y1), 255, 1, cv2.LINE_8)
        cv2.line(ink, (x0, y), (x0 + span, y), 255, 1, cv2.LINE_8)
        cv2.line(ink, (x1 - span, y), (x1, y), 255, 1, cv2.LINE_8)
        cv2.putText(ink, text, (x0 + 2, y1 - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
    _stamp(od, ink, density)


def _stamp(od: np.ndarray, ink: np.ndarray, density: float) -> None:
    """Add uint8 ``ink`` (255 = full) to ``od`` as optical density ``density``."""
    od += ink.astype(np.float32) * (density / 255.0)
