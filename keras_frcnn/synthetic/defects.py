"""Print, scan and export defects of a karyogram image: what happened to it after it was drawn.

Applied to the developed uint8 grey image of the ``framed`` style, in this order: a brightness
lift and a contrast (exposure) change -- from very dark images to black lifted to mid grey --,
sometimes a mild Gaussian blur, salt-and-pepper speckle of varying density, and JPEG
re-compression at a random quality (decoded again, so the PNG written keeps the artefacts).
The distributions follow measurements of the real karyogram exports the style imitates: about
60 % keep a black field (a quarter of them very dark), 25 % are lifted to dark grey and 15 %
to mid grey; about two thirds carry 0.2-3 % speckle; all were JPEG quality about 75.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Defects:
    """One image's defects (grey levels on a 0-255 scale, lengths in pixels)."""

    offset: float = 0.0  # grey level added everywhere (lifts the black field)
    contrast: float = 1.0  # grey levels are multiplied by this first (< 0.3: a very dark image)
    blur: float = 0.0  # Gaussian sigma; 0 = none
    salt: float = 0.0  # fraction of pixels set to white
    pepper: float = 0.0  # fraction of pixels set to black
    jpeg_quality: int = 0  # 1-100; 0 = no re-compression


def sample_defects(rng: np.random.Generator) -> Defects:
    """Random defects for one image (see the module docstring)."""
    field = rng.random()
    if field < 0.15:  # black field, very dark image
        offset, contrast = 0.0, rng.uniform(0.1, 0.4)
    elif field < 0.6:  # black field
        offset, contrast = 0.0, rng.uniform(0.45, 1.1)
    elif field < 0.85:  # dark grey field
        offset, contrast = rng.uniform(8.0, 55.0), rng.uniform(0.55, 1.0)
    else:  # mid grey field
        offset, contrast = rng.uniform(60.0, 125.0), rng.uniform(0.55, 1.0)
    salt = rng.uniform(0.002, 0.03) if rng.random() < 0.65 else 0.0
    return Defects(
        offset=float(offset),
        contrast=float(contrast),
        blur=float(rng.uniform(0.4, 1.0)) if rng.random() < 0.25 else 0.0,
        salt=float(salt),
        pepper=float(salt * rng.uniform(0.3, 1.0)),
        jpeg_quality=int(rng.integers(55, 93)),
    )


def apply_defects(image: np.ndarray, defects: Defects, rng: np.random.Generator) -> np.ndarray:
    """The uint8 grey ``image`` with ``defects`` applied (a new array)."""
    value = image.astype(np.float32) * np.float32(defects.contrast) + np.float32(defects.offset + 0.5)
    if defects.blur > 0:
        value = cv2.GaussianBlur(value, (0, 0), defects.blur)
    out = np.clip(value, 0, 255).astype(np.uint8)
    if defects.salt > 0 or defects.pepper > 0:
        draw = rng.random(out.shape, dtype=np.float32)
        out[draw < defects.salt] = 255
        out[draw > 1.0 - defects.pepper] = 0
    if defects.jpeg_quality:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, defects.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV failure
            raise RuntimeError("JPEG encoding failed")
        out = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    return out
