"""Karyograms: the chromosomes of a metaphase spread cut out, turned upright and laid out in ISCN order.

A karyogram shows each counted chromosome cut out of the spread (its box, slightly padded, and
masked to the chromosome by thresholding against the local background so that neighbours do not
intrude), turned so that its long axis is vertical, and placed in the ISCN rows 1-5, 6-12, 13-18
and 19-22 + X, Y: homologues side by side (49 labels: ``N-l`` left of ``N-r``, then ``N-?``; 24
classes: in the spread's left-to-right order; an extra copy beside its pair) above a line with the
chromosome's name. Every chromosome is drawn at ONE scale, so lengths compare; labels that are not
chromosome labels go to an extra row (``?``).

Polarity is made consistent: the spread's background becomes the karyogram's background (white by
default, with dark chromosomes; or black, with bright ones) whatever the staining, so a bright-on-dark
(Q-band, fluorescence) spread is inverted on a white karyogram.

Each chromosome has a number, its place in reading order (row by row, left to right); draw it on the
spread with :func:`draw_numbers` to cross-reference the two. Pure NumPy/OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Collection, Sequence

import cv2
import numpy as np

from keras_frcnn.annotations.classes import chromosome_of
from keras_frcnn.inference.detections import Detections

ISCN_ROWS: tuple[tuple[str, ...], ...] = (
    ("1", "2", "3", "4", "5"),
    tuple(str(n) for n in range(6, 13)),
    tuple(str(n) for n in range(13, 19)),
    ("19", "20", "21", "22", "X", "Y"),
)
"""The chromosome groups of each karyogram row (ISCN)."""

OTHER_GROUP = "?"
"""The group (in a fifth row) of detections whose label is not a chromosome label."""

BACKGROUNDS = ("white", "black")
"""Karyogram backgrounds: dark chromosomes on white, or bright chromosomes on black."""

PAD_FRACTION = 0.15  # a crop is the box padded by this fraction of its longer side...
MIN_PAD = 3  # ...and at least this many pixels
BOX_MARGIN = 1  # a chromosome's mask reaches at most this far outside its box
TARGET_LENGTH = 150  # automatic scale: the longest chromosome this many karyogram pixels tall
SCALE_RANGE = (0.25, 10.0)  # automatic scale limits
ROUND_ASPECT = 1.3  # a mask whose principal axes differ less than this keeps its box orientation

_SIDE_ORDER = {"l": 0, "": 1, "r": 2, "?": 3}
_UNCERTAIN_RGB = (235, 120, 0)  # orange: score below the low-confidence threshold
_CHANGED_RGB = (200, 0, 0)  # red: a group whose count differs from the normal karyotype
_FONT = cv2.FONT_HERSHEY_SIMPLEX
# Layout, in karyogram pixels (independent of the chromosome scale).
_MARGIN = 16
_HOMOLOGUE_GAP = 6
_GROUP_GAP = 22
_NUMBER_BAND = 16  # above each chromosome: its number
_LABEL_BAND = 26  # under the baseline: the group's name
_ROW_GAP = 12
_MIN_ROW_HEIGHT = 24


# ----------------------------------------------------------------------------- one chromosome
def chromosome_signal(image: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
    """``float32 [H, W]`` in 0..1: how much each pixel of ``image`` (grey or RGB) stands out from
    the spread's background (its median) on the chromosomes' side: 0 = background, 1 = the
    strongest chromosome pixels (99.5th percentile inside ``boxes``). Whether chromosomes are dark on
    light or bright on dark is told from the pixels inside the boxes (without boxes: the darker side
    of mid-grey is the background)."""
    grey = _grey(image)
    background = float(np.median(grey))
    inside = _pixels_in_boxes(grey, boxes)
    if inside.size:
        bright = float(inside.mean()) >= background
        excess = (inside - background) if bright else (background - inside)
        ink = float(np.percentile(excess, 99.5))
    else:
        bright = background < 128.0
        ink = 0.0
    ink = max(ink, 1.0)
    signal = (grey - background) if bright else (background - grey)
    return np.clip(signal / ink, 0.0, 1.0).astype(np.float32)


def chromosome_mask(signal: np.ndarray, inner: Sequence[float] | None = None) -> np.ndarray | None:
    """The pixels of the chromosome in a padded crop, or None when thresholding fails.

    ``signal`` is the crop's chromosome signal (``>= 0``, large on the chromosome); ``inner`` its box
    inside the crop (``x1, y1, x2, y2``; default: the whole crop). The local background is the
    median of the crop's border; pixels above half Otsu's threshold over it are candidates, closed
    (banded chromosomes keep their pale bands) and cut to the box (plus :data:`BOX_MARGIN` pixels); the
    connected component with the most pixels inside the box is kept, its thin necks to touching
    neighbours cut (an opening with a disc half its width), holes filled. Fails (None) when nothing stands out from the background
    or the component is implausible (under 3 % of the box, or nearly the whole crop)."""
    signal = np.asarray(signal, np.float32)
    height, width = signal.shape
    if height < 3 or width < 3:
        return None
    x1, y1, x2, y2 = _inner_rect(inner, width, height)
    ring = np.concatenate([signal[:2].ravel(), signal[-2:].ravel(), signal[:, :2].ravel(), signal[:, -2:].ravel()])
    background = float(np.median(ring))
    noise = 1.4826 * float(np.median(np.abs(ring - background)))
    excess = cv2.GaussianBlur(signal - background, (3, 3), 0)
    peak = float(np.percentile(excess[y1:y2, x1:x2], 99)) if x2 > x1 and y2 > y1 else 0.0
    if peak <= max(4.0 * noise, 0.04):
        return None
    scaled = (np.clip(excess / peak, 0.0, 1.0) * 255.0).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(0.5 * otsu, 255.0 * 3.0 * noise / peak, 20.0)
    binary = (scaled > level).astype(np.uint8)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    keep = np.zeros_like(binary)  # the box and a small margin: neighbours cannot join in from outside
    keep[max(0, y1 - BOX_MARGIN):y2 + BOX_MARGIN, max(0, x1 - BOX_MARGIN):x2 + BOX_MARGIN] = 1
    binary &= keep
    best = _best_component(binary, (x1, y1, x2, y2))
    if best is None:
        return None
    # cut the thin necks where a touching neighbour joins: open with a disc about half the
    # chromosome's width, keep the best component again, and grow it back inside the thresholded pixels
    width_estimate = 2.0 * float(cv2.distanceTransform(best.astype(np.uint8), cv2.DIST_L2, 3).max())
    size = int(round(0.5 * width_estimate)) | 1
    if size >= 3:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        core = _best_component(cv2.morphologyEx(best.astype(np.uint8), cv2.MORPH_OPEN, disc), (x1, y1, x2, y2))
        if core is not None:
            best = cv2.dilate(core.astype(np.uint8), disc).astype(bool) & best
    inside = int(best[y1:y2, x1:x2].sum())
    box_area = max((x2 - x1) * (y2 - y1), 1)
    mask = _fill_holes(best)
    area = int(mask.sum())
    if inside < max(8, 0.03 * box_area) or area > 0.95 * height * width:
        return None
    return mask


def principal_angle(mask: np.ndarray) -> float | None:
    """The counter-clockwise rotation (degrees, in ``[-90, 90)``) that turns the long axis of the
    ``True`` pixels of ``mask`` vertical; None when the shape is nearly round (no clear axis)."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        return None
    x = xs - xs.mean()
    y = ys - ys.mean()
    mu20, mu02, mu11 = float((x * x).mean()), float((y * y).mean()), float((x * y).mean())
    spread = math.hypot(mu20 - mu02, 2.0 * mu11)
    major, minor = (mu20 + mu02 + spread) / 2.0, (mu20 + mu02 - spread) / 2.0
    if major < ROUND_ASPECT**2 * max(minor, 1e-9):
        return None
    theta = 0.5 * math.degrees(math.atan2(2.0 * mu11, mu20 - mu02))  # long axis from +x, y down
    return _wrap_angle(theta + 90.0)


