"""Do the configured anchors fit the ground truth? Coverage check and data-driven anchor suggestion.

NumPy only (no TensorFlow import), so it can run before a model is built.

**Coverage** (:func:`anchor_coverage`): every ground-truth box is taken as the pipeline will feed
it -- moved by each augmentation transform the config enables (the D4 subgroup of
``hflip``/``vflip``/``rot90``; every box is counted once per transform, so a 90-degree turn
contributes the transposed box), scaled per axis by the ratio of the pipeline's ``resized_shape``
to the original size, clipped to the resized image -- and compared with the anchors of that
image's own grid, as in a batch of one (a padded batch's grid runs on over the padding, which can
add a row or column of fitting anchors when a side is not a multiple of the stride, and more when
``rpn_allowed_border`` lets anchors cross the border):

* grid size: the feature map of the configured backbone, ``floor(side / stride)`` for ``vgg16``
  and ``tiny`` (2x2 "valid" max-pools) and ``ceil(side / stride)`` for ``resnet50`` (its padded
  stride-2 convolutions); cell ``(i, j)`` is centred at ``((j + 0.5) * stride, (i + 0.5) * stride)``
  as in :func:`keras_frcnn.model.anchors.anchor_grid`;
* only anchors inside the image up to ``config.rpn_allowed_border`` count, as in
  :func:`keras_frcnn.model.anchors.rpn_targets` (same float32 test).

The best IoU is found without an anchors x boxes matrix. For one anchor shape the intersection
with a box is ``overlap_x * overlap_y``; ``overlap_x`` depends only on the column of the anchor
and falls as its centre moves away from the box centre, and the border rule restricts columns to
one contiguous range (likewise rows), while the union grows only as the intersection shrinks.
So the best anchor of each shape is the one whose grid centre is nearest to the box centre,
clipped into the allowed range of columns and rows: ``K`` candidates per box, scored with
:func:`keras_frcnn.model.iou.pairwise_iou` (each box shifted into its candidate's
frame, so all candidates of one shape are the same centred anchor).

``ceiling`` bounds what any anchor set can do on this grid: the fraction of boxes that an anchor of
the best possible shape, centred at the nearest grid centre (border rule ignored), covers. For a
box offset ``dx`` from that centre, IoU as a function of the anchor width is linear-fractional
between the breakpoints ``|w - 2 dx|`` and ``w + 2 dx`` (and tends to 0 at both ends), likewise
for the height, so the optimum is one of four shapes. Small boxes that fall between grid centres
can't reach IoU 0.5 with any anchor: with stride 16, a square box needs about 40 px on a side to
be covered wherever it lies.

**Suggestion** (:func:`suggest_anchors`), on the same boxes:

1. start from quantiles of the resized boxes: scales at the mid-quantiles ``(i + 0.5) / n_scales``
   of ``sqrt(w * h)``, ratios at the mid-quantiles of ``log(h / w)``;
2. candidates: those plus geometric ladders (scales in steps of ``2 ** 0.25``, ratios in steps of
   ``2 ** 0.5``) over the 0.5-99.5 % range of both the boxes and the ideal anchor of each box found
   for ``ceiling`` (often wider than the box, to reach across the grid offset);
3. greedy: while fewer than ``target`` (0.99) of the boxes are covered, add the candidate scale,
   ratio or (scale, ratio) pair that covers the most extra boxes per added anchor shape, as long
   as the set stays within ``max_anchors`` shapes and something still improves;
4. prune: drop each scale, then each ratio, that the coverage reached does not need.

Scales are rounded to integers (one decimal below 10 px), ratios to two decimals; both come back
sorted and unique. When ``ceiling`` is below ``target`` no anchor set gets there: the cap stops
the growth, and a larger ``im_size`` (bigger objects relative to the stride) is the remedy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.model.backbones import backbone_stride
from keras_frcnn.config import Config
from keras_frcnn.errors import UserError
from keras_frcnn.model.geometry import base_anchors, resized_shape, transform_subgroup
from keras_frcnn.model.iou import pairwise_iou

# How the feature-map size follows from the (resized) image side, per backbone.
GRID_RULES = {"vgg16": "floor", "tiny": "floor", "resnet50": "ceil"}
WARN_UNCOVERED = 0.01  # warning() fires above this uncovered fraction ...
IMPROVABLE_BY = 0.05  # ... when fitted anchors would cover at least this much more (else note()) ...
GRID_CEILING_WARN = 0.5  # ... or when no anchor shape can cover even this fraction at this image size
_WORST = 10  # worst boxes kept in the report

ImageSizes = Mapping[str, tuple[int, int]] | Sequence[tuple[int, int]]


# --------------------------------------------------------------------------- geometry


def feature_size(length: int | np.ndarray, network: str, stride: int = 16) -> int | np.ndarray:
    """Feature-map cells along an image side of ``length`` pixels (see the module docstring)."""
    rule = GRID_RULES.get(network, "floor")
    length = np.asarray(length, np.int64)
    cells = -(-length // stride) if rule == "ceil" else length // stride
    return cells if cells.ndim else int(cells)


def _allowed_cells(lo: np.ndarray, hi: np.ndarray, length: np.ndarray, cells: np.ndarray, stride: float,
                   border: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last grid index whose anchor (extent ``lo .. hi`` around the centre, float32)
    stays within ``[-border, length + border]`` -- float32 like ``anchors.inside_image``.
    Arrays broadcast; ``first > last`` means no anchor of that shape fits."""
    s, b = np.float32(stride), np.float32(border)
    length32 = np.asarray(length, np.float32)

    def centre(j):
        return (j.astype(np.float32) + np.float32(0.5)) * s

    def lo_ok(j):
        return centre(j) + lo >= -b

    def hi_ok(j):
        return centre(j) + hi <= length32 + b

    first = np.ceil((-float(border) - lo.astype(np.float64)) / stride - 0.5).astype(np.int64)
    first = np.where(lo_ok(first - 1), first - 1, np.where(lo_ok(first), first, first + 1))
    last = np.floor((length + float(border) - hi.astype(np.float64)) / stride - 0.5).astype(np.int64)
    last = np.where(hi_ok(last + 1), last + 1, np.where(hi_ok(last), last, last - 1))
    first, last = np.broadcast_arrays(np.maximum(first, 0), np.minimum(last, cells - 1))
    return first, last


