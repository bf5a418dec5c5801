"""CSV annotations: parsing rules, the shared checks and their exact messages."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import keras_frcnn.annotations.validation as validation
from keras_frcnn.annotations import (
    AnnotationProblemsError,
    ClassMap,
    check_annotations,
    chromosome_labels,
    collect_problems,
    read_annotations,
    read_csv,
    write_csv,
)
from keras_frcnn.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write_png(path: Path, width: int = 100, height: int = 80) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), 90, dtype=np.uint8))
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """``tmp/img/a.png`` (100x80) and ``tmp/img/b.png`` (60x40)."""
    write_png(tmp_path / "img" / "a.png", 100, 80)
    write_png(tmp_path / "img" / "b.png", 60, 40)
    return tmp_path


# --- parsing ---------------------------------------------------------------------------------


def test_header_is_optional(images: Path):
    rows = "img/a.png,10,20,30,40,1-l\nimg/b.png,1,2,3,4,Y\n"
    with_header = read_csv(write_text(images / "h.csv", "filepath,x1,y1,x2,y2,class_name\n" + rows))
    without = read_csv(write_text(images / "n.csv", rows))
    other_header = read_csv(write_text(images / "o.csv", "image, xmin, ymin, xmax, ymax, label\n" + rows))
    for records in (with_header, without, other_header):
        assert [r.labels for r in records] == [("1-l",), ("Y",)]
        np.testing.assert_array_equal(records[0].boxes, [[10, 20, 30, 40]])


def test_float_coordinates_and_paths_relative_to_the_csv_folder(images: Path):
    csv_path = write_text(images / "lists" / "train.csv", "../img/a.png,10.5,20.25,30.75,40.125,1-l\n")
    (record,) = read_csv(csv_path)
    assert record.path == os.path.normpath(str(images / "img" / "a.png"))
    assert record.boxes.dtype == np.float32
    np.testing.assert_allclose(record.boxes, [[10.5, 20.25, 30.75, 40.125]])
    assert (record.width, record.height) == (100, 80)


def test_absolute_image_path(images: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    csv_path = write_text(elsewhere / "a.csv", f"{images / 'img' / 'b.png'},1,2,3,4,Y\n")
    (record,) = read_csv(csv_path)
    assert record.path == str(images / "img" / "b.png")


def test_image_without_objects(images: Path):
    csv_path = write_text(images / "a.csv", "img/a.png,1,2,3,4,Y\nimg/b.png,,,,,\n")
    records = read_csv(csv_path)
    assert [r.num_boxes for r in records] == [1, 0]
    assert records[1].boxes.shape == (0, 4) and records[1].labels == ()
    assert (records[1].width, records[1].height) == (60, 40)


def test_rows_of_an_image_are_grouped_in_first_appearance_order(images: Path):
    text = "img/b.png,1,1,5,5,5-?\nimg/a.png,2,2,9,9,X-?\nimg/b.png,6,6,9,9,1-r\nimg/a.png,3,3,8,8,5-?\n"
    records = read_csv(write_text(images / "a.csv", text))
    assert [os.path.basename(r.path) for r in records] == ["b.png", "a.png"]
    assert records[0].labels == ("5-?", "1-r")
    assert records[1].labels == ("X-?", "5-?")
    np.testing.assert_array_equal(records[1].boxes, [[2, 2, 9, 9], [3, 3, 8, 8]])


def test_quoted_path_with_a_comma_and_spaces_around_fields(tmp_path: Path):
    write_png(tmp_path / "cell 2, slide.png", 50, 50)
    csv_path = write_text(tmp_path / "a.csv", '"cell 2, slide.png", 1 , 2, 3 ,4, 5-? \n')
    (record,) = read_csv(csv_path)
    assert record.path.endswith("cell 2, slide.png")
    assert record.labels == ("5-?",)


def test_class_map_is_made_from_the_labels_in_karyotype_order(images: Path):
    text = "img/a.png,1,1,5,5,Y\nimg/a.png,1,1,6,6,2-l\nimg/a.png,1,1,7,7,5-?\nimg/b.png,1,1,5,5,debris\n"
    data = read_annotations(write_text(images / "a.csv", text))
    assert data.class_map.names == ("2-l", "5-?", "Y", "debris")
    assert data.warnings == []
    given = ClassMap(("Y", "debris", "5-?", "2-l", "1-l"))
    assert read_annotations(images / "a.csv", classes=given).class_map is given


def test_write_csv_reads_back_the_same_records(images: Path):
    text = "img/a.png,1.5,2,30.25,40,1-l\nimg/a.png,0,0,100,80,X-?\nimg/b.png,,,,,\n"
    records = read_csv(write_text(images / "in.csv", text))
    write_csv(records, images / "out.csv")
    assert (images / "out.csv").read_text().splitlines()[1] == "img/a.png,1.5,2,30.25,40,1-l"
    again = read_csv(images / "out.csv")
    assert [r.path for r in again] == [r.path for r in records]
    assert [r.labels for r in again] == [r.labels for r in records]
    for a, b in zip(again, records):
        np.testing.assert_array_equal(a.boxes, b.boxes)


def test_repository_example_and_class_list_are_valid():
    labels = (REPO / "annotations" / "chromosome_classes.txt").read_text().split()
    assert tuple(labels) == chromosome_labels() and len(labels) == 49
    classes = ClassMap.from_file(REPO / "annotations" / "chromosome_classes.txt")
    data = read_annotations(REPO / "annotations" / "example.csv", classes=classes)  # its images exist
    assert len(data.records) == 3 and data.num_boxes == 10 and not data.warnings
    assert data.records[1].path.endswith("cell 002, second slide.png") and data.records[1].width == 360
    assert data.records[2].num_boxes == 0


# --- checks and their messages ----------------------------------------------------------------

GOOD = "img/a.png,1,2,30,40,1-l\n"


@pytest.mark.parametrize(
    "row, message",
    [
        ("img/a.png,40,2,12,40,1-l", "x2 (12.0) must be greater than x1 (40.0)"),
        ("img/a.png,1,20,30,20,1-l", "y2 (20.0) must be greater than y1 (20.0)"),
        ("img/a.png,1,abc,30,40,1-l", "y1 is not a number ('abc')"),
        ("img/a.png,nan,2,30,40,1-l", "x1 is not finite ('nan')"),
        ("img/a.png,1,2,inf,40,1-l", "x2 is not finite ('inf')"),
        ("img/a.png,1,2,,40,1-l", "x2 is missing"),
        ("img/a.png,1,2,30,40", "expected 6 columns (filepath,x1,y1,x2,y2,class_name), found 5"),
        ("img/a.png,1,2,30,40,1-l,extra", "expected 6 columns (filepath,x1,y1,x2,y2,class_name), found 7"),
        ("img/a.png,1,2,30,40,", "the class name is empty"),
        (",1,2,30,40,1-l", "the image path (first column) is empty"),
        (
            "img/a.png,90,2,101,40,1-l",
            "box (90.0, 2.0, 101.0, 40.0) extends outside the 100x80 image (--clip / clip_boxes=True clips it)",
        ),
        (
            "img/a.png,-1,2,30,40,1-l",
            "box (-1.0, 2.0, 30.0, 40.0) extends outside the 100x80 image (--clip / clip_boxes=True clips it)",
        ),
    ],
)
def test_each_bad_row_gives_its_exact_message_and_line(images: Path, row: str, message: str):
    csv_path = write_text(images / "train.csv", "filepath,x1,y1,x2,y2,class_name\n" + GOOD * 2 + row + "\n" + GOOD)
    problems = collect_problems(csv_path)
    assert [str(p) for p in problems if p.is_error] == [f"{csv_path}:4: {message}"]
    with pytest.raises(UserError) as raised:
        read_csv(csv_path)
    assert str(raised.value) == f"{csv_path}:4: {message}"


def test_missing_and_unreadable_images_are_reported_at_their_first_line(images: Path):
    write_text(images / "img" / "broken.png", "not an image")
    text = GOOD + "img/missing.png,1,2,3,4,Y\nimg/missing.png,1,2,5,6,Y\nimg/broken.png,,,,,\n"
    csv_path = write_text(images / "a.csv", text)
    missing = os.path.normpath(str(images / "img" / "missing.png"))
    broken = os.path.normpath(str(images / "img" / "broken.png"))
    assert [str(p) for p in collect_problems(csv_path)] == [
        f"{csv_path}:2: cannot read image {missing} (No such file or directory)",
        f"{csv_path}:4: cannot read image {broken} (not an image OpenCV can decode, or a corrupt one)",
    ]
    assert collect_problems(csv_path, check_images=False) == []


def test_every_problem_is_collected_and_the_error_counts_the_rest(images: Path):
    text = (
        "filepath,x1,y1,x2,y2,class_name\n"
        + GOOD
        + "img/a.png,40,2,12,40,1-l\n"  # line 3
        + GOOD.replace("1-l", "1-r")
        + "img/a.png,1,x,3,4,1-l\n"  # line 5
        + "img/b.png,1,2\n"  # line 6
        + "img/b.png,1,2,3,4,1-l\n"
        + "img/b.png,1,2,3,4,1-l\n"  # line 8: duplicate (warning)
        + "img/nope.png,,,,,\n"  # line 9
    )
    csv_path = write_text(images / "train.csv", text)
    report = check_annotations(csv_path)
    assert [(p.line, p.severity) for p in report.problems] == [
        (3, "error"),
        (5, "error"),
        (6, "error"),
        (8, "warning"),
        (9, "error"),
    ]
    assert not report.ok
    with pytest.raises(AnnotationProblemsError) as raised:
        read_annotations(csv_path)
    assert str(raised.value) == (
        f"{csv_path}:3: x2 (12.0) must be greater than x1 (40.0) "
        f"(and 3 more problems; run python -m keras_frcnn.annotations check {csv_path})"
    )
    assert raised.value.line == 3 and len(raised.value.problems) == 4


def test_empty_file_and_header_only(tmp_path: Path):
    empty = write_text(tmp_path / "empty.csv", "")
    header = write_text(tmp_path / "header.csv", "filepath,x1,y1,x2,y2,class_name\n\n")
    with pytest.raises(UserError, match=r"empty\.csv: no annotations \(the file is empty\)$"):
        read_csv(empty)
    with pytest.raises(UserError, match=r"header\.csv: no annotations \(the file is empty but for its header\)$"):
        read_csv(header)


def test_clipping_boxes_that_cross_the_border(images: Path):
    text = "img/a.png,-5,10,50,90,1-l\nimg/a.png,120,10,150,20,1-r\n"
    csv_path = write_text(images / "a.csv", text)
    assert [str(p) for p in collect_problems(csv_path, clip_boxes=True)] == [
        f"{csv_path}:1: warning: box (-5.0, 10.0, 50.0, 90.0) clipped to the 100x80 image",
        f"{csv_path}:2: box (120.0, 10.0, 150.0, 20.0) lies entirely outside the 100x80 image",
    ]
    write_text(csv_path, text.splitlines()[0] + "\n")
    data = read_annotations(csv_path, clip_boxes=True)
    np.testing.assert_array_equal(data.records[0].boxes, [[0, 10, 50, 80]])
    assert data.warnings == [f"{csv_path}:1: warning: box (-5.0, 10.0, 50.0, 90.0) clipped to the 100x80 image"]
    with pytest.raises(UserError, match="extends outside the 100x80 image"):
        read_annotations(csv_path)


def test_unknown_class_when_a_class_list_is_given(images: Path):
    csv_path = write_text(images / "a.csv", "img/a.png,1,2,3,4,1-l\nimg/a.png,1,2,5,6,Z\n")
    classes = ClassMap.chromosomes()
    assert [str(p) for p in collect_problems(csv_path, classes)] == [
        f"{csv_path}:2: unknown class 'Z' (not in the class list)"
    ]
    assert collect_problems(csv_path) == []


def test_duplicate_rows_are_a_warning_and_kept_once(images: Path):
    csv_path = write_text(images / "a.csv", "img/a.png,1,2,3,4,Y\nimg/a.png,1,2,3,4,1-l\nimg/a.png,1,2,3,4,Y\n")
    data = read_annotations(csv_path)
    assert data.records[0].labels == ("Y", "1-l")
    assert data.warnings == [f"{csv_path}:3: warning: duplicate of line 1 (ignored)"]


def test_unusable_paths_raise_one_user_error(tmp_path: Path):
    with pytest.raises(UserError, match=r"nothing\.csv: no such file or directory$"):
        read_annotations(tmp_path / "nothing.csv")
    with pytest.raises(UserError, match="unknown annotation format"):
        read_annotations(write_text(tmp_path / "a.dat", "a.png,1,2,3,4,Y\n"))
    with pytest.raises(UserError, match="unknown annotation format 'kitti'"):
        read_annotations(tmp_path / "a.dat", format="kitti")
    data = read_annotations(tmp_path / "a.dat", format="csv", check_images=False)
    assert data.records[0].labels == ("Y",)


def test_fifty_thousand_rows_read_fast_and_each_image_decoded_once(tmp_path: Path, monkeypatch):
    for i in range(50):
        write_png(tmp_path / "img" / f"{i}.png", 64, 64)
    lines = []
    for row in range(50_000):  # 1,000 distinct boxes on each of 50 images, the images interleaved
        k = row // 50
        lines.append(f"img/{row % 50}.png,{k % 40},{k // 40},{k % 40 + 10}.5,{k // 40 + 20},{k % 22 + 1}-l")
    csv_path = write_text(tmp_path / "big.csv", "\n".join(lines) + "\n")
    decoded: list[str] = []
    real = validation.read_image_size

    def counting(image):
        decoded.append(image.path)
        return real(image)

    monkeypatch.setattr(validation, "read_image_size", counting)
    start = time.perf_counter()
    data = read_annotations(csv_path)
    elapsed = time.perf_counter() - start
    assert len(data.records) == 50
    assert sorted(decoded) == sorted({r.path for r in data.records})
    assert data.num_boxes == 50_000 and data.warnings == []
    assert elapsed < 4.0, f"reading 50,000 rows took {elapsed:.1f} s"


def test_line_numbers_count_quoted_line_breaks_and_blank_lines(images: Path):
    text = 'img/a.png,1,2,3,4,"two\nlines"\n\nimg/a.png,5,2,3,4,Y\n'
    csv_path = write_text(images / "a.csv", text)
    assert [str(p) for p in collect_problems(csv_path)] == [f"{csv_path}:4: x2 (3.0) must be greater than x1 (5.0)"]