def rotate_bound(image: np.ndarray, angle: float, fill: float | Sequence[float] = 0,
                 interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` rotated ``angle`` degrees counter-clockwise on a canvas large enough to hold all of
    it (corners filled with ``fill``)."""
    height, width = image.shape[:2]
    quarter = angle / 90.0
    if abs(quarter - round(quarter)) < 1e-9:  # exact quarter turns, without resampling
        turns = int(round(quarter)) % 4
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image.copy()
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width = int(math.ceil(round(height * sin + width * cos, 6)))
    new_height = int(math.ceil(round(height * cos + width * sin, 6)))
    matrix[0, 2] += (new_width - 1) / 2.0 - centre[0]
    matrix[1, 2] += (new_height - 1) / 2.0 - centre[1]
    if np.ndim(fill) == 0 and image.ndim == 3:
        fill = (float(fill),) * image.shape[2]
    return cv2.warpAffine(image, matrix, (new_width, new_height), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


@dataclass(frozen=True)
class Upright:
    """A chromosome turned upright: ``signal`` (float32, 0 = background) and ``alpha`` (float32 0..1,
    the chromosome's pixels; all ones when unmasked) of the same shape, the counter-clockwise
    ``angle`` it was turned by, and whether a mask was found (else the box was used)."""

    signal: np.ndarray
    alpha: np.ndarray
    angle: float
    masked: bool


def upright_chromosome(signal: np.ndarray, inner: Sequence[float] | None = None, *, mask: bool = True) -> Upright:
    """Turn the chromosome of a padded crop's ``signal`` upright (see :func:`upright`), trimmed to the
    chromosome (its mask, else its box ``inner``)."""
    signal = np.asarray(signal, np.float32)
    height, width = signal.shape
    x1, y1, x2, y2 = _inner_rect(inner, width, height)
    found = chromosome_mask(signal, (x1, y1, x2, y2)) if mask else None
    angle = principal_angle(found) if found is not None else None
    if angle is None:  # no mask, or a round one: the box's orientation
        angle = 0.0 if (y2 - y1) >= (x2 - x1) else 90.0
    if found is None:
        found = np.zeros_like(signal, bool)
        found[y1:y2, x1:x2] = True
        masked = False
    else:
        masked = True
    turned = rotate_bound(signal, angle, 0.0)
    alpha = rotate_bound(found.astype(np.float32), angle, 0.0)
    rows = np.flatnonzero(alpha.max(axis=1) > 0.5)
    columns = np.flatnonzero(alpha.max(axis=0) > 0.5)
    if len(rows) == 0:
        return Upright(turned, np.ones_like(turned), float(angle), False)
    keep = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    alpha = alpha[keep] if masked else np.ones_like(alpha[keep])
    return Upright(np.ascontiguousarray(turned[keep]), np.ascontiguousarray(alpha), float(angle), masked)


def upright(crop: np.ndarray, *, mask: bool = True) -> tuple[np.ndarray, float]:
    """``(rotated crop, angle)``: a crop of one chromosome (grey or RGB, its background around it)
    turned ``angle`` degrees counter-clockwise so that its long axis is vertical, and trimmed to the
    chromosome.

    The long axis is the principal axis of the chromosome's thresholded pixels
    (:func:`chromosome_mask`, against the crop's border as the local background); when thresholding
    fails (or ``mask=False``) the crop is turned a quarter only if it is wider than tall."""
    crop = np.asarray(crop)
    grey = _grey(crop)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    found = chromosome_mask(np.abs(grey - background)) if mask else None
    angle = principal_angle(found) if found is not None else None
    if angle is None:
        angle = 0.0 if crop.shape[0] >= crop.shape[1] else 90.0
    if crop.ndim == 2:
        fill: float | tuple[float, ...] = background
    else:
        fill = tuple(float(np.median(np.concatenate([crop[0, :, c], crop[-1, :, c], crop[:, 0, c], crop[:, -1, c]])))
                     for c in range(crop.shape[2]))
    turned = rotate_bound(crop, angle, fill)
    if found is not None:
        inside = rotate_bound(found.astype(np.float32), angle, 0.0) > 0.5
        rows, columns = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        turned = turned[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    return np.ascontiguousarray(turned), float(angle)


def crop_box(box: Sequence[float], height: int, width: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """``(padded crop, box inside the crop)`` for a box ``x1, y1, x2, y2`` in an image of this size
    (padded by :data:`PAD_FRACTION` of its longer side, at least :data:`MIN_PAD` pixels, clipped)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    pad = max(MIN_PAD, PAD_FRACTION * max(x2 - x1, y2 - y1))
    cx1, cy1 = max(0, int(math.floor(x1 - pad))), max(0, int(math.floor(y1 - pad)))
    cx2, cy2 = min(width, int(math.ceil(x2 + pad))), min(height, int(math.ceil(y2 + pad)))
    cx2, cy2 = max(cx2, min(cx1 + 1, width)), max(cy2, min(cy1 + 1, height))
    inner = (int(round(x1)) - cx1, int(round(y1)) - cy1, int(round(x2)) - cx1, int(round(y2)) - cy1)
    return (cx1, cy1, cx2, cy2), inner


# ----------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Place:
    """Where a chromosome goes: karyogram ``row``, ``group`` (column in the row, an index into
    :data:`ISCN_ROWS` ``[row]``; row 4 is the extra row of :data:`OTHER_GROUP`), ``slot`` in the group
    (0 = leftmost) and ``number``, its 1-based place in reading order."""

    row: int
    group: int
    slot: int
    number: int


def iscn_layout(labels: Sequence[str], x: Sequence[float] | None = None) -> list[Place]:
    """The :class:`Place` of each label (same order): chromosome ``N`` of either scheme (``7``,
    ``7-l``) in its ISCN row and group; in a group ``N-l`` before ``N``, ``N-r``, ``N-?``, then by ``x``
    (e.g. box centres: left before right in the spread), then input order. Labels that are not
    chromosome labels go to row 4, group :data:`OTHER_GROUP`."""
    labels = [str(label).strip() for label in labels]
    x = [0.0] * len(labels) if x is None else [float(v) for v in x]
    if len(x) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(x)} x positions")
    where = {name: (row, group) for row, names in enumerate(ISCN_ROWS) for group, name in enumerate(names)}
    groups: dict[tuple[int, int], list[int]] = {}
    for index, label in enumerate(labels):
        chromosome = chromosome_of(label)
        key = where[chromosome] if chromosome is not None else (len(ISCN_ROWS), 0)
        groups.setdefault(key, []).append(index)
    places: list[Place | None] = [None] * len(labels)
    number = 0
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda i: (_SIDE_ORDER.get(_side(labels[i]), 1), x[i], i))
        for slot, index in enumerate(members):
            number += 1
            places[index] = Place(key[0], key[1], slot, number)
    return places  # type: ignore[return-value]


def karyogram_numbers(detections: Detections) -> list[int]:
    """Each detection's number in the karyogram (:func:`iscn_layout`, box centres as ``x``)."""
    centres = (detections.boxes[:, 0] + detections.boxes[:, 2]) / 2.0
    return [place.number for place in iscn_layout(detections.labels, centres.tolist())]


# ----------------------------------------------------------------------------- the karyogram
@dataclass(frozen=True)
class Karyogram:
    """A composed karyogram: ``image`` (uint8 RGB) and, per input detection (same order), its
    ``cells`` (``x1, y1, x2, y2`` of the drawn chromosome in ``image``), ``numbers`` (place in
    reading order), ``angles`` (counter-clockwise degrees it was turned by) and ``masked`` (a mask
    was found; else the padded box is shown); ``scale`` is karyogram pixels per spread pixel."""

    image: np.ndarray
    cells: np.ndarray
    numbers: tuple[int, ...]
    angles: np.ndarray
    masked: np.ndarray
    scale: float


def render_karyogram(
    image: np.ndarray,
    detections: Detections,
    *,
    low_confidence: float = 0.5,
    title: str = "",
    highlight: Collection[str] = (),
    scale: float | None = None,
    background: str = "white",
    mask: bool = True,
) -> Karyogram:
    """Compose the karyogram of the chromosomes ``detections`` (the counted ones, e.g.
    :func:`keras_frcnn.inference.karyotype.select_chromosomes`) of a spread ``image`` (uint8 grey or RGB).

    ``title`` heads it (e.g. the ISCN draft); chromosomes scoring below ``low_confidence`` get an
    orange frame and a ``?`` after their number; the names of the groups in ``highlight`` (e.g. the
    chromosomes gained or lost) are red, with their count. ``scale`` (karyogram pixels per spread
    pixel, the same for every chromosome) defaults to drawing the longest :data:`TARGET_LENGTH`
    pixels tall. ``background``: ``white`` (dark chromosomes) or ``black`` (bright ones)."""
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, not {background!r}")
    image = np.asarray(image)
    height, width = image.shape[:2]
    signal = chromosome_signal(image, detections.boxes)
    chromosomes: list[Upright] = []
    for box in detections.boxes:
        (cx1, cy1, cx2, cy2), inner = crop_box(box, height, width)
        chromosomes.append(upright_chromosome(signal[cy1:cy2, cx1:cx2], inner, mask=mask))
    centres = (detections.boxes[:, 0] + detections.boxes[:, 2]) / 2.0
    places = iscn_layout(detections.labels, centres.tolist())
    if scale is None:
        longest = max((c.signal.shape[0] for c in chromosomes), default=0)
        scale = float(np.clip(TARGET_LENGTH / longest, *SCALE_RANGE)) if longest else 1.0
    scale = float(scale)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    drawn = [_resize(c, scale) for c in chromosomes]

    rows = [list(names) for names in ISCN_ROWS]
    if any(p.row == len(ISCN_ROWS) for p in places):
        rows.append([OTHER_GROUP])
    members: dict[tuple[int, int], list[int]] = {}
    for index, place in sorted(enumerate(places), key=lambda item: item[1].slot):
        members.setdefault((place.row, place.group), []).append(index)

    def group_width(key: tuple[int, int]) -> int:
        widths = [drawn[i][0].shape[1] for i in members.get(key, [])]
        return sum(widths) + _HOMOLOGUE_GAP * max(len(widths) - 1, 0)

    label_width = _text_size("22 (3)", 0.5, 1)[0]
    row_widths = [len(names) * (max([group_width((r, g)) for g in range(len(names))] + [label_width]) + _GROUP_GAP)
                  for r, names in enumerate(rows)]
    ink, paper, rule = ((0, 0, 0), (255, 255, 255), (120, 120, 120)) if background == "white" else \
        ((255, 255, 255), (0, 0, 0), (150, 150, 150))
    low = [float(s) < low_confidence for s in detections.scores]
    caption = (f"{len(detections)} chromosomes; orange frame and '?': score < {low_confidence:g} ({sum(low)}); "
               f"one scale for all: {scale:.2f} x spread pixels")
    title_lines = [line for line in (title, caption) if line]
    title_height = sum(_text_size(line, 0.55 if i == 0 else 0.42, 1)[1] + 12 for i, line in enumerate(title_lines))
    canvas_width = 2 * _MARGIN + max(row_widths + [_text_size(line, 0.55, 1)[0] for line in title_lines])
    row_heights = [max([drawn[i][0].shape[0] for key, found in members.items() if key[0] == r for i in found]
                       + [_MIN_ROW_HEIGHT]) for r in range(len(rows))]
    canvas_height = _MARGIN + title_height + 8 + sum(
        _NUMBER_BAND + h + _LABEL_BAND + _ROW_GAP for h in row_heights) + _MARGIN - _ROW_GAP
    canvas = np.empty((canvas_height, canvas_width, 3), np.uint8)
    canvas[:] = paper

    y = _MARGIN
    for i, line in enumerate(title_lines):
        size = 0.55 if i == 0 else 0.42
        text_w, text_h = _text_size(line, size, 1)
        y += text_h + (4 if i == 0 else 8)
        cv2.putText(canvas, line, (_MARGIN, y), _FONT, size, ink, 1, cv2.LINE_AA)
        y += 4
    y += 8 + 4

    cells = np.zeros((len(detections), 4), np.int32)
    for r, names in enumerate(rows):
        slot_width = (canvas_width - 2 * _MARGIN) / len(names)
        baseline = y + _NUMBER_BAND + row_heights[r]
        for g, name in enumerate(names):
            key = (r, g)
            centre = _MARGIN + (g + 0.5) * slot_width
            left = int(round(centre - group_width(key) / 2.0))
            for index in members.get(key, []):
                picture, alpha = drawn[index]
                h, w = picture.shape
                top = baseline - h
                _paste(canvas, picture, alpha, left, top, background)
                cells[index] = (left, top, left + w, top + h)
                colour = _UNCERTAIN_RGB if low[index] else rule
                text = f"{places[index].number}{'?' if low[index] else ''}"
                text_w, _ = _text_size(text, 0.38, 1)
                cv2.putText(canvas, text, (int(left + w / 2 - text_w / 2), top - 4), _FONT, 0.38,
                            _UNCERTAIN_RGB if low[index] else ink, 1, cv2.LINE_AA)
                if low[index]:
                    cv2.rectangle(canvas, (left - 2, top - 2), (left + w + 1, top + h + 1), colour, 1)
                left += w + _HOMOLOGUE_GAP
            line_half = max(group_width(key), label_width * 0.6) / 2.0
            cv2.line(canvas, (int(centre - line_half), baseline + 3), (int(centre + line_half), baseline + 3), rule, 1)
            count = len(members.get(key, []))
            changed = name in highlight
            text = f"{name} ({count})" if changed else name
            text_w, text_h = _text_size(text, 0.5, 1)
            cv2.putText(canvas, text, (int(centre - text_w / 2), baseline + 8 + text_h), _FONT, 0.5,
                        _CHANGED_RGB if changed else ink, 1, cv2.LINE_AA)
        y = baseline + _LABEL_BAND + _ROW_GAP

    return Karyogram(
        image=canvas,
        cells=cells,
        numbers=tuple(p.number for p in places),
        angles=np.asarray([c.angle for c in chromosomes], np.float32),
        masked=np.asarray([c.masked for c in chromosomes], bool),
        scale=scale,
    )


def compose_karyogram(image: np.ndarray, detections: Detections, **options) -> np.ndarray:
    """The karyogram image (uint8 RGB) of :func:`render_karyogram` (same options)."""
    return render_karyogram(image, detections, **options).image


def draw_numbers(image: np.ndarray, boxes: np.ndarray, numbers: Sequence[int]) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with each box's number on a small dark tag under the box
    (inside it at the image's bottom edge): the cross-reference to the karyogram."""
    canvas = np.ascontiguousarray(np.asarray(image).copy())
    height, width = canvas.shape[:2]
    size = max(0.35, min(height, width) / 1600.0)
    thickness = max(1, int(round(size * 1.5)))
    for box, number in zip(np.asarray(boxes).reshape(-1, 4), numbers):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        text = f"#{number}"
        (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, size, thickness)
        tag_h = text_h + baseline + 2
        top = y2 + 1 if y2 + 1 + tag_h <= height else max(y2 - tag_h, 0)
        left = int(min(max(x1, 0), max(width - text_w - 2, 0)))
        cv2.rectangle(canvas, (left, top), (left + text_w + 2, top + tag_h), (20, 20, 20), cv2.FILLED)
        cv2.putText(canvas, text, (left + 1, top + text_h + 1), _FONT, size, (255, 255, 255), thickness, cv2.LINE_AA)
    return canvas


# ----------------------------------------------------------------------------- helpers
def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[:, :, :3].astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32) \
            if image.shape[2] >= 3 else image[:, :, 0]
    return np.asarray(image, np.float32)


def _pixels_in_boxes(grey: np.ndarray, boxes: np.ndarray | None) -> np.ndarray:
    if boxes is None or len(boxes) == 0:
        return np.zeros(0, np.float32)
    height, width = grey.shape
    inside = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        inside[max(0, int(y1)):min(height, int(math.ceil(y2))), max(0, int(x1)):min(width, int(math.ceil(x2)))] = True
    return grey[inside]


def _inner_rect(inner: Sequence[float] | None, width: int, height: int) -> tuple[int, int, int, int]:
    if inner is None:
        return 0, 0, width, height
    x1, y1, x2, y2 = (int(round(float(v))) for v in inner)
    x1, x2 = int(np.clip(x1, 0, width)), int(np.clip(x2, 0, width))
    y1, y2 = int(np.clip(y1, 0, height)), int(np.clip(y2, 0, height))
    return x1, y1, max(x2, x1), max(y2, y1)


def _best_component(binary: np.ndarray, inner: tuple[int, int, int, int]) -> np.ndarray | None:
    """The connected component of ``binary`` with the most pixels inside ``inner`` (None: none there)."""
    x1, y1, x2, y2 = inner
    count, components = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    inside = np.bincount(components[y1:y2, x1:x2].ravel(), minlength=count)
    inside[0] = 0
    if inside.max() == 0:
        return None
    return components == int(np.argmax(inside))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its enclosed holes filled (flood fill of the background from the border)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8), (0, 0), 1)
    holes = flood == 0
    return (padded.astype(bool) | holes)[1:-1, 1:-1]


def _wrap_angle(angle: float) -> float:
    return (angle + 90.0) % 180.0 - 90.0


def _side(label: str) -> str:
    return label.rsplit("-", 1)[1] if "-" in label else ""


def _resize(chromosome: Upright, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The chromosome's signal and alpha at ``scale`` (at least 1 x 1 pixel)."""
    h, w = chromosome.signal.shape
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    signal = cv2.resize(chromosome.signal, size, interpolation=interpolation)
    alpha = cv2.resize(chromosome.alpha, size, interpolation=interpolation)
    if chromosome.masked:  # soften the mask's staircase edge
        alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    return signal.reshape(size[1], size[0]), np.clip(alpha, 0.0, 1.0).reshape(size[1], size[0])


def _paste(canvas: np.ndarray, signal: np.ndarray, alpha: np.ndarray, left: int, top: int, background: str) -> None:
    """Blend a chromosome (signal 0..1, alpha 0..1) onto the canvas at (left, top)."""
    h, w = signal.shape
    ink = 1.0 - signal if background == "white" else signal
    region = canvas[top:top + h, left:left + w].astype(np.float32)
    blended = region * (1.0 - alpha[:, :, None]) + (255.0 * ink)[:, :, None] * alpha[:, :, None]
    canvas[top:top + h, left:left + w] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _text_size(text: str, scale: float, thickness: int) -> tuple[int, int]:
    (width, height), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    return width, height + baseline