def _best_iou_per_shape(boxes: np.ndarray, image_hw: np.ndarray, shapes: np.ndarray, stride: float,
                        network: str, border: float) -> np.ndarray:
    """``[N, K]``: best IoU of each box with any allowed anchor of each shape (0 if none fits)."""
    n, k = len(boxes), len(shapes)
    out = np.zeros((n, k))
    if n == 0 or k == 0:
        return out
    # Allowed columns (rows) depend on the image width (height) and the shape only: per distinct side.
    widths, width_of = np.unique(image_hw[:, 1], return_inverse=True)
    heights, height_of = np.unique(image_hw[:, 0], return_inverse=True)
    cols = feature_size(widths, network, int(stride))[:, None]
    rows = feature_size(heights, network, int(stride))[:, None]
    j0, j1 = _allowed_cells(shapes[None, :, 0], shapes[None, :, 2], widths[:, None], cols, stride, border)
    i0, i1 = _allowed_cells(shapes[None, :, 1], shapes[None, :, 3], heights[:, None], rows, stride, border)
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3])
    near_j = np.floor(cx / stride).astype(np.int64)  # nearest centre (j + 0.5) * stride
    near_i = np.floor(cy / stride).astype(np.int64)
    half = np.float32(0.5)
    for shape in range(k):
        first_j, last_j = j0[width_of, shape], j1[width_of, shape]
        first_i, last_i = i0[height_of, shape], i1[height_of, shape]
        fits = (first_j <= last_j) & (first_i <= last_i)
        acx = (np.clip(near_j, first_j, np.maximum(first_j, last_j)).astype(np.float32) + half) * np.float32(stride)
        acy = (np.clip(near_i, first_i, np.maximum(first_i, last_i)).astype(np.float32) + half) * np.float32(stride)
        shift = np.stack([acx, acy, acx, acy], axis=1).astype(np.float64)
        out[:, shape] = np.where(fits, pairwise_iou(boxes - shift, shapes[shape : shape + 1])[:, 0], 0.0)
    return out


