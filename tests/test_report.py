"""Annotated images: boxes drawn where the detections are, one fixed colour per class."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from keras_frcnn.inference.detections import Detections
from keras_frcnn.inference.report import PALETTE, class_colour, draw_detections, label_colour, save_image

NAMES = ("1-l", "1-r", "2-l", "2-r")


def blank(height: int = 120, width: int = 160) -> np.ndarray:
    return np.full((height, width, 3), 255, np.uint8)


def test_box_drawn_in_the_class_colour_at_the_box_and_nowhere_far_from_it():
    image = blank()
    found = Detections("x.png", [(60, 50, 100, 110)], [0.9], ["2-l"])
    drawn = draw_detections(image, found, NAMES)
    colour = np.array(class_colour(2), np.uint8)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (image == 255).all(), "the input image must not be modified"
    # The four sides of the box carry the class colour.
    for y, x in ((80, 60), (80, 100), (109, 80)):
        assert (drawn[y, x] == colour).all(), (y, x, drawn[y, x])
    # The inside of the box, away from its tag, is untouched; so is the far corner of the image.
    assert (drawn[90:105, 70:90] == 255).all()
    assert (drawn[:10, :10] == 255).all()
    # The tag (label and probability) sits right above the box, on the class colour, with ink.
    tag = drawn[30:50, 60:100].reshape(-1, 3)
    assert (tag == colour).all(axis=1).sum() > 100
    assert (tag.sum(axis=1) < 3 * 100).sum() > 10  # dark text on a light tag, or light on dark
    changed = np.argwhere((drawn != 255).any(axis=2))
    assert changed[:, 0].min() >= 25 and changed[:, 1].min() >= 55 and changed[:, 1].max() <= 140


def test_tag_goes_inside_a_box_touching_the_top_edge():
    drawn = draw_detections(blank(), Detections("x.png", [(10, 0, 60, 80)], [0.5], ["1-r"]), NAMES)
    assert (drawn[3:12, 15:40] == np.array(class_colour(1), np.uint8)).all(axis=2).sum() > 50


def test_colour_per_class_is_fixed_across_calls_and_classes_differ():
    assert len(set(PALETTE)) == len(PALETTE) == 60
    assert [class_colour(i) for i in range(60)] == list(PALETTE)
    assert label_colour("2-r", NAMES) == class_colour(3) == label_colour("2-r", list(NAMES))
    assert len({label_colour(name, NAMES) for name in NAMES}) == len(NAMES)
    assert label_colour("not a class", NAMES) == label_colour("not a class", NAMES)
    found = Detections("x.png", [(5, 30, 50, 80), (70, 30, 120, 90)], [0.3, 0.8], ["1-l", "2-r"])
    first = draw_detections(blank(), found, NAMES)
    again = draw_detections(blank(), found, NAMES)
    assert np.array_equal(first, again)
    assert (first[60, 5] == np.array(class_colour(0), np.uint8)).all()
    assert (first[60, 120] == np.array(class_colour(3), np.uint8)).all()


def test_no_detections_leaves_the_image_as_it_was():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.array_equal(draw_detections(image, Detections.empty("x.png"), NAMES), image)


def test_save_image_writes_rgb_png_atomically(tmp_path: Path):
    image = blank(20, 30)
    image[5, 7] = (255, 0, 0)  # red in RGB
    path = tmp_path / "sub" / "out.png"
    save_image(path, image)
    assert [p.name for p in path.parent.iterdir()] == ["out.png"], "no temporary file left behind"
    back = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert tuple(back[5, 7]) == (0, 0, 255)  # OpenCV reads BGR
    assert back.shape == (20, 30, 3)
