"""From an optical-density canvas to a grey microscope image: light, blur, contrast, noise.

``gband`` (default) is bright-field G-banding: dark chromosomes on a light slide,
``I = background * illumination * exp(-gain * od)``. ``qband`` mimics fluorescent Q-banding
(the real BioImLab spreads): bright chromosomes on black, ``I = dark + gain * od``; Q-bright
bands are, to a good approximation, G-dark bands, so the same density map serves both.
``framed`` develops like ``qband`` (bright chromosomes and frames on black, softer bands); it is
the look of real karyogram exports, whose print/scan defects :mod:`keras_frcnn.synthetic.defects`
adds afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FRAMED = "framed"
STYLES: tuple[str, ...] = ("gband", "qband", FRAMED)


@dataclass(frozen=True)
class Imaging:
    """One image's acquisition settings (grey levels on a 0-255 scale, lengths in pixels)."""

    style: str = "gband"
    background: float = 235.0  # empty slide (gband) or dark level (qband, framed)
    gain: float = 1.8  # optical density -> attenuation (gband) or grey levels / 100 (qband, framed)
    illumination: float = 0.05  # amplitude of the smooth illumination change (fraction)
    blur: float = 0.8  # Gaussian sigma of the optics
    noise: float = 3.0  # sensor noise sigma
    gamma: float = 1.0


def sample_imaging(rng: np.random.Generator, mode: str, style: str = "gband") -> Imaging:
    """Random acquisition settings for one image of ``mode`` (karyogram | metaphase)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if style == FRAMED:
        return Imaging(
            style=style,
            background=float(rng.uniform(0.0, 3.0)),
            gain=float(rng.uniform(2.6, 3.2)),
            illumination=float(rng.uniform(0.0, 0.03)),
            blur=float(rng.uniform(0.2, 0.45)),  # the export's resampling; chromosomes are softer
            noise=float(rng.uniform(0.3, 1.5)),
            gamma=float(rng.uniform(0.8, 1.1)),
        )
    karyogram = mode == "karyogram"
    if style == "gband":
        background = rng.uniform(236, 250) if karyogram else rng.uniform(200, 238)
        gain = rng.uniform(1.6, 2.1)
    else:
        background = rng.uniform(0, 6) if karyogram else rng.uniform(0, 14)
        gain = rng.uniform(1.6, 2.3)
    return Imaging(
        style=style,
        background=float(background),
        gain=float(gain),
        illumination=float(rng.uniform(0.0, 0.03) if karyogram else rng.uniform(0.03, 0.15)),
        blur=float(rng.uniform(0.5, 0.9) if karyogram else rng.uniform(0.6, 1.3)),
        noise=float(rng.uniform(0.5, 2.5) if karyogram or style == "qband" else rng.uniform(2.0, 6.0)),
        gamma=float(rng.uniform(0.85, 1.15)),
    )


def smooth_field(rng: np.random.Generator, height: int, width: int, cells: int = 4) -> np.ndarray:
    """A smooth random field in about [-1, 1] (bicubic upsampling of a coarse grid)."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1)).astype(np.float32)
    small = (max(width // 8, cells + 1), max(height // 8, cells + 1))
    smooth = cv2.resize(coarse, small, interpolation=cv2.INTER_CUBIC)
    return cv2.resize(smooth, (width, height), interpolation=cv2.INTER_LINEAR)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean noise of standard deviation ``sigma`` (triangular: the difference of two
    uniform bytes; several times faster than Gaussian draws and alike to the eye)."""
    pair = rng.integers(0, 256, size=(2, *shape), dtype=np.uint8)
    diff = pair[0].astype(np.float32) - pair[1].astype(np.float32)
    return diff * np.float32(sigma / 104.5)  # std of the difference is 104.5


def develop(od: np.ndarray, imaging: Imaging, rng: np.random.Generator) -> np.ndarray:
    """Turn the optical-density canvas ``od`` (float32 HxW) into a uint8 grey image."""
    height, width = od.shape
    light = 1.0 + np.float32(imaging.illumination) * smooth_field(rng, height, width, cells=2)
    if imaging.style == "gband":
        value = cv2.exp(od * np.float32(-imaging.gain))
        value *= light * np.float32(imaging.background / 255.0)
    else:
        value = (od * np.float32(imaging.gain * 100.0 / 255.0)) * light
        value += np.float32(imaging.background / 255.0)
    if imaging.blur > 0:
        value = cv2.GaussianBlur(value, (0, 0), imaging.blur)
    value = cv2.pow(np.clip(value, 0.0, 1.0), imaging.gamma) * np.float32(255.0)
    value += _noise(rng, (height, width), imaging.noise)
    value += np.float32(0.5)
    return np.clip(value, 0, 255).astype(np.uint8)
