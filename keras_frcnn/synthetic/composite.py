"""Metaphase spreads composed from real, labelled chromosomes cut out of karyograms (``--mode composite``).

Sources: a folder of labelled karyograms (YOLO, or any format :func:`read_annotations` reads)
whose labels are the 24 chromosome classes ``1``..``22``, ``X``, ``Y``. The copies of one
karyogram (export augmentations, :func:`source_of`) are one source, one cell: its cleanest copy
(:func:`cutout.copy_quality`) is cut out (:func:`cutout.cut_out_all`) and all its chromosomes
-- the cell's real karyotype -- are scattered at random angles, flips and positions inside an
oval on a dark fluorescence-like field, with limited touching and overlap, 0-2 interphase nuclei
and debris (:func:`compose_spread`). No grid position gives a label away: a detector has to
tell chromosomes by their own look.

Train and test spreads come from disjoint sources: a seeded permutation of the sorted source
names gives the last ``round(test_fraction * n)`` (at least 1, at most n - 1) to test, the rest
to train, whatever the image counts. Spread ``i`` of a split shows its split's source
``i mod n`` (in that permuted order) and draws from ``image_rng(seed, split, i)``.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from keras_frcnn.annotations import read_annotations
from keras_frcnn.annotations.classes import chromosome_classes
from keras_frcnn.annotations.images import load_image
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.sources import source_of
from keras_frcnn.errors import UserError
from keras_frcnn.synthetic.clutter import add_debris, add_nucleus
from keras_frcnn.synthetic.cutout import copy_quality, cut_out_all
from keras_frcnn.synthetic.imaging import Imaging, develop

TEST_FRACTION = 0.2
SPLIT_KEY = 2  # SeedSequence spawn key of the source split (0 and 1 are the image streams)
TARGET_AREA = (12000.0, 30000.0)  # chromosome pixels of a 768x576 spread (BioImLab: 12k-40k, median 20k)
SCALE = (0.7, 2.2)  # limits of the magnification that brings a cell to its drawn area
DENSITY = (0.12, 0.28)  # chromosome area / oval area
GAP = 2  # pixels kept free around a placed chromosome, unless it may touch
TOUCH_RATE = (0.0, 0.3)  # per spread: the chance that a chromosome may touch or overlap others
TOUCH_OVERLAP = 0.08  # ... by at most this fraction of its area
TRIES = 40  # positions tried per chromosome before the oval grows
ROUNDS = 6  # oval growths before the least overlapping try anywhere is taken
LABEL_RULES = (
    "the 24 chromosome classes (1..22, X, Y) of the source karyograms' labels; each spread shows all "
    "chromosomes of one source karyogram (one copy of it)"
)


@dataclass(frozen=True)
class Chromosome:
    """One cut-out chromosome: ``patch`` (float32 grey above background), ``alpha`` (float32 [0, 1])."""

    label: str
    patch: np.ndarray
    alpha: np.ndarray


@dataclass(frozen=True)
class Cell:
    """The chromosomes of one source karyogram, cut out of the copy at ``path``."""

    source: str
    path: str
    chromosomes: tuple[Chromosome, ...]


def read_sources(folder: str | os.PathLike) -> dict[str, list[ImageRecord]]:
    """Read a folder of labelled karyograms: ``{source name: [copies, by path]}`` (sources without
    boxes left out). Raises :class:`UserError` if it is unreadable, has labels that are not
    chromosome classes, or has fewer than 2 sources."""
    folder = os.fspath(folder)
    try:
        data = read_annotations(folder, check_images=False)
    except UserError as err:
        raise UserError(f"{folder}: not a readable folder of labelled karyograms: {err}") from None
    classes = set(chromosome_classes())
    wrong = sorted({label for record in data.records for label in record.labels} - classes)
    if wrong:
        shown = ", ".join(repr(label) for label in wrong[:5]) + (" ..." if len(wrong) > 5 else "")
        raise UserError(
            f"--from {folder}: labels {shown} are not chromosome classes (expected 1..22, X, Y)"
        )
    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for record in data.records:
        if record.num_boxes:
            groups[source_of(record.path)].append(record)
    if len(groups) < 2:
        raise UserError(
            f"--from {folder}: {len(groups)} labelled source karyogram(s); composite mode needs at least 2 "
            "to keep train and test sources apart"
        )
    return {name: sorted(groups[name], key=lambda r: r.path) for name in sorted(groups)}


def split_sources(names: Sequence[str], seed: int, test_fraction: float = TEST_FRACTION) -> tuple[list[str], list[str]]:
    """``(train, test)`` source names: a seeded permutation of the sorted names, the last
    ``round(test_fraction * n)`` (clipped to 1..n-1) for test."""
    names = sorted(names)
    if len(names) < 2:
        raise UserError(f"{len(names)} source karyogram(s): at least 2 are needed to split train and test")
    if not 0.0 < float(test_fraction) < 1.0:
        raise UserError(f"test fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(SPLIT_KEY,)))
    order = [names[i] for i in rng.permutation(len(names))]
    n_test = min(max(int(round(test_fraction * len(names))), 1), len(names) - 1)
    return order[: len(names) - n_test], order[len(names) - n_test :]


def load_cell(source: str, copies: Sequence[ImageRecord]) -> Cell:
    """Cut out the chromosomes of the cleanest copy of a source (ties: the first by path)."""
    best, best_score, best_image = None, -math.inf, None
    for record in copies:
        image = load_image(record)
        score = copy_quality(image, record.boxes)
        if score > best_score:
            best, best_score, best_image = record, score, image
    assert best is not None and best_image is not None
    cuts = cut_out_all(best_image, best.boxes)
    chromosomes = tuple(Chromosome(label, patch, alpha) for label, (patch, alpha) in zip(best.labels, cuts))
    return Cell(source, best.path, chromosomes)


@dataclass(frozen=True)
class _Placed:
    """A chromosome turned for the spread: premultiplied signal, alpha and mask of one size."""

    signal: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray


def _turn(chromosome: Chromosome, flip: bool, angle: float, scale: float) -> _Placed:
    """Flip, rotate by ``angle`` degrees and scale a chromosome; crop to its mask plus the feather."""
    alpha = chromosome.alpha[:, ::-1] if flip else chromosome.alpha
    signal = (chromosome.patch * chromosome.alpha)[:, ::-1] if flip else chromosome.patch * chromosome.alpha
    height, width = alpha.shape
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, scale)
    left, right, top, bottom = -0.5, width - 0.5, -0.5, height - 0.5
    corners = np.array([[left, top, 1], [right, top, 1], [left, bottom, 1], [right, bottom, 1]])
    moved = corners @ matrix.T
    low = np.floor(moved.min(axis=0)) - 2
    size = np.ceil(moved.max(axis=0) - low).astype(int) + 2
    matrix[:, 2] -= low
    out_size = (int(size[0]), int(size[1]))
    alpha = cv2.warpAffine(np.ascontiguousarray(alpha), matrix, out_size, flags=cv2.INTER_LINEAR, borderValue=0)
    signal = cv2.warpAffine(np.ascontiguousarray(signal), matrix, out_size, flags=cv2.INTER_LINEAR, borderValue=0)
    mask = alpha >= 0.5
    if not mask.any():  # a sliver lost to interpolation: keep its strongest part
        mask = alpha >= alpha.max() * 0.5
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1 = max(rows[0] - 2, 0), rows[-1] + 3
    x0, x1 = max(cols[0] - 2, 0), cols[-1] + 3
    return _Placed(signal[y0:y1, x0:x1], alpha[y0:y1, x0:x1], mask[y0:y1, x0:x1])


def _oval_point(
    rng: np.random.Generator, centre: tuple[float, float], axes: tuple[float, float]
) -> tuple[float, float]:
    """A uniform random point of an axis-aligned oval."""
    radius, phi = math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * math.pi)
    return centre[0] + axes[0] * radius * math.cos(phi), centre[1] + axes[1] * radius * math.sin(phi)


def _place(
    items: list[_Placed],
    rng: np.random.Generator,
    occupied: np.ndarray,
    centre: tuple[float, float],
    axes: tuple[float, float],
    touch_rate: float,
) -> list[tuple[int, int]]:
    """Top-left corners for ``items`` (in order) inside an oval that grows when crowded; marks
    ``occupied`` (uint8, 1 = taken). A chromosome overlaps others by at most ``TOUCH_OVERLAP``
    of its area (and only with probability ``touch_rate``), unless no try anywhere is free."""
    height, width = occupied.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GAP + 1, 2 * GAP + 1))
    corners = []
    for item in items:
        h, w = item.mask.shape
        area = int(item.mask.sum())
        allowed = int(TOUCH_OVERLAP * area) if rng.random() < touch_rate else 0
        best, best_overlap = None, None
        for attempt in range(TRIES * ROUNDS):
            grow = 1.15 ** (attempt // TRIES)
            if attempt // TRIES == ROUNDS - 1:  # last round: anywhere in the image
                cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            else:
                cx, cy = _oval_point(rng, centre, (axes[0] * grow, axes[1] * grow))
            x = int(round(min(max(cx - w / 2.0, 0), max(width - w, 0))))
            y = int(round(min(max(cy - h / 2.0, 0), max(height - h, 0))))
            region = occupied[y : y + h, x : x + w]
            overlap = int(np.count_nonzero(region & item.mask[: region.shape[0], : region.shape[1]]))
            if best_overlap is None or overlap < best_overlap:
                best, best_overlap = (x, y), overlap
            if overlap <= allowed:
                break
        assert best is not None
        x, y = best
        dilated = cv2.dilate(item.mask.astype(np.uint8), kernel)
        region = occupied[y : y + h, x : x + w]
        region |= dilated[: region.shape[0], : region.shape[1]]
        corners.append(best)
    return corners


@dataclass(frozen=True)
class Spread:
    """A composed spread: ``image`` uint8 HxW; ``boxes`` float32 [N, 4] x1 y1 x2 y2, each tight
    around its chromosome's pasted mask (alpha >= 0.5; pixel ``[r, c]`` spans ``[c, c + 1)``)
    and inside the image; ``masks[i] = (x, y, bool mask)``: where chromosome ``i`` was pasted."""

    image: np.ndarray
    boxes: np.ndarray
    labels: tuple[str, ...]
    masks: tuple[tuple[int, int, np.ndarray], ...]


def compose(
    chromosomes: Sequence[Chromosome],
    rng: np.random.Generator,
    width: int = 768,
    height: int = 576,
) -> Spread:
    """A spread of one cell's chromosomes, in the order of ``chromosomes`` (see :class:`Spread`).
    Brightness is normalised over the cell (the 95th percentile of its chromosome pixels), so
    dark copies show as well as bright ones."""
    if not chromosomes:
        raise ValueError("no chromosomes to compose")
    pixels = np.concatenate([c.patch[c.alpha >= 0.5] for c in chromosomes])
    reference = max(float(np.percentile(pixels, 95)) if pixels.size else 1.0, 1.0)
    # Karyogram exports differ in magnification: scale the cell to a drawn total chromosome area.
    cell_area = max(sum(float(np.count_nonzero(c.alpha >= 0.5)) for c in chromosomes), 1.0)
    target = rng.uniform(*TARGET_AREA) * (width * height) / (768.0 * 576.0)
    largest = max(math.hypot(*c.alpha.shape) for c in chromosomes)
    scale = min(max(math.sqrt(target / cell_area), SCALE[0]), SCALE[1], 0.8 * min(width, height) / max(largest, 1.0))
    turned = [
        _turn(c, bool(rng.random() < 0.5), float(rng.uniform(0.0, 360.0)), scale) for c in chromosomes
    ]
    area = sum(int(t.mask.sum()) for t in turned)
    oval_area = area / rng.uniform(*DENSITY)
    aspect = rng.uniform(0.75, 1.33)
    axes = (
        min(math.sqrt(oval_area / math.pi * aspect), 0.46 * width),
        min(math.sqrt(oval_area / math.pi / aspect), 0.46 * height),
    )
    centre = (
        width / 2.0 + rng.uniform(-1.0, 1.0) * max(0.46 * width - axes[0], 0.0),
        height / 2.0 + rng.uniform(-1.0, 1.0) * max(0.46 * height - axes[1], 0.0),
    )
    od = np.zeros((height, width), dtype=np.float32)
    occupied = np.zeros((height, width), dtype=np.uint8)
    n_nuclei = int(rng.choice(3, p=(0.35, 0.45, 0.2)))
    for _ in range(n_nuclei):
        _add_nucleus(od, occupied, rng, centre, axes)
    add_debris(od, rng, int(rng.integers(0, 16)))
    # Big chromosomes first (they are hardest to fit); small ones end up on top where they touch.
    order = sorted(range(len(turned)), key=lambda i: -int(turned[i].mask.sum()))
    corners = _place([turned[i] for i in order], rng, occupied, centre, axes, rng.uniform(*TOUCH_RATE))
    boxes = np.zeros((len(turned), 4), dtype=np.float32)
    masks: list[tuple[int, int, np.ndarray]] = [(0, 0, np.zeros((0, 0), dtype=bool))] * len(turned)
    inverse = np.float32(1.0 / reference)
    for i, (x, y) in zip(order, corners):
        item = turned[i]
        region = od[y : y + item.alpha.shape[0], x : x + item.alpha.shape[1]]
        h, w = region.shape
        alpha = item.alpha[:h, :w]
        region *= 1.0 - alpha
        region += item.signal[:h, :w] * inverse
        rows, cols = np.flatnonzero(item.mask[:h, :w].any(axis=1)), np.flatnonzero(item.mask[:h, :w].any(axis=0))
        boxes[i] = (x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1)
        masks[i] = (x, y, item.mask[:h, :w])
    imaging = Imaging(
        style="qband",
        background=float(rng.uniform(0.0, 2.5)),
        gain=float(rng.uniform(1.3, 2.1)),
        illumination=float(rng.uniform(0.03, 0.15)),
        blur=float(rng.uniform(0.3, 0.6)),
        noise=float(rng.uniform(0.5, 2.0)),
        gamma=float(rng.uniform(0.85, 1.15)),
    )
    return Spread(develop(od, imaging, rng), boxes, tuple(c.label for c in chromosomes), tuple(masks))


def compose_spread(
    chromosomes: Sequence[Chromosome],
    rng: np.random.Generator,
    width: int = 768,
    height: int = 576,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(image uint8 HxW, boxes float32 [N, 4] x1 y1 x2 y2, labels)`` of :func:`compose`."""
    spread = compose(chromosomes, rng, width, height)
    return spread.image, spread.boxes, list(spread.labels)