def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``a[n]`` with ``b[n]``, by :func:`pairwise_iou` against one unit box: IoU is kept
    by translation and by scaling each axis, so map every ``b[n]`` onto ``[-0.5, -0.5, 0.5, 0.5]``
    (a ``b[n]`` of zero width or height gives 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    width, height = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    ok = (width > 0) & (height > 0)
    out = np.zeros(len(a))
    centre = 0.5 * (b[ok, :2] + b[ok, 2:])
    size = np.stack([width[ok], height[ok]], axis=1)
    normalised = (a[ok] - np.tile(centre, 2)) / np.tile(size, 2)
    out[ok] = pairwise_iou(normalised, np.array([[-0.5, -0.5, 0.5, 0.5]]))[:, 0]
    return out


def _ceiling_iou(boxes: np.ndarray, image_hw: np.ndarray, stride: float,
                 network: str) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU ``[N]`` of each box with an anchor of any shape centred at the nearest grid
    centre (border rule ignored) -- an upper bound for every anchor set on this grid -- and that
    anchor's ``[N, 2]`` (width, height)."""
    if len(boxes) == 0:
        return np.zeros(0), np.zeros((0, 2))
    rows = feature_size(image_hw[:, 0], network, int(stride))
    cols = feature_size(image_hw[:, 1], network, int(stride))
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3])
    acx = (np.clip(np.floor(cx / stride), 0, np.maximum(cols - 1, 0)) + 0.5) * stride
    acy = (np.clip(np.floor(cy / stride), 0, np.maximum(rows - 1, 0)) + 0.5) * stride
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    dx, dy = np.abs(cx - acx), np.abs(cy - acy)
    best, shape = np.zeros(len(boxes)), np.stack([bw, bh], axis=1)
    for aw in (np.abs(bw - 2 * dx), bw + 2 * dx):
        for ah in (np.abs(bh - 2 * dy), bh + 2 * dy):
            anchors = np.stack([acx - aw / 2, acy - ah / 2, acx + aw / 2, acy + ah / 2], axis=1)
            iou = _paired_iou(boxes, anchors)
            better = iou > best
            best = np.where(better, iou, best)
            shape[better] = np.stack([aw, ah], axis=1)[better]
    return best, shape


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class _Boxes:
    """Ground truth of the sampled images, as the pipeline feeds it (one row per box and view)."""

    paths: tuple[str, ...]  # sampled images
    image: np.ndarray  # [N] index into paths
    index: np.ndarray  # [N] box index within its record
    transform: np.ndarray  # [N] D4 transform id of the view (keras_frcnn.data.augment)
    original: np.ndarray  # [N, 4] original pixels, untransformed
    boxes: np.ndarray  # [N, 4] float64, transformed, resized and clipped
    image_hw: np.ndarray  # [N, 2] int64 resized (height, width) of the view

    @property
    def sizes(self) -> np.ndarray:
        """``[N, 2]`` resized (width, height)."""
        return np.stack([self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1]], axis=1)


def augmentation_views(config: Config) -> tuple[int, ...]:
    """Transform ids the online augmentation draws from: the subgroup generated by
    ``config.hflip``/``vflip``/``rot90``."""
    return transform_subgroup(config.hflip, config.vflip, config.rot90)


def _transform(boxes: np.ndarray, height: int, width: int, transform: int) -> tuple[np.ndarray, int, int]:
    """Boxes and ``(height, width)`` after D4 transform ``transform`` (the table of
    :mod:`keras_frcnn.data.augment`: rotate ``t % 4`` quarter turns ccw, then mirror if ``t >= 4``)."""
    x1, y1, x2, y2 = boxes.T
    h, w = np.float32(height), np.float32(width)
    k = transform % 4
    rotated = (
        (x1, y1, x2, y2),
        (y1, w - x2, y2, w - x1),
        (w - x2, h - y2, w - x1, h - y1),
        (h - y2, x1, h - y1, x2),
    )[k]
    height, width = (width, height) if k % 2 else (height, width)
    if transform >= 4:
        rx1, ry1, rx2, ry2 = rotated
        rotated = (np.float32(width) - rx2, ry1, np.float32(width) - rx1, ry2)
    return np.stack(rotated, axis=1).astype(np.float32), height, width


