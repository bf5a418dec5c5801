"""Render one banded metaphase chromosome into a small patch (coverage, optical density, box).

Geometry: the chromosome is the union of two sister chromatids, each a rounded rod
("capsule") of radius ``rho(s)`` whose axis is offset ``±o(s)`` from the chromosome axis; the
axis is a circular arc of curvature ``k`` (a gentle bend) through the chromosome centre,
rotated by ``angle``. ``s`` runs along the axis from the p telomere (0) to the q telomere
(``length``); at ``angle=0`` the p arm points up. Every pixel of the patch is mapped back to
``(s, t)`` (position along the axis, signed distance from it) analytically, so drawing is a
handful of vectorised numpy operations per chromosome.

Appearance along ``s``: the half-width narrows at the centromere (primary constriction) and,
on acrocentrics, to a thin stalk between the satellite and the short arm; the stain comes from
the cytoband table (gneg light ... gpos100 dark), blurred along the axis. Across the axis each
chromatid is a cylinder (thicker, so darker, in its middle), which leaves a faint groove
between the sisters and a notch at each rounded end.

The box is computed from the rendered mask (pixels whose coverage is at least one half),
``x2 = last column + 1``, in the canvas's continuous pixel coordinates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from keras_frcnn.synthetic.cytobands import STAIN_DARKNESS, ChromosomeBands

_STEP = 0.25  # resolution (px) of the 1-D profiles along the axis


@dataclass(frozen=True)
class Appearance:
    """How one chromosome is drawn (all lengths in pixels, ``angle`` in degrees)."""

    length: float
    width: float
    angle: float = 0.0
    curvature: float = 0.0  # 1/px; the total bend is ``curvature * length`` radians
    constriction: float = 0.3  # relative narrowing at the centromere
    groove: float = 1.08  # chromatid radius / chromatid offset: smaller -> deeper groove
    splay: float = 0.0  # extra separation of the sister chromatids at the ends (fraction)
    band_blur: float = 0.8  # Gaussian sigma (px) of the band pattern along the axis
    band_jitter: float = 0.08  # random relative change of each band's stain
    floor: float = 0.3  # stain of a gneg band relative to gpos100
    darkness: float = 1.0  # overall optical density of gpos100


@dataclass(frozen=True)
class RenderedChromosome:
    """A drawn chromosome: patch arrays placed at ``(x0, y0)`` of the canvas, and its box."""

    x0: int
    y0: int
    alpha: np.ndarray  # float32 coverage in [0, 1]
    density: np.ndarray  # float32 optical density (already multiplied by alpha)
    mask: np.ndarray  # bool, alpha >= 0.5
    box: np.ndarray  # float32 [x1, y1, x2, y2] in canvas coordinates

    def shifted(self, dx: int, dy: int) -> "RenderedChromosome":
        """The same drawing moved by whole pixels."""
        offset = np.asarray([dx, dy, dx, dy], dtype=np.float32)
        return replace(self, x0=self.x0 + dx, y0=self.y0 + dy, box=self.box + offset)

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape  # type: ignore[return-value]


def _smooth(values: np.ndarray, sigma_px: float) -> np.ndarray:
    """1-D Gaussian smoothing of a profile sampled every ``_STEP`` px (edges replicated)."""
    sigma = sigma_px / _STEP
    if sigma < 0.5:
        return values
    radius = int(math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.full(radius, values[0]), values, np.full(radius, values[-1])])
    return np.convolve(padded, kernel, mode="valid")


@functools.lru_cache(maxsize=64)
def _band_factors(bands: ChromosomeBands) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per band: end (fraction), stain darkness, half-width factor (thin stalk and satellite),
    stalk flag. Cached: do not modify the arrays."""
    darkness = np.asarray([STAIN_DARKNESS.get(b.stain, 0.5) for b in bands.bands])
    stalk = np.asarray([b.stain == "stalk" for b in bands.bands])
    thin = np.ones(len(bands.bands))
    if bands.acrocentric:
        for i, band in enumerate(bands.bands):
            if band.stain == "stalk":
                thin[i] = 0.3
            elif band.name.startswith("p1") and band.stain == "gvar":
                thin[i] = 0.7 if band.name.startswith("p13") else 0.85
    arrays = (np.asarray(bands.ends), darkness, thin, stalk)
    for array in arrays:
        array.setflags(write=False)
    return arrays


