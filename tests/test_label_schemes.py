"""The paper's 49 labels from 24-class karyograms (by box centre x), on hand-built cases; source grouping."""

from __future__ import annotations

import numpy as np

from keras_frcnn.annotations import read_annotations
from keras_frcnn.annotations.classes import ClassMap, chromosome_classes, chromosome_labels, chromosome_of
from keras_frcnn.annotations.label_schemes import paper49_detections, paper49_labels, to_paper49
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.annotations.sources import source_of
from keras_frcnn.inference.detections import Detections
from keras_frcnn.training.loop import split_records


def boxes_at(*centres: float, width: float = 10.0) -> np.ndarray:
    return np.asarray([[c - width / 2, 0, c + width / 2, 40] for c in centres], np.float32)


def test_a_pair_is_left_then_right_by_centre_x_whatever_the_order_of_the_lines():
    labels, difficult, middle = paper49_labels(boxes_at(70, 20), ["7", "7"])
    assert labels == ("7-r", "7-l") and not difficult.any() and middle == 0


def test_a_single_x_is_x_left_y_stays_y_and_a_lone_autosome_is_left():
    labels, _, _ = paper49_labels(boxes_at(300, 10, 200, 330), ["X", "7", "7", "Y"])
    assert labels == ("X-l", "7-l", "7-r", "Y")
    assert paper49_labels(boxes_at(50), ["13"])[0] == ("13-l",)
    assert paper49_labels(boxes_at(50, 10), ["Y", "Y"])[0] == ("Y", "Y")  # 47,XYY: no side


def test_a_trisomy_middle_copy_takes_the_nearer_side_and_is_difficult():
    # Three 21s at centres 100, 140, 120: leftmost 21-l, rightmost 21-r, the middle one (120) is
    # 20 px from each end -> ties go left; it is difficult (the metrics ignore it).
    labels, difficult, middle = paper49_labels(boxes_at(100, 140, 120), ["21", "21", "21"])
    assert labels == ("21-l", "21-r", "21-l") and list(difficult) == [False, False, True] and middle == 1
    labels, difficult, _ = paper49_labels(boxes_at(100, 140, 131), ["21", "21", "21"])
    assert labels == ("21-l", "21-r", "21-r") and list(difficult) == [False, False, True]


def test_the_exceptions_of_the_49_labels_take_their_side_unknown_label():
    labels, difficult, middle = paper49_labels(boxes_at(10, 30, 20), ["X", "X", "X"])  # 47,XXX
    assert labels == ("X-l", "X-r", "X-?") and not difficult.any() and middle == 1
    assert paper49_labels(boxes_at(10, 20, 30), ["5", "5", "5"])[0] == ("5-l", "5-?", "5-r")


def test_labels_already_in_the_49_scheme_or_others_are_left_alone():
    assert paper49_labels(boxes_at(30, 10, 5), ["1-r", "1-l", "chr"])[0] == ("1-r", "1-l", "chr")


def test_records_report_the_images_with_extra_copies():
    normal = ImageRecord("a.png", boxes_at(30, 10), ("1", "1"))
    trisomy = ImageRecord("b.png", boxes_at(10, 20, 30, 50), ("21", "21", "21", "Y"))
    out, report = to_paper49([normal, trisomy])
    assert out[0].labels == ("1-r", "1-l") and out[1].labels == ("21-l", "21-l", "21-r", "Y")
    assert list(out[1].difficult) == [False, True, False, False]
    assert (report.relabelled_boxes, report.images_with_extra_copies, report.extra_copies) == (5, 1, 1)
    assert "1 images have 3 or more copies" in report.note()


def test_reading_with_paper49_relabels_and_checks_against_the_49_labels(tmp_path):
    import cv2

    assert cv2.imwrite(str(tmp_path / "k.png"), np.zeros((50, 100), np.uint8))
    (tmp_path / "k.csv").write_text("k.png,60,0,70,40,7\nk.png,10,0,20,40,7\nk.png,30,0,40,40,Y\n")
    data = read_annotations(tmp_path / "k.csv", labels="paper49", classes=ClassMap.chromosomes())
    assert data.records[0].labels == ("7-r", "7-l", "Y")
    assert read_annotations(tmp_path / "k.csv").class_map == ClassMap(("7", "Y"))


def test_detections_of_a_24_class_model_get_sides_among_the_counted_chromosomes():
    # Two confident 7s and a weak duplicate near the right one; a weak 9 with no confident 9.
    detections = Detections("k.png", boxes_at(80, 20, 82, 150), [0.9, 0.8, 0.1, 0.2], ["7", "7", "7", "9"])
    counted = np.array([0, 1])  # the chromosomes a karyotype counts (score >= 0.3, here)
    assert paper49_detections(detections, counted).labels == ("7-r", "7-l", "7-r", "9-l")


def test_class_maps_of_either_scheme_are_in_karyotype_order():
    assert ClassMap.chromosomes24().names == chromosome_classes() == (*map(str, range(1, 23)), "X", "Y")
    assert ClassMap.from_labels(["Y", "10", "2", "X", "1"]).names == ("1", "2", "10", "X", "Y")
    assert ClassMap.from_labels(["X-?", "1-r", "5-?", "1-l", "Y"]).names == ("1-l", "1-r", "5-?", "X-?", "Y")
    assert [chromosome_of(label) for label in ("7", "7-l", "X-?", "chr")] == ["7", "7", "X", None]
    assert len(chromosome_labels()) == 49


def test_exported_copies_of_one_karyogram_share_a_source_and_stay_on_one_side_of_a_split():
    names = [f"images/karyotype-{n}_bmp_jpg.rf.{h:032x}.jpg" for n in range(12) for h in range(n % 4 + 1)]
    assert source_of(names[0]) == "karyotype-0"
    assert source_of("train/images/karyotype-7_bmp_jpg.rf.0123456789abcdef0123456789abcdef.jpg") == "karyotype-7"
    assert source_of("cells/original_104a.json") == "cells/original_104a.json"  # not an export copy: itself
    records = [ImageRecord(name, np.zeros((0, 4)), ()) for name in names]
    for seed in range(5):
        train, val = split_records(records, 0.25, seed)
        train_sources, val_sources = {source_of(r.path) for r in train}, {source_of(r.path) for r in val}
        assert not train_sources & val_sources
        assert len(val_sources) == 3 and len(train) + len(val) == len(records)