def _sample(n: int, max_images: int | None, seed: int) -> np.ndarray:
    if max_images is None or max_images <= 0 or n <= max_images:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))


def _image_size(record: ImageRecord, position: int, image_sizes: ImageSizes | None) -> tuple[int, int]:
    if record.width is not None and record.height is not None:
        return int(record.height), int(record.width)
    if image_sizes is not None:
        try:
            size = image_sizes[record.path] if isinstance(image_sizes, Mapping) else image_sizes[position]
        except (KeyError, IndexError):
            size = None
        if size is not None:
            return int(size[0]), int(size[1])
    raise UserError(
        f"{record.path}: image size unknown; read the annotations with check_images=True "
        "or pass image_sizes={path: (height, width)}"
    )


def _check_views(views: Sequence[int]) -> tuple[int, ...]:
    views = tuple(sorted({int(t) for t in views}))
    if not views or views[0] < 0 or views[-1] > 7:
        raise UserError(f"transforms must be D4 ids 0..7, got {list(views)}")
    return views


def _collect(records: Sequence[ImageRecord], config: Config, max_images: int | None, seed: int,
             image_sizes: ImageSizes | None, views: Sequence[int]) -> _Boxes:
    chosen = _sample(len(records), max_images, seed)
    parts: dict[str, list] = {key: [] for key in ("image", "index", "transform", "original", "boxes", "image_hw")}
    paths = []
    for slot, position in enumerate(chosen):
        record = records[int(position)]
        paths.append(str(record.path))
        if record.num_boxes == 0:
            continue
        height, width = _image_size(record, int(position), image_sizes)
        for view in views:
            boxes, view_h, view_w = _transform(record.boxes, height, width, view)
            new_h, new_w = resized_shape(view_h, view_w, config.im_size, config.max_size)
            # As pipeline._resize_boxes: float32 ratio of the rounded new size to the old, then clip.
            ratio = np.array([new_w, new_h], np.float32) / np.array([view_w, view_h], np.float32)
            limit = np.array([new_w, new_h, new_w, new_h], np.float32)
            parts["boxes"].append(np.clip(boxes * np.tile(ratio, 2), 0.0, limit))
            parts["original"].append(record.boxes)
            parts["image"].append(np.full(record.num_boxes, slot))
            parts["index"].append(np.arange(record.num_boxes))
            parts["transform"].append(np.full(record.num_boxes, view))
            parts["image_hw"].append(np.tile([new_h, new_w], (record.num_boxes, 1)))
    empty = {"image": (0,), "index": (0,), "transform": (0,), "original": (0, 4), "boxes": (0, 4), "image_hw": (0, 2)}
    arrays = {key: np.concatenate(value) if value else np.zeros(empty[key]) for key, value in parts.items()}
    return _Boxes(
        paths=tuple(paths),
        image=arrays["image"].astype(np.int64),
        index=arrays["index"].astype(np.int64),
        transform=arrays["transform"].astype(np.int64),
        original=arrays["original"].astype(np.float64),
        boxes=arrays["boxes"].astype(np.float64),
        image_hw=arrays["image_hw"].astype(np.int64),
    )


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class UncoveredBox:
    """One poorly covered ground-truth box."""

    path: str
    index: int  # box index within its record
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original pixels
    width: float  # resized pixels
    height: float
    best_iou: float
    best_anchor: tuple[float, float] | None  # (scale, ratio) of the best anchor; None: none fits
    transform: int = 0  # D4 transform id of the view (keras_frcnn.data.augment)


