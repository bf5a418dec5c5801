"""Draft karyotypes from chromosome labels."""

from __future__ import annotations

import numpy as np
import pytest

from keras_frcnn.inference.detections import Detections
from keras_frcnn.inference.karyotype import (
    CHROMOSOMES,
    chromosome_of,
    karyotype_table,
    summarise_detections,
    summarise_karyotype,
)


def labels_of(sex: str, *, extra: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> list[str]:
    """A diploid set of autosomes (N-l, N-r) with the given sex chromosomes, plus/minus labels."""
    labels = [f"{n}-{side}" for n in range(1, 23) for side in "lr"]
    sides = iter(["X-l", "X-r", "X-?", "X-?"])
    labels += [next(sides) if c == "X" else "Y" for c in sex]
    labels += list(extra)
    for label in drop:
        labels.remove(label)
    return labels


def summary(labels, score=0.99, **kwargs):
    return summarise_karyotype(labels, [score] * len(labels), **kwargs)


def test_normal_female():
    s = summary(labels_of("XX"))
    assert (s.total, s.sex_chromosomes, s.gains, s.losses) == (46, "XX", (), ())
    assert s.iscn_draft == "46,XX"
    assert s.iscn_status == "draft, needs review"
    assert s.review_items == () and not s.needs_review
    assert s.counts == {c: (0 if c == "Y" else 2) for c in CHROMOSOMES}


def test_trisomy_21_male():
    s = summary(labels_of("XY", extra=("21-l",)))
    assert (s.total, s.sex_chromosomes, s.gains, s.losses) == (47, "XY", ("+21",), ())
    assert s.iscn_draft == "47,XY,+21"
    assert s.needs_review  # abnormal: to be confirmed


def test_turner():
    s = summary(labels_of("X"))
    assert (s.total, s.sex_chromosomes, s.gains, s.losses) == (45, "X", (), ("-X",))
    assert s.iscn_draft == "45,X"


def test_klinefelter_and_sex_before_autosomes():
    s = summary(labels_of("XXY"))
    assert (s.sex_chromosomes, s.gains, s.iscn_draft) == ("XXY", ("+X",), "47,XXY")
    s = summary(labels_of("XXY", extra=("21-r",)))
    assert (s.gains, s.iscn_draft) == (("+X", "+21"), "48,XXY,+21")


def test_autosomes_in_ascending_order():
    s = summary(labels_of("XX", extra=("21-l", "13-r"), drop=("7-l", "22-l", "22-r")))
    assert s.gains == ("+13", "+21") and s.losses == ("-7", "-22", "-22")
    assert s.iscn_draft == "45,XX,-7,+13,+21,-22,-22"


def test_unknown_side_counts_and_is_reviewed():
    labels = labels_of("XY", drop=("5-r",)) + ["5-?"]
    s = summary(labels)
    assert s.counts["5"] == 2 and s.iscn_draft == "46,XY" and s.gains == s.losses == ()
    assert len(s.review_items) == 1 and s.review_items[0].startswith("5-? (#")
    assert "side not determined" in s.review_items[0]
    assert s.needs_review


def test_low_confidence_is_reviewed():
    labels = labels_of("XX")
    scores = [0.9] * len(labels)
    scores[3] = 0.3  # "2-r"
    s = summarise_karyotype(labels, scores, low_confidence=0.5)
    assert s.review_items == ("2-r (#3, score 0.30): low confidence (< 0.5)",)
    assert s.iscn_draft == "46,XX" and s.needs_review
    assert summarise_karyotype(labels, scores, low_confidence=0.2).review_items == ()


def test_unrecognised_label_and_no_sex_chromosome():
    s = summary(labels_of("") + ["nucleus"])
    assert s.total == 44 and s.losses == ("-X", "-X")
    assert s.iscn_draft == "44,-X,-X"
    assert any("not a chromosome label" in item for item in s.review_items)
    assert "no sex chromosome detected" in s.review_items


def test_chromosome_of():
    assert [chromosome_of(x) for x in ("1-l", "22-r", "5-?", "X-?", "Y", "23-l", "0-l", "x-l", "1-")] == [
        "1", "22", "5", "X", "Y", None, None, None, None
    ]


def test_table_from_detections():
    boxes = [[10 * i, 0, 10 * i + 5, 20] for i in range(46)]  # 46 separate chromosomes
    normal = Detections("a.png", boxes, [0.9] * 46, labels_of("XY"))
    trisomy = summary(labels_of("XX", extra=("21-l",)), path="b.png")
    table = karyotype_table([summarise_detections(normal), trisomy])
    assert list(table.columns[:8]) == [
        "filepath", "total", "sex_chromosomes", "gains", "losses", "iscn_draft", "needs_review", "review_items"
    ]
    assert list(table.columns[8:]) == [f"count_{n}" for n in range(1, 23)] + ["count_X", "count_Y"]
    assert table["filepath"].tolist() == ["a.png", "b.png"]
    assert table["iscn_draft"].tolist() == ["46,XY", "47,XX,+21"]
    assert table["gains"].tolist() == ["", "+21"]
    assert table["needs_review"].tolist() == [False, True]
    assert table["count_21"].tolist() == [2, 3] and table["count_Y"].tolist() == [1, 0]


def test_mismatched_lengths():
    with pytest.raises(ValueError):
        summarise_karyotype(["1-l"], [])


def test_select_chromosomes_counts_each_chromosome_once():
    from keras_frcnn.inference.karyotype import select_chromosomes

    boxes = np.array([[0, 0, 10, 30], [1, 0, 10, 30], [50, 0, 60, 30], [100, 0, 110, 30]], np.float32)
    detections = Detections("a.png", boxes, np.array([0.9, 0.6, 0.8, 0.1], np.float32), ["1-l", "1-r", "2-l", "3-l"])
    chosen = select_chromosomes(detections, min_score=0.3, overlap_iou=0.5)
    assert list(chosen.labels) == ["1-l", "2-l"]  # 1-r overlaps 1-l; 3-l scores too low
    summary = summarise_detections(detections)
    assert summary.total == 2


def test_an_image_without_chromosomes_is_zero_and_needs_review():
    summary = summarise_karyotype([], [])
    assert (summary.total, summary.iscn_draft, summary.gains, summary.losses) == (0, "0", (), ())
    assert summary.needs_review and summary.review_items == ("no chromosomes found",)
