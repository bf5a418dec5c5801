"""Cutting labelled chromosomes out of real karyograms (bright chromosomes on a darker field).

A labelled box of a karyogram holds its chromosome, the local background, and sometimes bits
of the karyogram's drawing: the thin frame around the pair, the centromere ticks at its sides,
the printed pair number, or the touching homologue. :func:`cut_out_all` separates each
chromosome from all of that:

1. a 3x3 median filter removes speckle and one-pixel lines (frames, ticks, print strokes);
2. a threshold against the local background (median and spread of the box's surroundings),
   with hysteresis (faint parts count where they join bright ones: dim centromeres and
   chromosome ends), gives the foreground inside the box; an opening drops what is under 3 px
   thick;
3. foreground near two boxes (touching homologues, a bent chromosome reaching into its
   neighbour's box) goes to the box whose foreground away from other boxes reaches it along
   the brighter path (a watershed: touching chromosomes part along the dark valley between
   them);
4. the connected components that reach the box's central region (or are large) are kept,
   holes (dark bands) are filled, and the mask is feathered into an alpha matte.

The patch is the grey level above the local background (the source's own banding), on the
0-255 scale of the source image; :func:`copy_quality` ranks copies of one karyogram.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage

MARGIN = 2  # pixels of the source kept around a box in a patch (room for the feathered edge)
CONTEXT = 10  # pixels around a box where its local background is measured
NOISE_SIGMAS = 3.0  # the threshold is at least this many background sigmas above the background
CONTRAST_FRACTION = 0.22  # ... and at least this fraction of the chromosome's contrast
MIN_STEP = 4.0  # ... and at least this many grey levels
WEAK_SIGMAS, WEAK_FRACTION, WEAK_STEP = 2.0, 0.1, 3.0  # the same for the hysteresis' low threshold
CENTRE = 0.25  # the central region of a box: the box shrunk by this fraction of its size per side
NEAR = 2  # foreground this close to another box is shared until the watershed gives it out
KEEP_FRACTION = 0.25  # other components are kept if at least this fraction of the largest
FEATHER = 0.6  # Gaussian sigma of the alpha matte's edge


def to_grey(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB (or grey) image as float32 grey."""
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image.astype(np.float32)


def copy_quality(image: np.ndarray, boxes: np.ndarray) -> float:
    """How clean one copy of a karyogram is: chromosome contrast over speckle and noise (higher
    is cleaner); used to pick one copy among the noisy, dark or washed-out ones of an export."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    smooth = cv2.medianBlur(grey, 3)
    residue = float(np.mean(np.abs(grey.astype(np.float32) - smooth.astype(np.float32))))
    background = float(np.median(smooth))
    inside = np.zeros(grey.shape, dtype=bool)
    for x1, y1, x2, y2 in _pixel_boxes(boxes, grey.shape):
        inside[y1:y2, x1:x2] = True
    peak = float(np.percentile(smooth[inside], 95)) if inside.any() else background
    return (peak - background) / (1.0 + residue)


def crop_window(box: Sequence[float], shape: tuple[int, ...], margin: int = MARGIN) -> tuple[int, int, int, int]:
    """The pixel window ``(x0, y0, x1, y1)`` (end exclusive) of a box's patch: the box rounded
    outwards plus ``margin``, inside the image."""
    height, width = shape[:2]
    x0 = max(int(np.floor(box[0])) - margin, 0)
    y0 = max(int(np.floor(box[1])) - margin, 0)
    x1 = min(int(np.ceil(box[2])) + margin, width)
    y1 = min(int(np.ceil(box[3])) + margin, height)
    return x0, y0, x1, y1


def _pixel_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Boxes as integer pixel ranges (pixels whose centre is inside), clipped to the image."""
    height, width = shape[:2]
    result = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        px1, py1 = min(max(int(np.floor(x1 + 0.5)), 0), width), min(max(int(np.floor(y1 + 0.5)), 0), height)
        px2, py2 = min(max(int(np.ceil(x2 - 0.5)), px1), width), min(max(int(np.ceil(y2 - 0.5)), py1), height)
        result.append((px1, py1, px2, py2))
    return result