@dataclass(frozen=True, eq=False)
class AnchorCoverage:
    """How well the anchors of a config cover a data set's boxes (see the module docstring)."""

    iou: float  # threshold for "covered"
    anchor_scales: tuple[float, ...]
    anchor_ratios: tuple[float, ...]
    stride: int
    grid_rule: str  # "floor" or "ceil": feature cells per image side
    num_images: int  # images sampled
    views: tuple[int, ...]  # D4 transform ids each image was looked at under (N counts every view)
    best_iou: np.ndarray  # [N] best IoU of each box with an allowed anchor
    best_anchor: np.ndarray  # [N] index of that anchor shape (scale-major order), -1: none fits
    box_sizes: np.ndarray  # [N, 2] resized (width, height)
    ceiling: float  # fraction coverable by an anchor of any shape on this grid (upper bound)
    worst: tuple[UncoveredBox, ...]  # lowest best IoU first
    suggested: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (scales, ratios)
    suggested_coverage: float | None = None

    @property
    def num_boxes(self) -> int:
        return int(len(self.best_iou))

    @property
    def num_covered(self) -> int:
        return int(np.count_nonzero(self.best_iou >= self.iou))

    @property
    def fraction_covered(self) -> float:
        return self.num_covered / self.num_boxes if self.num_boxes else 1.0

    @property
    def median_iou(self) -> float:
        return float(np.median(self.best_iou)) if self.num_boxes else float("nan")

    def smallest_uncovered(self) -> tuple[float, float] | None:
        """Resized (width, height) of the uncovered box of smallest area, or None."""
        uncovered = np.flatnonzero(self.best_iou < self.iou)
        if len(uncovered) == 0:
            return None
        areas = self.box_sizes[uncovered, 0] * self.box_sizes[uncovered, 1]
        w, h = self.box_sizes[uncovered[np.argmin(areas)]]
        return float(w), float(h)

    def _near_best(self) -> bool:
        """Whether the fitted anchors (when computed) would cover less than IMPROVABLE_BY more, on a
        grid where some anchor shape can cover at least GRID_CEILING_WARN of the boxes."""
        return (self.suggested is not None and self.ceiling >= GRID_CEILING_WARN
                and (self.suggested_coverage or 0.0) - self.fraction_covered < IMPROVABLE_BY)

    def warning(self) -> str | None:
        """One line when more than 1 % of the boxes are uncovered and either the anchors can do
        better (fitted anchors cover IMPROVABLE_BY more, or none were fitted) or the image size
        leaves most boxes uncoverable (below GRID_CEILING_WARN), else None."""
        missed = self.num_boxes - self.num_covered
        if missed <= WARN_UNCOVERED * self.num_boxes or self._near_best():
            return None
        w, h = self.smallest_uncovered()
        counted = f"{missed} of {self.num_boxes}"
        if len(self.views) > 1:
            counted += f" box views, {len(self.views)} augmentation transforms each"
        text = (
            f"{100.0 * missed / self.num_boxes:.1f}% of ground-truth boxes ({counted}) have no "
            f"anchor with IoU >= {self.iou:g} (smallest uncovered {w:.0f}x{h:.0f} px)"
        )
        if self.suggested is not None and (self.suggested_coverage or 0.0) > self.fraction_covered:
            scales, ratios = self.suggested
            text += (
                f"; suggested anchors (cover {100.0 * self.suggested_coverage:.1f}%): "
                f"--set anchor_scales={_json_list(scales)} --set anchor_ratios={_json_list(ratios)}"
            )
        if self.ceiling < 1.0 - WARN_UNCOVERED:
            text += (
                f"; on the stride-{self.stride} grid no anchor shape reaches IoU {self.iou:g} for "
                f"{100.0 * (1.0 - self.ceiling):.1f}% of the boxes (too small for the stride: a larger im_size helps)"
            )
        return text

    def note(self) -> str | None:
        """One line when more than 1 % of the boxes are uncovered although the anchors are near the
        best fitted ones: what limits them is the grid (thin or small boxes at this stride), not the
        anchors; else None."""
        missed = self.num_boxes - self.num_covered
        if missed <= WARN_UNCOVERED * self.num_boxes or not self._near_best():
            return None
        w, h = self.smallest_uncovered()
        return (
            f"{100.0 * missed / self.num_boxes:.1f}% of ground-truth boxes have no anchor with IoU >= {self.iou:g} "
            f"(smallest uncovered {w:.0f}x{h:.0f} px); "
            f"the anchors are near the best for this image size (fitted ones cover "
            f"{100.0 * self.suggested_coverage:.1f}%, any shape at most {100.0 * self.ceiling:.1f}% on the "
            f"stride-{self.stride} grid), and the RPN still gives every box its best anchor; a larger --im-size "
            f"covers more, at a higher cost"
        )

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"anchors: scales {_json_list(self.anchor_scales)}, ratios {_json_list(self.anchor_ratios)}, "
            f"stride {self.stride} ({self.grid_rule} grid)",
            f"{self.num_boxes} boxes in {self.num_images} images"
            + (f" x {len(self.views)} transforms" if len(self.views) > 1 else "")
            + f": {100.0 * self.fraction_covered:.1f}% covered "
            f"at IoU >= {self.iou:g}, median best IoU {self.median_iou:.3f}, "
            f"at most {100.0 * self.ceiling:.1f}% coverable on this grid",
        ]
        for item in self.worst[:5]:
            anchor = "no anchor fits" if item.best_anchor is None else (
                f"anchor {item.best_anchor[0]:g}/{item.best_anchor[1]:g}")
            view = f" (transform {item.transform})" if item.transform else ""
            lines.append(
                f"  {item.path} box {item.index}{view}: {item.width:.0f}x{item.height:.0f} px, "
                f"best IoU {item.best_iou:.3f} ({anchor})"
            )
        warning, note = self.warning(), self.note()
        if warning:
            lines.append("warning: " + warning)
        if note:
            lines.append("note: " + note)
        return "\n".join(lines)