def _add_nucleus(
    od: np.ndarray,
    occupied: np.ndarray,
    rng: np.random.Generator,
    centre: tuple[float, float],
    axes: tuple[float, float],
) -> None:
    """An interphase nucleus near the edge of the spread's oval or beyond it, clear of other
    nuclei, sometimes glowing (an out-of-focus halo); chromosomes keep off its mask."""
    height, width = od.shape
    radius = rng.uniform(35.0, 65.0) * math.sqrt(width * height / (768.0 * 576.0))
    for _ in range(10):
        phi = rng.uniform(0.0, 2.0 * math.pi)
        reach = rng.uniform(0.9, 1.5)
        cx = centre[0] + (axes[0] * reach + radius * 0.5) * math.cos(phi)
        cy = centre[1] + (axes[1] * reach + radius * 0.5) * math.sin(phi)
        x0, x1 = min(max(int(cx - 1.3 * radius), 0), width), min(max(int(cx + 1.3 * radius), 0), width)
        y0, y1 = min(max(int(cy - 1.3 * radius), 0), height), min(max(int(cy + 1.3 * radius), 0), height)
        if not occupied[y0:y1, x0:x1].any():
            break
    else:
        return
    layer = np.zeros_like(od)
    mask = add_nucleus(layer, rng, (cx, cy), radius)
    layer *= np.float32(rng.uniform(0.6, 1.5))
    if rng.random() < 0.3:
        layer += cv2.GaussianBlur(layer, (0, 0), radius * 0.4) * np.float32(rng.uniform(0.5, 1.5))
    od += layer
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GAP + 1, 2 * GAP + 1))
    occupied |= cv2.dilate(mask.astype(np.uint8), kernel)