def axis_profiles(
    bands: ChromosomeBands, look: Appearance, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(s, half_width, stain)`` sampled every ``_STEP`` px along the axis (float32)."""
    length = look.length
    s = np.arange(0.0, length + _STEP, _STEP)
    ends, darkness, thin, stalk = _band_factors(bands)
    index = np.searchsorted(ends, s / length, side="right")
    index = np.minimum(index, len(bands.bands) - 1)
    jitter = 1.0 + look.band_jitter * rng.standard_normal(len(bands.bands))
    level = np.clip(darkness * jitter, 0.0, 1.0)
    level = look.floor + (1.0 - look.floor) * level
    level[stalk] *= 0.4
    stain = _smooth(level[index], look.band_blur)
    half = 0.5 * look.width * (_smooth(thin[index], 0.6) if bands.acrocentric else 1.0)
    centre = bands.centromere * length
    half = half * (1.0 - look.constriction * np.exp(-(((s - centre) / (0.45 * look.width)) ** 2)))
    knots = np.arange(0.0, length + 4.0, 3.0)  # a slow random wobble of the width
    half *= 1.0 + 0.04 * np.interp(s, knots, rng.standard_normal(len(knots)))
    return s.astype(np.float32), half.astype(np.float32), stain.astype(np.float32)


def _axis_point(look: Appearance, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local (across, along) coordinates of the axis point at arc length ``v`` from the centre."""
    k = look.curvature
    if abs(k) < 1e-6:
        return np.zeros_like(v), v
    radius = 1.0 / k
    return radius * (1.0 - np.cos(v / radius)), radius * np.sin(v / radius)


def render_chromosome(
    bands: ChromosomeBands,
    centre: tuple[float, float],
    look: Appearance,
    rng: np.random.Generator,
) -> RenderedChromosome:
    """Draw chromosome ``bands`` with its axis midpoint at ``centre`` (x, y) of the canvas."""
    s_grid, half_grid, stain_grid = axis_profiles(bands, look, rng)
    length = look.length
    theta = math.radians(look.angle)
    along = (-math.sin(theta), math.cos(theta))  # p -> q direction (Python floats keep float32)
    across = (math.cos(theta), math.sin(theta))

    # Patch extent from the axis polyline plus the widest half-width.
    v = np.linspace(-length / 2, length / 2, 17)
    u_axis, v_axis = _axis_point(look, v)
    px = centre[0] + u_axis * across[0] + v_axis * along[0]  # float64 polyline
    py = centre[1] + u_axis * across[1] + v_axis * along[1]
    margin = float(half_grid.max()) * (1.0 + look.splay) * 1.2 + 2.0
    x0, x1 = int(math.floor(px.min() - margin)), int(math.ceil(px.max() + margin))
    y0, y1 = int(math.floor(py.min() - margin)), int(math.ceil(py.max() + margin))

    # Pixel centres relative to the chromosome centre, in the local (across u, along v) frame.
    xs = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - float(centre[0]))
    ys = (np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - float(centre[1])))[:, None]
    u = xs * across[0] + ys * across[1]
    v = xs * along[0] + ys * along[1]
    k = look.curvature
    if abs(k) < 1e-6:
        t, s = u, v + length / 2
    else:
        sign = 1.0 if k > 0 else -1.0
        radius = 1.0 / abs(k)
        us = u * sign
        t = (radius - np.hypot(us - radius, v)) * sign
        s = radius * np.arctan2(v, radius - us) + length / 2

    # Per-pixel half-width and stain at the (clamped) axis position.
    sc = np.minimum(np.maximum(s, 0.0), length)
    index = np.minimum((sc * (1.0 / _STEP) + 0.5).astype(np.int32), len(s_grid) - 1)
    half = half_grid[index]
    stain = stain_grid[index]
    offset = 0.5 * half
    if look.splay:
        ramp = min(1.2 * look.width, 0.25 * length)
        ends = np.maximum(1.0 - np.minimum(sc, length - sc) * (1.0 / ramp), 0.0)
        offset = offset * (1.0 + look.splay * ends * ends)
    rho = offset * look.groove

    # Two sister chromatids: capsules along the axis with rounded ends of radius rho.
    r0 = float(half_grid[0]) * 0.5 * look.groove  # end-cap radii
    r1 = float(half_grid[-1]) * 0.5 * look.groove
    beyond = np.maximum(np.maximum(r0 - s, s - (length - r1)), 0.0)
    dist_a = np.hypot(beyond, t - offset)
    dist_b = np.hypot(beyond, t + offset)
    sdf = np.minimum(dist_a, dist_b) - rho
    alpha = np.clip(0.5 - sdf, 0.0, 1.0)
    mask = sdf <= 0.0

    inv = 1.0 / np.maximum(rho, 1e-3)
    dist_a *= inv
    dist_b *= inv
    thick = np.sqrt(np.maximum(1.0 - dist_a * dist_a, 0.0)) + np.sqrt(np.maximum(1.0 - dist_b * dist_b, 0.0))
    cross = 0.55 + 0.45 * np.minimum(thick, 1.0)
    density = alpha * cross * stain * np.float32(look.darkness)

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        box = np.asarray([x0, y0, x0, y0], dtype=np.float32)
    else:
        box = np.asarray(
            [x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], dtype=np.float32
        )
    return RenderedChromosome(x0, y0, alpha.astype(np.float32), density.astype(np.float32), mask, box)
