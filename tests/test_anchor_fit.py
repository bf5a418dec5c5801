"""Anchor coverage of ground truth and data-driven anchor suggestion (keras_frcnn.model.anchor_fit)."""

import time

import numpy as np
import pytest

from keras_frcnn.model.anchor_fit import (
    _best_iou_per_shape,
    _ceiling_iou,
    _transform,
    anchor_coverage,
    feature_size,
    suggest_anchors,
)
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.config import Config
from keras_frcnn.errors import UserError
from keras_frcnn.model.geometry import base_anchors, resized_shape
from keras_frcnn.model.iou import pairwise_iou


def record(boxes, width=800, height=600, path="img.png"):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return ImageRecord(path, boxes, ("chr",) * len(boxes), width=width, height=height)


def one_shape(scale=32.0, ratio=1.0, **changes):
    return Config(anchor_scales=(scale,), anchor_ratios=(ratio,), **changes)


def brute_force_best(boxes, height, width, shapes, network, border):
    """Best IoU per (box, shape) against every anchor of the full grid, like anchors.anchor_grid
    and anchors.inside_image in float32."""
    hf, wf = feature_size(height, network), feature_size(width, network)
    cy = (np.arange(hf, dtype=np.float32) + np.float32(0.5)) * np.float32(16)
    cx = (np.arange(wf, dtype=np.float32) + np.float32(0.5)) * np.float32(16)
    yy, xx = np.meshgrid(cy, cx, indexing="ij")
    anchors = (np.stack([xx, yy, xx, yy], -1)[:, :, None, :] + shapes[None, None]).reshape(-1, 4)
    b = np.float32(border)
    inside = (anchors[:, 0] >= -b) & (anchors[:, 1] >= -b)
    inside &= (anchors[:, 2] <= np.float32(width) + b) & (anchors[:, 3] <= np.float32(height) + b)
    iou = pairwise_iou(boxes, anchors) * inside[None, :]
    return iou.reshape(len(boxes), -1, len(shapes)).max(axis=1)


def test_box_equal_to_an_anchor_is_covered():
    # Cell (i=5, j=7) is centred at (7.5 * 16, 5.5 * 16) = (120, 88); a 32x32 anchor there:
    cov = anchor_coverage([record([[104, 72, 136, 104]])], one_shape())
    assert cov.num_boxes == 1 and cov.num_covered == 1
    assert cov.best_iou[0] == pytest.approx(1.0, abs=1e-6)
    assert cov.best_anchor[0] == 0 and cov.worst == ()
    assert cov.warning() is None


def test_tiny_box_is_uncovered_and_the_warning_names_it():
    cfg = Config(anchor_scales=(32.0, 64.0, 128.0))
    cov = anchor_coverage([record([[100, 100, 104, 104]])], cfg)
    assert cov.num_covered == 0 and cov.best_iou[0] < 0.02  # at best 16 / 1024 inside a 32x32 anchor
    text = cov.warning()
    assert text is not None and "\n" not in text
    assert "100.0% of ground-truth boxes (1 of 1)" in text and "smallest uncovered 4x4 px" in text
    assert "IoU >= 0.5" in text
    assert cov.worst[0].path == "img.png" and cov.worst[0].box == (100.0, 100.0, 104.0, 104.0)
    assert cov.ceiling == 0.0  # no anchor shape can cover a 4x4 box between grid centres 8 px apart


def test_hand_computed_best_iou_against_one_anchor_shape():
    # Box x 100..120, y 100..140 (20x40, centre (110, 120)); anchors 32x32 centred at 8 + 16k.
    # x: nearest centre 104 (|110-104| = 6 < |120-110| = 10) -> anchor x 88..120, overlap 20;
    # y: centre 120 = 8 + 16 * 7 exactly -> anchor y 104..136, overlap 32.
    # IoU = 20*32 / (20*40 + 32*32 - 20*32) = 640 / 1184 = 0.5405...
    # (the next column, centre 120: overlap 16*32 = 512 / 1312 = 0.390, worse).
    cov = anchor_coverage([record([[100, 100, 120, 140]])], one_shape())
    assert cov.best_iou[0] == pytest.approx(640 / 1184, rel=1e-6)
    assert cov.num_covered == 1
    assert anchor_coverage([record([[100, 100, 120, 140]])], one_shape(), iou=0.55).num_covered == 0