def _json_list(values: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(v):g}" for v in values) + "]"


def anchor_coverage(
    records: Sequence[ImageRecord],
    config: Config,
    *,
    iou: float = 0.5,
    max_images: int | None = 200,
    seed: int = 0,
    image_sizes: ImageSizes | None = None,
    transforms: Sequence[int] | None = None,
    suggest: bool = True,
) -> AnchorCoverage:
    """Best IoU of every ground-truth box with the anchors of ``config`` (module docstring).

    ``max_images`` images are sampled (seeded by ``seed``; None: all). Records without
    ``width``/``height`` need ``image_sizes``: ``{path: (height, width)}`` or a sequence of
    ``(height, width)`` parallel to ``records``. Each image is looked at under every D4
    transform in ``transforms`` (default: those the online augmentation of ``config`` draws,
    :func:`augmentation_views`; pass ``range(8)`` for the ``paper16`` expansion): a 90-degree
    turn swaps width and height, a flip moves boxes relative to the grid. With ``suggest``, a
    coverage that would warn also carries :func:`suggest_anchors`' proposal for the same boxes.
    """
    if not 0.0 < iou <= 1.0:
        raise UserError(f"iou must be in (0, 1], got {iou}")
    views = _check_views(augmentation_views(config) if transforms is None else transforms)
    data = _collect(records, config, max_images, seed, image_sizes, views)
    stride = backbone_stride(config)
    shapes = base_anchors(config.anchor_scales, config.anchor_ratios)
    per_shape = _best_iou_per_shape(data.boxes, data.image_hw, shapes, stride, config.network,
                                    config.rpn_allowed_border)
    if per_shape.shape[1]:
        best_anchor = np.argmax(per_shape, axis=1)
        best_iou = per_shape[np.arange(len(per_shape)), best_anchor]
    else:
        best_anchor, best_iou = np.zeros(len(per_shape), np.int64), np.zeros(len(per_shape))
    best_anchor = np.where(best_iou > 0.0, best_anchor, -1)
    ceiling_iou, _ = _ceiling_iou(data.boxes, data.image_hw, stride, config.network)
    ceiling = float(np.mean(ceiling_iou >= iou)) if len(ceiling_iou) else 1.0

    pairs = [(s, r) for s in config.anchor_scales for r in config.anchor_ratios]
    sizes = data.sizes
    worst = []
    for n in np.argsort(best_iou, kind="stable")[:_WORST]:
        if best_iou[n] >= iou:
            break
        worst.append(
            UncoveredBox(
                path=data.paths[data.image[n]],
                index=int(data.index[n]),
                box=tuple(float(v) for v in data.original[n]),
                width=float(sizes[n, 0]),
                height=float(sizes[n, 1]),
                best_iou=float(best_iou[n]),
                best_anchor=None if best_anchor[n] < 0 else tuple(float(v) for v in pairs[best_anchor[n]]),
                transform=int(data.transform[n]),
            )
        )
    coverage = AnchorCoverage(
        iou=float(iou),
        anchor_scales=tuple(config.anchor_scales),
        anchor_ratios=tuple(config.anchor_ratios),
        stride=stride,
        grid_rule=GRID_RULES.get(config.network, "floor"),
        num_images=len(data.paths),
        views=views,
        best_iou=best_iou,
        best_anchor=best_anchor,
        box_sizes=sizes,
        ceiling=ceiling,
        worst=tuple(worst),
    )
    if suggest and coverage.warning() is not None:
        scales, ratios, achieved = _suggest(data, config, iou=iou, n_scales=len(config.anchor_scales) or 4,
                                            n_ratios=len(config.anchor_ratios) or 5)
        coverage = dataclasses.replace(coverage, suggested=(scales, ratios), suggested_coverage=achieved)
    return coverage


