"""YOLO / Ultralytics annotations: layouts, class names, sizes from the image, every error, check and convert."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations import check_annotations, detect_format, read_annotations, read_csv
from keras_frcnn.annotations.validation import AnnotationProblemsError

REPO = Path(__file__).resolve().parents[1]
NAMES = ["1", "10", "2", "X", "Y"]  # sorted as text, as exports write them


def write_image(path: Path, width: int, height: int, extension: str = ".jpg") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path.with_suffix(extension)), np.full((height, width, 3), 30, np.uint8))


def make_yolo(root: Path, labels: dict[str, str], sizes: dict[str, tuple[int, int]] | None = None,
              names: str | None = None) -> Path:
    """``root/images/*.jpg`` (default 200 x 100), ``root/labels/*.txt`` and ``root/data.yaml``."""
    sizes = sizes or {}
    for stem in labels:
        write_image(root / "images" / stem, *sizes.get(stem, (200, 100)))
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for stem, text in labels.items():
        if text is not None:
            (root / "labels" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text(names if names is not None else f"nc: {len(NAMES)}\nnames: {NAMES}\n")
    return root


def test_boxes_are_relative_to_each_image_size_and_classes_index_names(tmp_path):
    root = make_yolo(tmp_path / "set", {"a": "1 0.5 0.5 0.2 0.4\n0 0.25 0.5 0.1 0.2\n", "b": "4 0.5 0.5 1 1\n"},
                     sizes={"b": (50, 80)})
    data = read_annotations(root)
    assert detect_format(root) == "yolo"
    a, b = data.records
    assert a.path.endswith("a.jpg") and (a.width, a.height) == (200, 100)
    np.testing.assert_allclose(a.boxes, [[80, 30, 120, 70], [40, 40, 60, 60]], atol=1e-4)
    assert a.labels == ("10", "1")
    np.testing.assert_allclose(b.boxes, [[0, 0, 50, 80]], atol=1e-4)
    assert b.labels == ("Y",)
    assert data.class_map.names == ("1", "10", "Y")  # karyotype order, not text order


def test_names_as_a_mapping_a_classes_txt_and_a_data_yaml_path(tmp_path):
    mapping = make_yolo(tmp_path / "m", {"a": "1 0.5 0.5 0.2 0.2\n"}, names="names:\n  0: X\n  1: Y\n")
    assert read_annotations(mapping).records[0].labels == ("Y",)
    text = make_yolo(tmp_path / "t", {"a": "0 0.5 0.5 0.2 0.2\n"})
    os.remove(text / "data.yaml")
    (text / "classes.txt").write_text("7\n8\n")
    assert read_annotations(text).records[0].labels == ("7",)
    assert read_annotations(mapping / "data.yaml").records[0].labels == ("Y",)


def test_the_ultralytics_split_layout_and_data_yaml_splits(tmp_path):
    root = tmp_path / "export"
    make_yolo(root / "train", {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    make_yolo(root / "valid", {"c": "3 0.5 0.5 0.2 0.2\n"})
    os.remove(root / "train" / "data.yaml")
    os.remove(root / "valid" / "data.yaml")
    (root / "data.yaml").write_text(f"train: train/images\nval: valid/images\nnames: {NAMES}\n")
    by_folder = read_annotations(root).records
    by_yaml = read_annotations(root / "data.yaml").records
    assert [os.path.basename(r.path) for r in by_folder] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [r.path for r in by_yaml] == [r.path for r in by_folder]
    assert [r.labels for r in by_yaml] == [("1",), ("10",), ("X",)]
    # A split folder alone finds the names one folder up.
    assert len(read_annotations(root / "valid").records) == 1


def test_segment_lines_become_the_box_of_their_points(tmp_path):
    root = make_yolo(tmp_path / "s", {"a": "2 0.1 0.2 0.3 0.2 0.2 0.6\n"})
    np.testing.assert_allclose(read_annotations(root).records[0].boxes, [[20, 20, 60, 60]], atol=1e-4)


def test_an_image_without_a_label_file_has_no_objects_and_the_summary_says_so(tmp_path):
    root = make_yolo(tmp_path / "u", {"a": "0 0.5 0.5 0.2 0.2\n", "b": None})
    report = check_annotations(root)
    assert report.ok
    assert [r.num_boxes for r in report.records] == [1, 0]
    assert report.notes == ["1 of 2 images have no label file: read as images without objects"]


def test_rounding_outside_the_image_is_accepted_but_more_is_an_error_unless_clipped(tmp_path):
    root = make_yolo(tmp_path / "r", {"a": "0 0.09998 0.5 0.2 0.2\n", "b": "0 0.05 0.5 0.2 0.2\n"})
    report = check_annotations(root)
    assert [str(p) for p in report.problems] == [
        f"{root / 'labels' / 'b.txt'}:1: box (-10.0, 40.0, 30.0, 60.0) extends outside the "
        "200x100 image (--clip / clip_boxes=True clips it)"]
    assert report.records[0].boxes[0, 0] == 0.0  # -0.00001 of the width: rounding, put on the border
    clipped = check_annotations(root, clip_boxes=True)
    assert clipped.ok and clipped.records[1].boxes[0, 0] == 0.0 and len(clipped.warnings) == 1


@pytest.mark.parametrize("line, message", [
    ("7 0.5 0.5 0.2 0.2", "class index '7' is not one of 0..4 (the class names)"),
    ("-1 0.5 0.5 0.2 0.2", "class index '-1' is not one of 0..4 (the class names)"),
    ("1.5 0.5 0.5 0.2 0.2", "class index '1.5' is not one of 0..4 (the class names)"),
    ("0 0.5 0.5 0.2", "expected 5 fields (class x_center y_center width height) or a segment (class and 3 or "
                      "more x y points), found 4"),
    ("0 0.5 0.5 0.2 0.2 0.9", "expected 5 fields (class x_center y_center width height) or a segment (class and 3 "
                              "or more x y points), found 6"),
    ("0 0.5 abc 0.2 0.2", "y_center is not a number ('abc')"),
    ("0 0.5 0.5 nan 0.2", "width is not finite ('nan')"),
    ("0 0.5 0.5 0 0.2", "zero-size box (width 0, height 0.2)"),
    ("0 0.5 0.5 0.2 -0.1", "zero-size box (width 0.2, height -0.1)"),
    ("0 0.1 0.1 0.2 0.1 0.3 0.1", "zero-size box (the segment's points have one x or one y)"),
])
def test_every_bad_line_is_an_error_at_its_file_and_line(tmp_path, line, message):
    root = make_yolo(tmp_path / "bad", {"a": f"0 0.5 0.5 0.2 0.2\n\n{line}\n"})
    report = check_annotations(root)
    assert [str(p) for p in report.errors] == [f"{root / 'labels' / 'a.txt'}:3: {message}"]
    with pytest.raises(AnnotationProblemsError, match=":3: "):
        read_annotations(root)


def test_a_label_file_without_an_image_and_missing_names_are_errors(tmp_path):
    root = make_yolo(tmp_path / "orphan", {"a": "0 0.5 0.5 0.2 0.2\n"})
    (root / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert [str(p) for p in check_annotations(root).errors] == [
        f"{root / 'labels' / 'ghost.txt'}: no image for this label file in {root / 'images'}"]
    os.remove(root / "data.yaml")
    assert "no class names: put a data.yaml ('names') or a classes.txt" in str(check_annotations(root).errors[0])
    (root / "data.yaml").write_text("names: [a, b\n")
    assert "invalid YAML" in str(check_annotations(root).errors[0])


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "keras_frcnn.annotations", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


def test_check_command_on_a_yolo_folder(tmp_path):
    root = make_yolo(tmp_path / "c", {"a": "0 0.5 0.5 0.2 0.2\n", "b": None})
    ok = run_module("check", str(root))
    assert ok.returncode == 0, ok.stderr
    assert f"{root} (yolo)" in ok.stdout and "images: 2 (1 without boxes)" in ok.stdout
    assert "note: 1 of 2 images have no label file: read as images without objects" in ok.stdout
    (root / "labels" / "a.txt").write_text("9 0.5 0.5 0.2 0.2\n")
    bad = run_module("check", str(root))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr + bad.stdout
    assert f"{root / 'labels' / 'a.txt'}:1: class index '9' is not one of 0..4" in bad.stdout


def test_convert_writes_the_csv_in_either_label_scheme(tmp_path):
    # Two copies of chromosome 1 and one X: 1-l is the smaller centre x, a single X is X-l.
    root = make_yolo(tmp_path / "k", {"a": "0 0.6 0.5 0.1 0.2\n0 0.3 0.5 0.1 0.2\n3 0.8 0.5 0.1 0.2\n"})
    out = tmp_path / "out" / "k.csv"
    result = run_module("convert", str(root), str(out), "--labels", "paper49")
    assert result.returncode == 0, result.stderr
    assert f"{out}: 1 images, 3 boxes, 3 classes" in result.stdout
    records = read_csv(out)
    assert records[0].labels == ("1-r", "1-l", "X-l")
    np.testing.assert_allclose(records[0].boxes[1], [50, 40, 70, 60], atol=1e-3)
    as_is = run_module("convert", str(root), str(out))
    assert as_is.returncode == 0 and read_csv(out)[0].labels == ("1", "1", "X")
    refused = run_module("convert", str(root), str(tmp_path / "k.txt"))
    assert refused.returncode == 2 and refused.stderr.strip() == f"error: {tmp_path / 'k.txt'}: the output must be a .csv file"


def test_convert_saves_images_embedded_in_labelme_files(tmp_path):
    import base64
    import json

    ok, png = cv2.imencode(".png", np.zeros((40, 60, 3), np.uint8))
    (tmp_path / "cell.json").write_text(json.dumps({
        "shapes": [{"label": "chr", "points": [[5, 5], [20, 30]], "shape_type": "rectangle"}],
        "imageData": base64.b64encode(png.tobytes()).decode(), "imageWidth": 60, "imageHeight": 40}))
    out = tmp_path / "converted.csv"
    assert run_module("convert", str(tmp_path / "cell.json"), str(out)).returncode == 0
    record = read_csv(out)[0]
    assert record.path == str(tmp_path / "converted_images" / "cell.png") and record.labels == ("chr",)