def test_boxes_are_resized_before_matching():
    # 400x300 image, im_size 600 -> 800x600: everything doubles. The box 52..68 becomes
    # 104..136, exactly the 32x32 anchor of cell (7, 7); unscaled it would reach IoU 0.25 at most.
    rec = record([[52, 52, 68, 68]], width=400, height=300)
    cov = anchor_coverage([rec], one_shape(im_size=600))
    np.testing.assert_allclose(cov.box_sizes, [[32, 32]])
    assert cov.best_iou[0] == pytest.approx(1.0, abs=1e-6)
    # Capped by max_size: the longer side would be 800 > 700, so the scale is 700 / 400 = 1.75.
    assert resized_shape(300, 400, 600, 700) == (525, 700)
    capped = anchor_coverage([rec], one_shape(im_size=600, max_size=700))
    np.testing.assert_allclose(capped.box_sizes, [[28, 28]], rtol=1e-6)


def test_anchors_crossing_the_border_are_excluded():
    # Box 0..24 in x and y (centre 12): the nearest anchor (centre 8, 32x32: -8..24) crosses the
    # border by 8 px. Allowed: IoU 24*24 / 1024 = 0.5625. Excluded: the next one (8..40) gives
    # 16*16 / (576 + 1024 - 256) = 0.1905.
    rec = record([[0, 0, 24, 24]])
    assert anchor_coverage([rec], one_shape(rpn_allowed_border=8.0)).best_iou[0] == pytest.approx(0.5625)
    for border in (0.0, 7.9):
        cov = anchor_coverage([rec], one_shape(rpn_allowed_border=border))
        assert cov.best_iou[0] == pytest.approx(256 / 1344) and cov.num_covered == 0
    # An anchor that fits nowhere (taller than the image) covers nothing.
    cov = anchor_coverage([record([[0, 0, 50, 50]], width=600, height=600)], one_shape(700.0))
    assert cov.best_iou[0] == 0.0 and cov.best_anchor[0] == -1 and cov.worst[0].best_anchor is None


def test_grid_size_follows_the_backbone():
    assert feature_size(620, "vgg16") == 38 and feature_size(620, "tiny") == 38
    assert feature_size(620, "resnet50") == 39 and feature_size(608, "resnet50") == 38
    # 620 px wide: only the ceil grid (resnet50) has a column centred at 616.
    rec = record([[612, 100, 620, 108]], width=620, height=600)
    assert anchor_coverage([rec], one_shape(8.0, network="resnet50")).best_iou[0] == pytest.approx(1.0)
    assert anchor_coverage([rec], one_shape(8.0, network="vgg16")).best_iou[0] == 0.0


@pytest.mark.parametrize("network", ["vgg16", "resnet50"])
def test_fast_search_equals_brute_force_over_the_whole_grid(network):
    rng = np.random.default_rng(3)
    for _ in range(25):
        height, width = (int(v) for v in rng.integers(40, 160, 2))
        border = float(rng.choice([0.0, 0.0, 5.0, 100.0]))
        shapes = base_anchors(rng.uniform(5, 100, 3), np.exp(rng.uniform(-1.5, 1.5, 3)))
        centre = rng.uniform(0, [width, height], (20, 2))
        size = rng.uniform(1, 70, (20, 2))
        boxes = np.clip(np.hstack([centre - size / 2, centre + size / 2]), 0, [width, height] * 2)
        hw = np.tile([height, width], (20, 1))
        fast = _best_iou_per_shape(boxes, hw, shapes, 16, network, border)
        np.testing.assert_allclose(fast, brute_force_best(boxes, height, width, shapes, network, border), atol=1e-6)
        assert np.all(_ceiling_iou(boxes, hw, 16, network)[0] >= fast.max(axis=1) - 1e-6)