# --------------------------------------------------------------------------- suggestion


def _round_scale(value: float) -> float:
    return float(round(value)) if value >= 10 else max(0.1, round(float(value), 1))


def _round_ratio(value: float) -> float:
    return max(0.01, round(float(value), 2))


def _mid_quantiles(values: np.ndarray, count: int) -> np.ndarray:
    return np.quantile(values, (np.arange(count) + 0.5) / count)


def _ladder(values: np.ndarray, step: float) -> np.ndarray:
    """Geometric ladder over the 0.5-99.5 % range of positive ``values``."""
    low, high = np.log(np.quantile(values, [0.005, 0.995]))
    count = max(1, int(np.ceil((high - low) / np.log(step))) + 1)
    return np.exp(np.linspace(low, high, count))


def _suggest(data: _Boxes, config: Config, *, iou: float, n_scales: int, n_ratios: int,
             target: float = 0.99, max_anchors: int = 40) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """(scales, ratios, fraction of ``data``'s boxes they cover)."""
    sizes = data.sizes
    ok = (sizes[:, 0] > 0) & (sizes[:, 1] > 0)
    if not np.any(ok):
        return tuple(config.anchor_scales), tuple(config.anchor_ratios), 0.0
    scale = np.sqrt(sizes[ok, 0] * sizes[ok, 1])
    ratio = sizes[ok, 1] / sizes[ok, 0]
    start_s = sorted({_round_scale(v) for v in _mid_quantiles(scale, n_scales)})
    start_r = sorted({_round_ratio(v) for v in np.exp(_mid_quantiles(np.log(ratio), n_ratios))})
    # Candidates also span the best shapes for each box's offset from the grid (often larger).
    _, best = _ceiling_iou(data.boxes, data.image_hw, backbone_stride(config), config.network)
    best = best[(best[:, 0] > 0) & (best[:, 1] > 0)]
    all_s = np.concatenate([scale, np.sqrt(best[:, 0] * best[:, 1])])
    all_r = np.concatenate([ratio, best[:, 1] / best[:, 0]])
    pool_s = sorted(set(start_s) | {_round_scale(v) for v in _ladder(all_s, 2.0**0.25)})
    pool_r = sorted(set(start_r) | {_round_ratio(v) for v in _ladder(all_r, 2.0**0.5)})

    shapes = base_anchors(pool_s, pool_r)  # scale-major: [S * R]
    per_shape = _best_iou_per_shape(data.boxes, data.image_hw, shapes, backbone_stride(config),
                                    config.network, config.rpn_allowed_border)
    hit = (per_shape >= iou).reshape(len(data.boxes), len(pool_s), len(pool_r))  # [N, S, R]
    num = max(1, len(data.boxes))

    def covered_by(s_idx: list[int], r_idx: list[int]) -> np.ndarray:
        if not s_idx or not r_idx:
            return np.zeros(len(hit), bool)
        return hit[:, s_idx][:, :, r_idx].any(axis=(1, 2))

    def coverage(s_idx: list[int], r_idx: list[int]) -> float:
        return float(np.count_nonzero(covered_by(s_idx, r_idx))) / num

    chosen_s = [pool_s.index(v) for v in start_s]
    chosen_r = [pool_r.index(v) for v in start_r]
    current = coverage(chosen_s, chosen_r)
    while current < target:
        # Add the scale i, the ratio j, or the pair (i, j) with the best gain per added anchor
        # shape. Boxes covered after adding (i, j): already covered | by (i, chosen ratios) |
        # by (chosen scales, j) | by (i, j) -- all candidates at once, [S, R].
        now = covered_by(chosen_s, chosen_r)
        by_scale = hit[:, :, chosen_r].any(axis=2) | now[:, None]  # [N, S]
        by_ratio = hit[:, chosen_s, :].any(axis=1) | now[:, None]  # [N, R]
        gain_s = by_scale.sum(axis=0) / num - current  # [S]
        gain_r = by_ratio.sum(axis=0) / num - current  # [R]
        gain_sr = (by_scale[:, :, None] | by_ratio[:, None, :] | hit).sum(axis=0) / num - current  # [S, R]
        n_s, n_r = len(chosen_s), len(chosen_r)
        free_s = np.ones(len(pool_s), bool)
        free_s[chosen_s] = False
        free_r = np.ones(len(pool_r), bool)
        free_r[chosen_r] = False
        options = []  # (gain per added shape, gain, scales added, ratios added)
        if (n_s + 1) * n_r <= max_anchors:
            options += [(gain_s[i] / n_r, gain_s[i], [i], []) for i in np.flatnonzero(free_s)]
        if n_s * (n_r + 1) <= max_anchors:
            options += [(gain_r[j] / n_s, gain_r[j], [], [j]) for j in np.flatnonzero(free_r)]
        if (n_s + 1) * (n_r + 1) <= max_anchors:
            options += [(gain_sr[i, j] / (n_s + n_r + 1), gain_sr[i, j], [i], [j])
                        for i in np.flatnonzero(free_s) for j in np.flatnonzero(free_r)]
        options = [option for option in options if option[1] > 0]
        if not options:
            break
        _, gain, add_s, add_r = max(options, key=lambda option: option[:2])
        chosen_s += [int(i) for i in add_s]
        chosen_r += [int(j) for j in add_r]
        current = coverage(chosen_s, chosen_r)
    # Prune: drop each scale, then each ratio, that the achieved coverage does not need.
    keep = min(current, target)
    for group in (chosen_s, chosen_r):
        for item in sorted(group, reverse=True):
            trial = [v for v in group if v != item]
            if trial and (coverage(trial, chosen_r) if group is chosen_s else coverage(chosen_s, trial)) >= keep:
                group.remove(item)
    current = coverage(chosen_s, chosen_r)
    scales = tuple(pool_s[i] for i in sorted(chosen_s))
    ratios = tuple(pool_r[i] for i in sorted(chosen_r))
    return scales, ratios, current


