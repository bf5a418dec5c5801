"""Where the chromosomes of a cell go: an ISCN karyogram or a scattered metaphase spread.

Both layouts draw into an optical-density canvas (float32 HxW, modified in place) and return
``(chromosome, RenderedChromosome)`` pairs in karyotype order; compositing is additive in
optical density, so overlapping chromosomes look darker where they cross, as on a slide.

* :func:`karyogram` -- rows 1-5, 6-12, 13-18 and 19-22 + X, Y; p arms up, centromeres of a row
  on one line, homologs side by side over a rule and the pair number; small random changes of
  scale, spacing, tilt (a few degrees) and bend so no two karyograms are pixel-identical.
  Chromosome 1 is about 60-80 px long at 640x480 (scaled with the image size). The pieces
  (:func:`place_homologs`, :func:`karyogram_look`, :func:`arm_extents`) also serve the framed
  karyogram of :mod:`keras_frcnn.synthetic.framed`.
* :func:`metaphase` -- the same chromosomes, less uniformly condensed, at random angles and
  bends inside an oval spread; most are kept apart, some touch or cross (limited overlap); plus
  0-2 interphase nuclei and small debris.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from keras_frcnn.synthetic import clutter
from keras_frcnn.synthetic.chromosome import Appearance, RenderedChromosome, render_chromosome
from keras_frcnn.synthetic.cytobands import load_bands, relative_length
from keras_frcnn.synthetic.karyotypes import Karyotype

KARYOGRAM_ROWS: tuple[tuple[str, ...], ...] = (
    ("1", "2", "3", "4", "5"),
    ("6", "7", "8", "9", "10", "11", "12"),
    ("13", "14", "15", "16", "17", "18"),
    ("19", "20", "21", "22", "X", "Y"),
)
_CHR1 = relative_length("1")

Placed = list[tuple[str, RenderedChromosome]]


@dataclass(frozen=True)
class CellLook:
    """What all chromosomes of one cell share (chromatid width, stain, groove, band blur)."""

    width: float
    groove: float
    band_blur: float
    floor: float
    darkness: float


Window = tuple[tuple[slice, slice], tuple[slice, slice]]


def windows(rc: RenderedChromosome, shape: tuple[int, int]) -> Window | None:
    """Matching canvas and patch slices of ``rc`` on a canvas of ``shape`` (None if outside)."""
    h, w = rc.shape
    cy0, cx0 = max(rc.y0, 0), max(rc.x0, 0)
    cy1, cx1 = min(rc.y0 + h, shape[0]), min(rc.x0 + w, shape[1])
    if cy0 >= cy1 or cx0 >= cx1:
        return None
    canvas = (slice(cy0, cy1), slice(cx0, cx1))
    patch = (slice(cy0 - rc.y0, cy1 - rc.y0), slice(cx0 - rc.x0, cx1 - rc.x0))
    return canvas, patch


def _inside(box: np.ndarray, shape: tuple[int, int], margin: float = 1.0) -> bool:
    return bool(
        box[0] >= margin and box[1] >= margin and box[2] <= shape[1] - margin and box[3] <= shape[0] - margin
    )


def visible_box(rc: RenderedChromosome, shape: tuple[int, int]) -> np.ndarray | None:
    """The box of the part of ``rc``'s mask inside a canvas of ``shape`` (None if none is)."""
    if _inside(rc.box, shape, margin=0.0):
        return rc.box
    win = windows(rc, shape)
    if win is None:
        return None
    mask = rc.mask[win[1]]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    y0, x0 = win[0][0].start, win[0][1].start
    return np.asarray([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], dtype=np.float32)


def paste(od: np.ndarray, rc: RenderedChromosome) -> None:
    """Add the chromosome's optical density to the canvas (the part inside it)."""
    win = windows(rc, od.shape)
    if win is not None:
        od[win[0]] += rc.density[win[1]]


def karyogram_look(
    rng: np.random.Generator,
    length: float,
    width: float,
    cell: CellLook,
    tilt: float = 1.8,
    max_tilt: float = 4.0,
    bend: float = 0.25,
    constriction: tuple[float, float] = (0.2, 0.35),
    splay: float = 0.0,
) -> Appearance:
    """An upright karyogram chromosome: tilt ~ N(0, ``tilt``) degrees clipped to ``max_tilt``,
    total bend uniform in +-``bend`` radians, centromere ``constriction`` uniform in the range
    and chromatid ``splay`` uniform up to the given value (none drawn when 0)."""
    return Appearance(
        length=length,
        width=width,
        angle=float(np.clip(rng.normal(0.0, tilt), -max_tilt, max_tilt)),
        curvature=float(rng.uniform(-bend, bend) / length),
        constriction=float(rng.uniform(*constriction)),
        splay=float(rng.uniform(0.0, splay)) if splay else 0.0,
        groove=cell.groove,
        band_blur=cell.band_blur,
        band_jitter=0.06,
        floor=cell.floor,
        darkness=cell.darkness * float(rng.uniform(0.95, 1.05)),
    )