def test_warning_threshold_is_more_than_one_percent():
    # 100 boxes that equal anchors (centres 8 + 16k), then 1 or 2 of them replaced by 4x4 boxes.
    good = [[8 + 16 * k - 16, 104, 8 + 16 * k + 16, 136] for k in range(1, 11)]
    rows = [[x1, y1 + 32 * r, x2, y2 + 32 * r] for r in range(10) for x1, y1, x2, y2 in good]
    cfg = one_shape()
    assert anchor_coverage([record(rows)], cfg).fraction_covered == 1.0
    assert anchor_coverage([record(rows)], cfg).warning() is None
    one_bad = rows[:99] + [[500, 500, 504, 504]]
    assert anchor_coverage([record(one_bad)], cfg).warning() is None  # exactly 1 %
    two_bad = rows[:98] + [[500, 500, 504, 504], [600, 500, 603, 505]]
    # no anchor shape covers a 4x4 or 3x5 box on this grid: the anchors are not at fault, a note says so
    coverage = anchor_coverage([record(two_bad)], cfg)
    assert coverage.warning() is None and coverage.suggested_coverage == pytest.approx(0.98)
    assert "2.0% of ground-truth boxes" in coverage.note() and "3x5 px" in coverage.note()
    assert "note: 2.0%" in coverage.summary()
    # with suggest=False nothing says the anchors are near the best: a warning
    text = anchor_coverage([record(two_bad)], cfg, suggest=False).warning()
    assert text is not None and "2.0% of ground-truth boxes (2 of 100)" in text and "3x5 px" in text


def test_anchors_that_fitting_improves_warn_and_a_grid_limit_is_a_note():
    boxes = elongated_records(images=4)
    square = Config(anchor_scales=(32.0,), anchor_ratios=(1.0,))
    coverage = anchor_coverage(boxes, square)
    assert coverage.suggested_coverage - coverage.fraction_covered >= 0.05
    assert "suggested anchors" in coverage.warning() and coverage.note() is None
    scales, ratios = coverage.suggested
    fitted = anchor_coverage(boxes, square.replace(anchor_scales=scales, anchor_ratios=ratios))
    assert fitted.warning() is None


