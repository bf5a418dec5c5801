"""keras_frcnn.inference.karyogram: upright chromosomes, ISCN placement and the composed karyogram (hand-made images)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations.classes import chromosome_classes
from keras_frcnn.inference.detections import Detections
from keras_frcnn.inference.karyogram import (
    ISCN_ROWS,
    chromosome_mask,
    compose_karyogram,
    draw_numbers,
    iscn_layout,
    karyogram_numbers,
    principal_angle,
    render_karyogram,
    rotate_bound,
    upright,
)


def bar(angle: float, *, length: int = 60, thickness: int = 9, size: int = 101, value: int = 200,
        background: int = 0) -> np.ndarray:
    """A bar of ``length`` drawn at ``angle`` degrees counter-clockwise from horizontal (as displayed)."""
    image = np.full((size, size), background, np.uint8)
    centre, radians = size // 2, math.radians(angle)
    dx, dy = length / 2 * math.cos(radians), -length / 2 * math.sin(radians)
    cv2.line(image, (round(centre - dx), round(centre - dy)), (round(centre + dx), round(centre + dy)), value,
             thickness)
    return image


def axis_from_vertical(mask: np.ndarray) -> float:
    """Degrees between the long axis of ``mask`` and the vertical."""
    ys, xs = np.nonzero(mask)
    x, y = xs - xs.mean(), ys - ys.mean()
    theta = 0.5 * math.degrees(math.atan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean()))
    return abs(abs(theta) - 90.0)


@pytest.mark.parametrize("angle, turn", [(30, 60), (90, 0), (135, -45), (0, -90), (160, -70)])
def test_upright_turns_a_bar_vertical(angle: float, turn: float):
    rotated, applied = upright(bar(angle))
    assert (applied - turn + 90) % 180 - 90 == pytest.approx(0, abs=3)  # the same turn (a half turn apart at most)
    ys, xs = np.nonzero(rotated > 100)
    rows, columns = np.ptp(ys) + 1, np.ptp(xs) + 1
    assert rows >= 60 and columns <= 14  # the bar's full length upright, about its thickness wide
    assert axis_from_vertical(rotated > 100) < 3
    # trimmed to the bar (a pixel or two of its blurred edge around it)
    assert rotated.shape[0] <= rows + 4 and rotated.shape[1] <= columns + 4


@pytest.mark.parametrize("angle", [30, 90, 135])
def test_upright_works_for_dark_bars_on_light_and_rgb(angle: float):
    dark = bar(angle, value=40, background=230)
    rotated, applied = upright(np.repeat(dark[:, :, None], 3, axis=2))
    assert rotated.ndim == 3 and rotated.shape[2] == 3
    ys, xs = np.nonzero(rotated[:, :, 0] < 120)
    assert np.ptp(ys) + 1 >= 60 and np.ptp(xs) + 1 <= 14
    assert axis_from_vertical(rotated[:, :, 0] < 120) < 3
    assert int(rotated[0, 0, 0]) >= 200  # corners filled with the background, not black


def test_upright_without_contrast_uses_the_box_orientation():
    wide = np.full((20, 50), 90, np.uint8)
    rotated, applied = upright(wide)
    assert abs(applied) == 90 and rotated.shape == (50, 20)
    tall, applied = upright(np.full((50, 20), 90, np.uint8))
    assert applied == 0 and tall.shape == (50, 20)
    _, applied = upright(bar(30), mask=False)  # no thresholding: only the box's orientation (square: upright)
    assert applied == 0


def test_rotate_bound_keeps_everything():
    image = np.zeros((10, 30), np.uint8)
    image[4:6, :] = 255
    turned = rotate_bound(image, 45)
    assert turned.shape[0] >= 21 and turned.shape[1] >= 21 and turned.sum() > 0.9 * image.sum()
    assert rotate_bound(image, 90).shape == (30, 10)
    assert principal_angle(np.ones((5, 5), bool)) is None  # round: no axis


def test_mask_keeps_the_chromosome_not_a_touching_neighbour():
    crop = np.zeros((60, 60), np.float32)
    crop[10:50, 25:35] = 1.0  # the chromosome: its box is x 25..35, y 10..50
    crop[45:52, 35:60] = 0.9  # a neighbour touching its lower right corner, mostly outside the box
    mask = chromosome_mask(crop, (25, 10, 35, 50))
    assert mask is not None
    assert mask[10:50, 25:35].all()
    assert not mask[:, 38:].any()  # the neighbour (outside the box and its margin) is left out
    assert chromosome_mask(np.zeros((30, 30), np.float32)) is None  # nothing stands out


# ----------------------------------------------------------------------------- ISCN placement
def karyotype_46xy_24() -> list[str]:
    return [name for name in chromosome_classes()[:22] for _ in range(2)] + ["X", "Y"]


def karyotype_46xy_49() -> list[str]:
    return [f"{n}-{side}" for n in range(1, 23) for side in "lr"] + ["X-l", "Y"]


def check_rows(labels, places):
    for label, place in zip(labels, places):
        chromosome = label.split("-")[0]
        assert ISCN_ROWS[place.row][place.group] == chromosome
        if chromosome in {"1", "2", "3", "4", "5"}:
            assert place.row == 0
        elif chromosome in {str(n) for n in range(6, 13)}:
            assert place.row == 1
        elif chromosome in {str(n) for n in range(13, 19)}:
            assert place.row == 2
        else:
            assert place.row == 3 and chromosome in {"19", "20", "21", "22", "X", "Y"}


@pytest.mark.parametrize("scheme", ["24", "49"])
def test_iscn_layout_of_a_46xy_cell(scheme: str):
    labels = karyotype_46xy_24() if scheme == "24" else karyotype_46xy_49()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    labels = [labels[i] for i in order]
    x = rng.uniform(0, 500, len(labels))
    places = iscn_layout(labels, x)
    check_rows(labels, places)
    assert sorted(p.number for p in places) == list(range(1, 47))  # reading order, each once
    reading = sorted(range(len(labels)), key=lambda i: places[i].number)
    assert [(places[i].row, places[i].group, places[i].slot) for i in reading] == sorted(
        (p.row, p.group, p.slot) for p in places)
    for chromosome in chromosome_classes()[:22]:  # the autosomes: two each
        members = [i for i, label in enumerate(labels) if label.split("-")[0] == chromosome]
        assert len(members) == 2 and len({(places[i].row, places[i].group) for i in members}) == 1
        first, second = sorted(members, key=lambda i: places[i].slot)
        assert [places[first].slot, places[second].slot] == [0, 1]  # adjacent
        assert places[second].number == places[first].number + 1
        if scheme == "49":
            assert labels[first].endswith("-l") and labels[second].endswith("-r")  # left before right
        else:
            assert x[first] <= x[second]  # 24 classes: in the spread's left-to-right order
    (x_place,) = [places[i] for i, label in enumerate(labels) if label.split("-")[0] == "X"]
    (y_place,) = [places[i] for i, label in enumerate(labels) if label == "Y"]
    assert (x_place.row, ISCN_ROWS[3][x_place.group], x_place.slot, x_place.number) == (3, "X", 0, 45)
    assert (y_place.row, ISCN_ROWS[3][y_place.group], y_place.slot, y_place.number) == (3, "Y", 0, 46)


def test_iscn_layout_left_before_right_whatever_the_position():
    places = iscn_layout(["7-r", "7-l", "7-?"], x=[10.0, 500.0, 0.0])
    assert [p.slot for p in places] == [1, 0, 2]  # l, r, then the undetermined side


def test_a_trisomys_third_copy_goes_next_to_its_pair():
    labels = karyotype_46xy_49() + ["21-l"]
    places = iscn_layout(labels, x=[float(i) for i in range(len(labels))])
    copies = sorted((places[i] for i, label in enumerate(labels) if label.startswith("21-")), key=lambda p: p.slot)
    assert [(p.row, ISCN_ROWS[p.row][p.group]) for p in copies] == [(3, "21")] * 3
    assert [p.slot for p in copies] == [0, 1, 2]
    assert [p.number for p in copies] == [copies[0].number + k for k in range(3)]
    labels24 = karyotype_46xy_24() + ["21"]
    copies24 = [p for p, label in zip(iscn_layout(labels24), labels24) if label == "21"]
    assert sorted(p.slot for p in copies24) == [0, 1, 2] and len({p.group for p in copies24}) == 1


def test_labels_that_are_not_chromosomes_get_their_own_row():
    places = iscn_layout(["1", "nucleus", "debris", "X"])
    assert [p.row for p in places] == [0, 4, 4, 3]
    assert [p.number for p in places] == [1, 3, 4, 2]


# ----------------------------------------------------------------------------- composing
def spread_with(bars, size=(200, 260), bright=True):
    """A spread with axis-aligned bars ``[(x1, y1, x2, y2)]`` and their boxes."""
    image = np.full(size, 10 if bright else 235, np.uint8)
    for x1, y1, x2, y2 in bars:
        image[y1:y2, x1:x2] = 200 if bright else 40
    return np.repeat(image[:, :, None], 3, axis=2), np.asarray(bars, np.float32)


def test_one_scale_for_all_a_chromosome_twice_as_long_is_twice_as_tall():
    image, boxes = spread_with([(20, 20, 30, 100), (80, 20, 90, 60), (120, 150, 200, 160)])
    detections = Detections("spread.png", boxes, [0.9, 0.9, 0.9], ["1", "2", "3"])
    result = render_karyogram(image, detections, scale=2.0)
    heights = result.cells[:, 3] - result.cells[:, 1]
    widths = result.cells[:, 2] - result.cells[:, 0]
    assert heights.tolist() == pytest.approx([160, 80, 160], abs=4)  # 80, 40 and 80 pixels long at scale 2
    assert widths.tolist() == pytest.approx([20, 20, 20], abs=4)  # the horizontal one turned upright
    assert abs(result.angles[2]) == 90 and result.angles[0] == 0 and result.masked.all()
    automatic = render_karyogram(image, detections)  # default: the longest drawn 150 pixels tall
    tall = automatic.cells[:, 3] - automatic.cells[:, 1]
    assert tall[0] == pytest.approx(150, abs=3) and tall[0] / tall[1] == pytest.approx(2.0, abs=0.1)
    assert automatic.scale == pytest.approx(150 / 80, rel=0.03)


def test_karyogram_rows_numbers_polarity_and_marks():
    bars = [(20 + 30 * k, 20, 28 + 30 * k, 60 - 2 * k) for k in range(6)]
    image, boxes = spread_with(bars)
    labels = ["1-r", "1-l", "7", "21", "Y", "junk"]
    scores = [0.9, 0.95, 0.4, 0.9, 0.8, 0.7]
    detections = Detections("spread.png", boxes, scores, labels)
    result = render_karyogram(image, detections, title="47,XY,+21", highlight={"21"})
    assert result.numbers == (2, 1, 3, 4, 5, 6)  # 1-l, 1-r, 7, 21, Y, then the extra row
    bottom = result.cells[:, 3]
    assert bottom[0] == bottom[1] and bottom[3] == bottom[4]  # bottom-aligned on their row's baseline
    assert bottom[1] < bottom[2] < bottom[3] < bottom[5]  # rows 0, 1, 3, then the extra row
    assert result.cells[1, 0] < result.cells[0, 0]  # 1-l left of 1-r
    canvas = result.image
    assert canvas.dtype == np.uint8 and canvas.ndim == 3
    assert (canvas[0, 0] == 255).all() and (canvas[-1, -1] == 255).all()  # white background
    x1, y1, x2, y2 = result.cells[0]
    assert canvas[(y1 + y2) // 2, (x1 + x2) // 2].max() < 80  # a bright-on-dark spread comes out dark on white
    orange = (canvas[:, :, 0] > 200) & (canvas[:, :, 1] > 90) & (canvas[:, :, 1] < 150) & (canvas[:, :, 2] < 60)
    x1, y1, x2, y2 = result.cells[2]  # the uncertain 7: framed in orange
    assert orange[y1 - 3:y2 + 3, x1 - 3:x2 + 3].sum() > 2 * (y2 - y1)
    red = (canvas[:, :, 0] > 150) & (canvas[:, :, 1] < 60) & (canvas[:, :, 2] < 60)
    assert red[result.cells[3, 3]:result.cells[3, 3] + 40].any()  # "21 (1)" in red under the group
    black = compose_karyogram(image, detections, background="black")
    assert (black[0, 0] == 0).all()
    x1, y1, x2, y2 = result.cells[0]
    assert black[(y1 + y2) // 2, (x1 + x2) // 2].min() > 170  # bright chromosomes on black


def test_dark_on_light_spreads_compose_the_same_way():
    image, boxes = spread_with([(20, 20, 30, 100), (80, 20, 90, 60)], bright=False)
    result = render_karyogram(image, Detections("g.png", boxes, [0.9, 0.9], ["1", "1"]))
    x1, y1, x2, y2 = result.cells[0]
    assert result.image[(y1 + y2) // 2, (x1 + x2) // 2].max() < 80 and (result.image[0, 0] == 255).all()


def test_an_empty_spread_gives_an_empty_karyogram():
    image, _ = spread_with([])
    result = render_karyogram(image, Detections.empty("none.png"), title="0,-X,-X")
    assert result.cells.shape == (0, 4) and result.image.shape[0] > 100


def test_numbers_on_the_spread_match_the_karyogram():
    image, boxes = spread_with([(20, 20, 30, 100), (80, 20, 90, 60)])
    detections = Detections("spread.png", boxes, [0.9, 0.9], ["2", "1"])
    assert karyogram_numbers(detections) == [2, 1]
    drawn = draw_numbers(image, boxes, karyogram_numbers(detections))
    assert drawn.shape == image.shape and (drawn != image).any()
    assert (drawn[101:115, 20:40] != image[101:115, 20:40]).any()  # the tag under the first box
    assert (drawn[:20] == image[:20]).all()