def arm_extents(names: tuple[str, ...]) -> tuple[float, float]:
    """The longest p arm and the longest q arm among chromosomes ``names``, in units of the
    length of chromosome 1."""
    bands = load_bands()
    p = max(bands[n].centromere * relative_length(n) for n in names) / _CHR1
    q = max((1 - bands[n].centromere) * relative_length(n) for n in names) / _CHR1
    return p, q


def place_homologs(
    placed: dict[int, RenderedChromosome],
    karyotype: Karyotype,
    name: str,
    anchor: tuple[float, float],
    chr1: float,
    cell: CellLook,
    rng: np.random.Generator,
    spread: tuple[float, float] = (1.35, 1.75),
    look: Callable[..., Appearance] = karyogram_look,
) -> None:
    """Draw every copy of chromosome ``name`` upright, side by side around ``anchor`` (x, y) with
    their centromeres at its height, into ``placed`` (karyotype index -> drawing). ``chr1`` is
    the length of chromosome 1; centre spacing is ``cell.width`` times uniform in ``spread``;
    ``look(rng, length, width, cell)`` draws each chromosome's appearance."""
    bands = load_bands()
    copies = [i for i, n in enumerate(karyotype.chromosomes) if n == name]
    spacing = cell.width * rng.uniform(*spread)
    for k, index in enumerate(copies):
        length = chr1 * relative_length(name) / _CHR1 * rng.uniform(0.95, 1.05)
        chrom_width = cell.width * (0.85 + 0.15 * relative_length(name) / _CHR1)
        appearance = look(rng, length, chrom_width, cell)
        x = anchor[0] + (k - (len(copies) - 1) / 2) * spacing + rng.normal(0.0, 0.6)
        cen_y = anchor[1] + rng.normal(0.0, 0.8)
        # Put the centromere (not the middle) of the axis on the anchor's height.
        shift = (bands[name].centromere - 0.5) * length
        theta = math.radians(appearance.angle)
        centre = (x + shift * math.sin(theta), cen_y - shift * math.cos(theta))
        placed[index] = render_chromosome(bands[name], centre, appearance, rng)


def karyogram(od: np.ndarray, karyotype: Karyotype, rng: np.random.Generator) -> Placed:
    """Lay out ``karyotype`` as an ISCN karyogram on ``od``; see the module docstring."""
    height, width = od.shape
    size = min(width / 640.0, height / 480.0)
    chr1 = rng.uniform(62.0, 78.0) * size
    caption = 18.0 * size  # rule and pair number under each row
    margin = 6.0 * size
    stretch = 1.08  # room for the per-chromosome length jitter
    extents = [arm_extents(row) for row in KARYOGRAM_ROWS]
    arms = sum(p + q for p, q in extents) * stretch
    room = height - 2 * margin - len(extents) * (caption + 2.0)
    chr1 = min(chr1, room / arms)
    gap = (height - 2 * margin - arms * chr1 - len(extents) * caption) / len(extents)
    cell = CellLook(
        width=max(chr1 * rng.uniform(0.115, 0.14), 3.0),
        groove=float(rng.uniform(1.1, 1.25)),
        band_blur=float(rng.uniform(0.45, 0.8)),
        floor=float(rng.uniform(0.2, 0.32)),
        darkness=float(rng.uniform(0.85, 1.1)),
    )
    placed: dict[int, RenderedChromosome] = {}
    captions: list[tuple[str, float, float]] = []
    top = margin + gap / 2
    for row, (p_ext, q_ext) in zip(KARYOGRAM_ROWS, extents):
        line = top + p_ext * chr1 * stretch + rng.normal(0.0, 0.5)
        slot_width = (width - 2 * margin) / len(row)
        for j, name in enumerate(row):
            cx = margin + (j + 0.5) * slot_width + rng.normal(0.0, 0.04 * slot_width)
            place_homologs(placed, karyotype, name, (cx, line), chr1, cell, rng)
            captions.append((name, cx, line + q_ext * chr1 * stretch + 3.0 * size))
        top += (p_ext + q_ext) * chr1 * stretch + caption + gap
    clutter.add_captions(od, captions, scale=0.33 * size, line_width=cell.width * 3.2)
    result = [(karyotype.chromosomes[i], placed[i]) for i in range(len(karyotype.chromosomes))]
    for _, rc in result:
        paste(od, rc)
    return result


def _metaphase_look(rng: np.random.Generator, length: float, width: float, cell: CellLook) -> Appearance:
    bend = rng.uniform(-0.9, 0.9) if rng.random() < 0.6 else rng.uniform(-0.25, 0.25)
    return Appearance(
        length=length,
        width=width,
        angle=float(rng.uniform(0.0, 360.0)),
        curvature=float(bend / length),
        constriction=float(rng.uniform(0.15, 0.4)),
        groove=cell.groove * float(rng.uniform(0.97, 1.03)),
        splay=float(rng.uniform(0.0, 0.2)),
        band_blur=cell.band_blur * float(rng.uniform(0.85, 1.2)),
        band_jitter=0.1,
        floor=cell.floor,
        darkness=cell.darkness * float(rng.uniform(0.9, 1.1)),
    )