def elongated_records(seed=0, images=10, per_image=40):
    """Boxes ~22x100 px, half of them lying, at random places in 800x600 images (scale 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in range(images):
        w = rng.uniform(20, 24, per_image)
        h = rng.uniform(96, 104, per_image)
        lying = rng.random(per_image) < 0.5
        w, h = np.where(lying, h, w), np.where(lying, w, h)
        cx, cy = rng.uniform(60, 740, per_image), rng.uniform(60, 540, per_image)
        out.append(record(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), path=f"{n}.png"))
    return out


def test_suggested_anchors_cover_elongated_boxes_the_defaults_miss():
    records, cfg = elongated_records(), Config()
    default = anchor_coverage(records, cfg)
    assert default.fraction_covered < 0.9 and default.ceiling == 1.0
    scales, ratios = suggest_anchors(records, cfg)
    assert min(ratios) < 1.0 < max(ratios)
    assert list(scales) == sorted(set(scales)) and list(ratios) == sorted(set(ratios))
    assert len(scales) * len(ratios) <= 40
    fitted = anchor_coverage(records, cfg.replace(anchor_scales=scales, anchor_ratios=ratios))
    assert fitted.fraction_covered >= 0.99 and fitted.warning() is None
    # The default coverage's warning carries the same proposal, ready for --set.
    text = default.warning()
    assert text is not None and default.suggested == (scales, ratios)
    assert f"--set anchor_scales=[{','.join(f'{s:g}' for s in scales)}]" in text


def test_sampling_missing_sizes_and_summary():
    records = elongated_records(images=30, per_image=5)
    a = anchor_coverage(records, Config(), max_images=7, seed=1)
    b = anchor_coverage(records, Config(), max_images=7, seed=1)
    assert a.num_images == 7 and a.num_boxes == 35
    np.testing.assert_array_equal(a.best_iou, b.best_iou)
    assert anchor_coverage(records, Config(), max_images=None).num_boxes == 150
    assert "150 boxes in 30 images" in anchor_coverage(records, Config(), max_images=None).summary()

    bare = ImageRecord("x.png", np.array([[104, 72, 136, 104]], np.float32), ("chr",))
    with pytest.raises(UserError, match="x.png: image size unknown"):
        anchor_coverage([bare], one_shape())
    by_path = anchor_coverage([bare], one_shape(), image_sizes={"x.png": (600, 800)})
    by_index = anchor_coverage([bare], one_shape(), image_sizes=[(600, 800)])
    assert by_path.best_iou[0] == pytest.approx(1.0) and by_index.best_iou[0] == pytest.approx(1.0)
    empty = anchor_coverage([record([])], Config())
    assert empty.num_boxes == 0 and empty.warning() is None
    with pytest.raises(UserError, match="no ground-truth boxes"):
        suggest_anchors([record([])], Config())


def test_200_images_of_46_boxes_are_fast():
    rng = np.random.default_rng(0)
    records = []
    for n in range(200):
        side = rng.uniform(8, 60, (46, 2))
        centre = rng.uniform(40, [728, 536], (46, 2))
        records.append(record(np.hstack([centre - side / 2, centre + side / 2]), 768, 576, f"{n}.png"))
    start = time.perf_counter()
    cov = anchor_coverage(records, Config())  # warns, so it also computes a suggestion
    elapsed = time.perf_counter() - start
    assert cov.num_boxes == 9200 and cov.suggested is not None
    assert elapsed < 3.0, elapsed


def test_numpy_box_transforms_match_the_pipeline():
    augment = pytest.importorskip("keras_frcnn.data.augment")
    boxes = np.array([[1, 2, 5, 9], [0, 0, 30, 20]], np.float32)
    for t in range(8):
        moved, height, width = _transform(boxes, 20, 30, t)
        np.testing.assert_allclose(moved, augment.transform_boxes(boxes, 20, 30, t).numpy())
        assert (height, width) == tuple(int(v) for v in augment.transformed_size(20, 30, t))


def test_augmentation_views_are_counted():
    # An upright 20x100 box in an 800x600 image; with rot90 the pipeline also shows it lying.
    rec = record([[400, 200, 420, 300]])
    assert anchor_coverage([rec], Config()).num_boxes == 1
    rotating = Config(rot90=True)
    cov = anchor_coverage([rec], rotating)
    assert cov.views == (0, 1, 2, 3) and cov.num_boxes == 4
    np.testing.assert_allclose(cov.box_sizes, [[20, 100], [100, 20], [20, 100], [100, 20]])
    assert anchor_coverage([rec], Config(hflip=True, rot90=True)).num_boxes == 8
    assert anchor_coverage([rec], Config(), transforms=range(8)).num_boxes == 8  # the paper16 expansion
    # Upright-only boxes give ratios > 1; with rot90 the lying views need ratios < 1 too.
    upright = [record([[x, 100, x + 22, 200] for x in range(30, 740, 40)], path=f"{n}.png") for n in range(3)]
    assert min(suggest_anchors(upright, Config())[1]) > 1.0
    ratios = suggest_anchors(upright, rotating)[1]
    assert min(ratios) < 1.0 < max(ratios)
    text = anchor_coverage([record([[100, 100, 104, 104]])], rotating).warning()
    assert "(4 of 4 box views, 4 augmentation transforms each)" in text
    with pytest.raises(UserError, match="D4 ids"):
        anchor_coverage([rec], Config(), transforms=[8])