def suggest_anchors(
    records: Sequence[ImageRecord],
    config: Config,
    *,
    n_scales: int = 4,
    n_ratios: int = 5,
    iou: float = 0.5,
    target: float = 0.99,
    max_anchors: int = 40,
    max_images: int | None = 200,
    seed: int = 0,
    image_sizes: ImageSizes | None = None,
    transforms: Sequence[int] | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Anchor ``(scales, ratios)`` fitted to the resized boxes (method: module docstring).

    Starts from ``n_scales`` x ``n_ratios`` quantiles; grows while fewer than ``target`` of the
    boxes reach ``iou`` (at most ``max_anchors`` shapes), then prunes. Check the result with
    ``anchor_coverage(records, config.replace(anchor_scales=..., anchor_ratios=...))``; it can
    stay under ``target`` when the grid itself is the limit (``AnchorCoverage.ceiling``).
    """
    if n_scales < 1 or n_ratios < 1:
        raise UserError("n_scales and n_ratios must be at least 1")
    if not 0.0 < iou <= 1.0:
        raise UserError(f"iou must be in (0, 1], got {iou}")
    views = _check_views(augmentation_views(config) if transforms is None else transforms)
    data = _collect(records, config, max_images, seed, image_sizes, views)
    if len(data.boxes) == 0:
        raise UserError("no ground-truth boxes to fit anchors to")
    scales, ratios, _ = _suggest(data, config, iou=iou, n_scales=n_scales, n_ratios=n_ratios, target=target,
                                 max_anchors=max_anchors)
    return scales, ratios