def _sample_in_ellipse(
    rng: np.random.Generator, centre: tuple[float, float], radii: tuple[float, float]
) -> tuple[float, float]:
    r = math.sqrt(rng.random())
    a = rng.uniform(0.0, 2 * math.pi)
    return centre[0] + radii[0] * r * math.cos(a), centre[1] + radii[1] * r * math.sin(a)


def metaphase(od: np.ndarray, karyotype: Karyotype, rng: np.random.Generator) -> Placed:
    """Scatter ``karyotype`` over ``od`` as a metaphase spread; see the module docstring."""
    height, width = od.shape
    bands = load_bands()
    size = min(width / 768.0, height / 576.0)
    nuclei = np.zeros(od.shape, dtype=bool)
    occupied = np.zeros(od.shape, dtype=bool)  # chromosome pixels

    n_nuclei = int(rng.choice(3, p=[0.4, 0.4, 0.2]))
    for _ in range(n_nuclei):
        centre = (rng.uniform(0, width), rng.uniform(0, height))
        nuclei |= clutter.add_nucleus(od, rng, centre, rng.uniform(35.0, 75.0) * size)
    blocked = nuclei.copy()  # nuclei and a halo around each placed chromosome

    chr1 = rng.uniform(58.0, 92.0) * size  # condensation of this cell
    cell = CellLook(
        width=max(chr1 * rng.uniform(0.12, 0.16), 3.0),
        groove=float(rng.uniform(1.05, 1.2)),
        band_blur=float(rng.uniform(0.6, 1.0)),
        floor=float(rng.uniform(0.22, 0.35)),
        darkness=float(rng.uniform(0.8, 1.1)),
    )
    names = karyotype.chromosomes
    lengths = [chr1 * relative_length(n) / _CHR1 * rng.uniform(0.88, 1.12) for n in names]
    area = sum(lengths) * cell.width * rng.uniform(4.0, 8.0)
    aspect = rng.uniform(0.75, 1.33)
    rx = min(math.sqrt(area / math.pi * aspect), 0.45 * width)
    ry = min(math.sqrt(area / math.pi / aspect), 0.45 * height)
    centre = (
        width / 2 + rng.normal(0.0, 0.08 * width),
        height / 2 + rng.normal(0.0, 0.08 * height),
    )
    centre = (float(np.clip(centre[0], rx, width - rx)), float(np.clip(centre[1], ry, height - ry)))

    kernel = np.ones((5, 5), dtype=np.uint8)
    placed: dict[int, RenderedChromosome] = {}
    for index in rng.permutation(len(names)):
        name = names[index]
        look = _metaphase_look(rng, lengths[index], cell.width, cell)
        rc = render_chromosome(bands[name], (rng.random(), rng.random()), look, rng)
        area_px = max(int(rc.mask.sum()), 1)
        crossing = rng.random() < 0.12
        best, best_cost = None, math.inf
        radii = (rx, ry)
        for attempt in range(60):
            if attempt and attempt % 20 == 0:
                radii = (radii[0] * 1.15, radii[1] * 1.15)
            x, y = _sample_in_ellipse(rng, centre, radii)
            candidate = rc.shifted(int(round(x)), int(round(y)))
            if not _inside(candidate.box, od.shape):
                continue
            canvas, patch = windows(candidate, od.shape)  # type: ignore[misc]
            mask = candidate.mask[patch]
            touching = int(np.count_nonzero(mask & blocked[canvas]))
            overlap = int(np.count_nonzero(mask & occupied[canvas])) / area_px
            if touching == 0:
                best = candidate
                break
            if crossing and overlap <= 0.2 and not np.any(mask & nuclei[canvas]):
                best = candidate
                break
            cost = touching / area_px + overlap
            if cost < best_cost:
                best, best_cost = candidate, cost
        if best is None:  # nowhere inside: clamp into the image
            x1, y1, x2, y2 = (rc.box).tolist()
            dx = int(np.clip(round(centre[0]), 1 - x1, width - 1 - x2))
            dy = int(np.clip(round(centre[1]), 1 - y1, height - 1 - y2))
            best = rc.shifted(dx, dy)
        placed[int(index)] = best
        canvas, patch = windows(best, od.shape)  # type: ignore[misc]
        occupied[canvas] |= best.mask[patch]
        halo = cv2.dilate(best.mask.astype(np.uint8), kernel).astype(bool)
        blocked[canvas] |= halo[patch]

    result = [(names[i], placed[i]) for i in range(len(names))]
    for _, rc in result:
        paste(od, rc)
    clutter.add_debris(od, rng, int(rng.poisson(12)))
    return result