def generate_composite(
    out_dir: str | os.PathLike,
    source_dir: str | os.PathLike,
    n_train: int,
    n_test: int,
    seed: int = 0,
    width: int | None = None,
    height: int | None = None,
    test_fraction: float = TEST_FRACTION,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Write ``n_train`` + ``n_test`` composite spreads of the karyograms in ``source_dir`` into
    ``out_dir`` (layout of :func:`keras_frcnn.synthetic.generate.generate_dataset`); return the manifest."""
    from keras_frcnn.synthetic import generate  # the writer (which dispatches composite mode here)
    from keras_frcnn.synthetic.scene import COMPOSITE, check_options

    generate.check_counts(n_train, n_test, seed)
    width, height = check_options(COMPOSITE, width, height, 0.0, 0.0, "qband")
    if isinstance(test_fraction, bool) or not 0.0 < float(test_fraction) < 1.0:
        raise UserError(f"test fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    folder = os.path.abspath(os.fspath(source_dir))
    sources = read_sources(folder)
    splits = split_sources(list(sources), int(seed), float(test_fraction))
    cells: dict[str, Cell] = {}

    def render(split_index: int, index: int) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
        names = splits[split_index]
        name = names[index % len(names)]
        if name not in cells:
            cells[name] = load_cell(name, sources[name])
        cell = cells[name]
        spread = compose(cell.chromosomes, generate.image_rng(int(seed), split_index, index), width, height)
        entry = {"source": name, "source_file": os.path.relpath(cell.path, folder), "boxes": len(spread.labels)}
        return spread.image, spread.boxes, spread.labels, entry

    manifest: dict = {
        "format": generate.FORMAT,
        "seed": int(seed),
        "options": {
            "mode": COMPOSITE,
            "n_train": int(n_train),
            "n_test": int(n_test),
            "width": width,
            "height": height,
            "from": folder,
            "test_fraction": float(test_fraction),
        },
        "csv_columns": list(generate.CSV_HEADER),
        "label_rules": LABEL_RULES,
        "classes": list(chromosome_classes()),
        "sources": {"train": list(splits[0]), "test": list(splits[1])},
        "splits": {},
        "images": [],
    }
    return generate.write_dataset(out_dir, (int(n_train), int(n_test)), render, manifest, progress)