def _foreground(smooth: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, float]:
    """Foreground (bool, full image size, inside ``box`` only) and the local background level."""
    height, width = smooth.shape
    x1, y1, x2, y2 = box
    cx0, cy0 = max(x1 - CONTEXT, 0), max(y1 - CONTEXT, 0)
    cx1, cy1 = min(x2 + CONTEXT, width), min(y2 + CONTEXT, height)
    context = smooth[cy0:cy1, cx0:cx1]
    background = float(np.median(context))
    noise = 1.4826 * float(np.median(np.abs(context - background)))
    inner = smooth[y1:y2, x1:x2]
    mask = np.zeros(smooth.shape, dtype=bool)
    if inner.size == 0:
        return mask, background
    peak = float(np.percentile(inner, 98))
    contrast = peak - background
    strong = inner > background + max(NOISE_SIGMAS * noise, CONTRAST_FRACTION * contrast, MIN_STEP)
    weak = (inner > background + max(WEAK_SIGMAS * noise, WEAK_FRACTION * contrast, WEAK_STEP)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    opened = cv2.morphologyEx(weak, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    restored = cv2.dilate(opened, kernel) & weak  # the opening's lost edge pixels, not thin lines
    # hysteresis: weak foreground counts where it is connected to strong foreground
    _, labels = cv2.connectedComponents(restored, connectivity=8)
    seeded = np.unique(labels[strong & (restored > 0)])
    restored = np.isin(labels, seeded[seeded > 0])
    mask[y1:y2, x1:x2] = restored.astype(bool)
    return mask, background


def _owners(
    masks: list[np.ndarray], boxes: list[tuple[int, int, int, int]], smooth: np.ndarray
) -> list[np.ndarray]:
    """Give each foreground pixel near several boxes (touching homologues, a bent chromosome
    reaching into its neighbour's box) to one box claiming it: a watershed on the inverted
    brightness grows each box's foreground away from other boxes (``NEAR`` px) into the rest,
    brightest first, so touching chromosomes part along the dark valley between them. Pixels no
    growth reaches stay with every box claiming them."""
    if len(masks) < 2:
        return masks
    height, width = smooth.shape
    claims = np.zeros((height, width), dtype=np.uint8)
    cover = np.zeros((height, width), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        claims += mask
        cover[max(y1 - NEAR, 0):y2 + NEAR, max(x1 - NEAR, 0):x2 + NEAR] += 1
    pending = (claims > 1) | ((claims == 1) & (cover > 1))
    if not pending.any():
        return masks
    owner = np.full((height, width), -1, dtype=np.int32)
    for index, mask in enumerate(masks):
        owner[mask & ~pending] = index
    heap: list[tuple[float, int, int, int, int]] = []
    order = 0
    neighbours = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
    for y, x in zip(*np.nonzero(pending)):
        for dy, dx in neighbours:
            ny, nx = y + dy, x + dx
            if 0 <= ny < height and 0 <= nx < width and owner[ny, nx] >= 0 and masks[owner[ny, nx]][y, x]:
                heapq.heappush(heap, (-float(smooth[y, x]), order, int(y), int(x), int(owner[ny, nx])))
                order += 1
    while heap:
        _, _, y, x, index = heapq.heappop(heap)
        if owner[y, x] >= 0:
            continue
        owner[y, x] = index
        for dy, dx in neighbours:
            ny, nx = y + dy, x + dx
            inside = 0 <= ny < height and 0 <= nx < width
            if inside and owner[ny, nx] < 0 and pending[ny, nx] and masks[index][ny, nx]:
                heapq.heappush(heap, (-float(smooth[ny, nx]), order, ny, nx, index))
                order += 1
    return [mask & ((owner == index) | (owner < 0)) for index, mask in enumerate(masks)]


def _clean(mask: np.ndarray, box: tuple[int, int, int, int], taken: np.ndarray) -> np.ndarray:
    """Keep the components reaching the box centre (or large ones), bridge the gaps between
    them (a pale band splitting a chromosome) without entering ``taken`` (other chromosomes),
    and fill their holes."""
    x1, y1, x2, y2 = box
    inner = mask[y1:y2, x1:x2].astype(np.uint8)
    result = np.zeros(mask.shape, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inner, connectivity=8)
    if count <= 1:
        return result
    h, w = inner.shape
    dx, dy = int(round(w * CENTRE)), int(round(h * CENTRE))
    central = set(np.unique(labels[dy:max(h - dy, dy + 1), dx:max(w - dx, dx + 1)]).tolist()) - {0}
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    keep = [i for i in range(1, count) if i in central or areas[i - 1] >= KEEP_FRACTION * largest]
    kept = np.isin(labels, keep).astype(np.uint8)
    if len(keep) > 1:
        kept = _bridge(kept, labels, keep, taken[y1:y2, x1:x2])
    # fill holes: background not reachable from the border of the (padded) box
    padded = cv2.copyMakeBorder(kept, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), dtype=np.uint8), (0, 0), 2)
    filled = (flood[1:-1, 1:-1] != 2)
    result[y1:y2, x1:x2] = filled
    return result


def _bridge(kept: np.ndarray, labels: np.ndarray, keep: list[int], taken: np.ndarray) -> np.ndarray:
    """Join each kept component to the largest by a band (about half the chromosome's width)
    between their nearest points, outside ``taken``: a pale band (a dim centromere, 9qh) can
    split a chromosome's mask, but it is one object."""
    areas = [int(np.count_nonzero(labels == i)) for i in keep]
    largest = keep[int(np.argmax(areas))]
    main = labels == largest
    distance, (near_y, near_x) = ndimage.distance_transform_edt(~main, return_indices=True)
    width = 2.0 * float(ndimage.distance_transform_edt(np.pad(main, 1)).max())
    thickness = max(int(round(width / 2)), 2)
    band = np.zeros(kept.shape, dtype=np.uint8)
    for index in keep:
        if index == largest:
            continue
        ys, xs = np.nonzero(labels == index)
        nearest = int(np.argmin(distance[ys, xs]))
        y, x = int(ys[nearest]), int(xs[nearest])
        cv2.line(band, (x, y), (int(near_x[y, x]), int(near_y[y, x])), 1, thickness, cv2.LINE_8)
    return kept | (band & ~taken.astype(np.uint8) & 1)


def _ellipse(shape: tuple[int, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    """An ellipse filling ``box`` less the labels' usual slack (1 px in x, 3 px in y)."""
    x1, y1, x2, y2 = box
    mask = np.zeros(shape[:2], dtype=np.uint8)
    centre = ((x1 + x2 - 1) // 2, (y1 + y2 - 1) // 2)
    axes = (max((x2 - x1) // 2 - 1, 1), max((y2 - y1) // 2 - 3, 1))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask.astype(bool)


def cut_out_all(image: np.ndarray, boxes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut every box's chromosome out of one karyogram: ``[(patch, alpha), ...]``.

    ``patch`` is float32, the grey level above the box's local background (0 where ``alpha`` is
    0), ``alpha`` float32 in [0, 1]; both cover :func:`crop_window` of the box.
    """
    grey = to_grey(image)
    smooth = cv2.medianBlur(np.clip(grey, 0, 255).astype(np.uint8), 3).astype(np.float32)
    pixel_boxes = _pixel_boxes(boxes, grey.shape)
    found = [_foreground(smooth, box) for box in pixel_boxes]
    masks = _owners([mask for mask, _ in found], pixel_boxes, smooth)
    claimed = np.zeros(grey.shape, dtype=np.uint8)
    for mask in masks:
        claimed += mask
    result = []
    for index, box in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        own, background = found[index]
        clean = _clean(masks[index], pixel_boxes[index], (claimed - masks[index]) > 0)
        if not clean.any():  # another box took it all: fall back on the box's own foreground
            clean = _clean(own, pixel_boxes[index], np.zeros_like(clean))
        if not clean.any():  # nothing above the background: the chromosome's likely place
            clean = _ellipse(grey.shape, pixel_boxes[index])
        x0, y0, x1, y1 = crop_window(box, grey.shape)
        alpha = clean[y0:y1, x0:x1].astype(np.float32)
        if FEATHER > 0 and alpha.size:
            alpha = cv2.GaussianBlur(alpha, (0, 0), FEATHER)
            inside = clean[y0:y1, x0:x1]
            alpha[inside] = np.maximum(alpha[inside], 0.5)  # alpha >= 0.5 is exactly the mask
            alpha[~inside] = np.minimum(alpha[~inside], 0.49)
        patch = np.clip(grey[y0:y1, x0:x1] - np.float32(background), 0, None) * (alpha > 0)
        result.append((patch.astype(np.float32), alpha))
    return result


def cut_out(
    image: np.ndarray, box: Sequence[float], others: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One chromosome's ``(patch, alpha)`` (see :func:`cut_out_all`); ``others`` are the other
    boxes of the image, whose chromosomes are kept out of this one's mask where boxes overlap."""
    boxes = np.asarray(box, dtype=np.float64).reshape(1, 4)
    if others is not None and len(others):
        boxes = np.concatenate([boxes, np.asarray(others, dtype=np.float64).reshape(-1, 4)])
    return cut_out_all(image, boxes)[0]
