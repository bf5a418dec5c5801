"""``test_frcnn.py`` and ``measure_map.py --model``, in-process, with a tiny untrained model.

An untrained model detects junk (its config keeps every score), so these tests check the
structure of the outputs, not their content.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from keras_frcnn.cli import common
from keras_frcnn.cli.measure import main as measure_main
from keras_frcnn.cli.test import main as run_test_frcnn
from keras_frcnn.cli.test import output_names
from keras_frcnn.inference.detections import CSV_HEADER, read_detections_csv
from keras_frcnn.errors import UserError
from keras_frcnn.inference.karyotype import CHROMOSOMES, select_chromosomes
from model_fixtures import scene, tiny_config

CLASSES = ("1-l", "1-r", "X-l", "Y")
SIZES = {"cell_a.png": (96, 128), "cell_b.png": (128, 112), "cell_c.tif": (80, 100)}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    from keras_frcnn.model.faster_rcnn import build_model

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_model(tiny_config(class_names=CLASSES, score_threshold=0.0, max_detections=10)).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Three small images (one TIFF, which TensorFlow cannot decode) and a ground truth CSV."""
    folder = tmp_path_factory.mktemp("images")
    for seed, (name, (height, width)) in enumerate(SIZES.items()):
        image = scene([(10, 12, 30, 52, 0), (50, 20, 90, 40, 1)], height=height, width=width, seed=seed)
        assert cv2.imwrite(str(folder / name), image.astype(np.uint8))
    (folder / "notes.md").write_text("not an image\n")
    (folder / "gt.csv").write_text(
        "filepath,x1,y1,x2,y2,class_name\n"
        "cell_a.png,10,12,30,52,1-l\ncell_a.png,50,20,90,40,1-r\n"
        "cell_b.png,10,12,30,52,1-l\ncell_b.png,50,20,90,40,Y\n"
    )
    return folder


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_folder_run_writes_every_output(images: Path, model_path: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = run_test_frcnn(["-p", str(images), "--model", str(model_path), "--output", str(out), "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "; 2 image(s) per model call" in captured.out
    for name, (height, width) in SIZES.items():
        drawn = cv2.imread(str(out / "images" / (Path(name).stem + ".png")))
        assert drawn is not None and drawn.shape == (height, width, 3)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["cell_a.png", "cell_b.png", "cell_c.png"]

    rows = read_rows(out / "detections.csv")
    assert tuple(rows[0]) == CSV_HEADER
    found = read_detections_csv(out / "detections.csv")
    assert [Path(d.path).name for d in found] == list(SIZES)
    assert all(0 < len(d) <= 10 and set(d.labels) <= set(CLASSES) for d in found)

    table = pd.read_csv(out / "karyotype.csv")
    assert len(table) == 3 and [Path(p).name for p in table["filepath"]] == list(SIZES)
    for column in ("total", "sex_chromosomes", "gains", "losses", "iscn_draft", "needs_review", "review_items"):
        assert column in table.columns
    assert [f"count_{c}" for c in CHROMOSOMES] == [c for c in table.columns if c.startswith("count_")]
    # the chromosomes counted: confident, overlapping readings once (select_chromosomes is hand-checked elsewhere)
    assert table["total"].tolist() == [len(select_chromosomes(d)) for d in found]
    assert table["needs_review"].all()

    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("[")] == [
        f"[{i}/3] {images / name}" for i, name in enumerate(SIZES, 1)
    ]
    assert any(line.startswith("time per image: mean ") for line in lines)
    # the review page names every image and shows each (the TIFF too), and the last line names the page
    report = (out / "report.html").read_text(encoding="utf-8")
    assert all(f">{name}</h3>" in report for name in SIZES)
    assert sorted(p.name for p in (out / "report_images").glob("*.jpg")) == ["cell_a.jpg", "cell_b.jpg", "cell_c.jpg"]
    assert lines[-1].startswith("wrote ") and lines[-1].endswith(f", {out / 'report.html'}")
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "temporary files left behind"


def test_optimal_label_assignment_gives_each_label_once_per_image(images: Path, model_path: Path, tmp_path: Path,
                                                                   capsys):
    out = tmp_path / "out"
    code = run_test_frcnn(["-p", str(images), "--model", str(model_path), "--output", str(out),
                           "--label-assignment", "optimal"])
    assert code == 0, capsys.readouterr().err
    for detections in read_detections_csv(out / "detections.csv"):
        # 10 objects (the model keeps every score) and 4 labels: 4 objects take the 4 labels, the
        # other 6 keep their most likely one
        assert len(detections) == 10 and sorted(set(detections.labels)) == sorted(CLASSES)


def test_score_threshold_filters_and_annotation_file_gives_its_images(images: Path, model_path: Path,
                                                                      tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = run_test_frcnn(["-p", str(images / "gt.csv"), "--model", str(model_path), "--output", str(out),
                      "--score-threshold", "1.0"])
    assert code == 0, capsys.readouterr().err
    rows = read_rows(out / "detections.csv")
    assert rows[1:] == [[str(images / "cell_a.png"), "", "", "", "", "", ""],
                        [str(images / "cell_b.png"), "", "", "", "", "", ""]]
    table = pd.read_csv(out / "karyotype.csv")
    assert table["total"].tolist() == [0, 0]
    assert table["iscn_draft"].astype(str).tolist() == ["0", "0"]  # nothing found: no list of 46 losses
    assert all("no chromosomes found" in items for items in table["review_items"])


def test_measure_with_a_model_writes_detections_and_metrics(images: Path, model_path: Path, tmp_path: Path,
                                                           capsys):
    out = tmp_path / "measure"
    code = measure_main(["-p", str(images / "gt.csv"), "--model", str(model_path), "--output", str(out),
                         "--json", str(tmp_path / "m.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert tuple(read_rows(out / "detections.csv")[0]) == CSV_HEADER
    assert [Path(d.path).name for d in read_detections_csv(out / "detections.csv")] == ["cell_a.png", "cell_b.png"]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics) == {"voc", "voc07", "coco"}
    assert list(metrics["voc"]["per_class"]) == list(CLASSES)  # the model's classes, in karyotype order
    assert metrics["voc"]["missing_classes"] == ["X-l"]
    for name in ("metrics.json", "per_class_precision.png", "confusion.png", "confusion.csv"):
        assert (out / name).stat().st_size > 0
    assert "mean: VOC mAP " in captured.out and "left out of the mean (no ground truth): X-l" in captured.out
    report = (out / "report.html").read_text(encoding="utf-8")
    assert all(f">{name}</h3>" in report for name in ("cell_a.png", "cell_b.png"))
    assert "<dt>Network</dt><dd>tiny</dd>" in report and 'id="per-class"' in report
    assert f", {out / 'report.html'}, " in captured.out.splitlines()[-1]  # the final "wrote ..." line (then --json)


def test_proposals_flag_limits_the_rpn_proposals(images: Path, model_path: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = run_test_frcnn(["-p", str(images), "--model", str(model_path), "--output", str(out),
                           "--label-assignment", "none", "--proposals", "1"])
    assert code == 0, capsys.readouterr().err
    for detections in read_detections_csv(out / "detections.csv"):
        # one proposal, per-class NMS: at most one box per class (10 without the flag)
        assert 0 < len(detections) <= len(CLASSES) and len(set(detections.labels)) == len(detections)


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "no such file or directory"),
        ("empty", "no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff) and no annotations in this folder"),
        ("garbage", "broken.png: cannot read image"),
        ("no_model", "model not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(setup: str, message: str, model_path: Path, tmp_path: Path, capsys):
    folder = tmp_path / "in"
    model = str(model_path)
    if setup != "missing":
        folder.mkdir()
    if setup == "garbage":
        (folder / "broken.png").write_bytes(b"not a png at all")
    if setup == "no_model":
        assert cv2.imwrite(str(folder / "ok.png"), np.zeros((32, 32), np.uint8))
        model = str(tmp_path / "absent.keras")
    code = run_test_frcnn(["-p", str(folder), "--model", model, "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_image_records_resolves_folder_image_and_annotations(images: Path):
    folder = common.image_records(str(images))
    assert [Path(r.path).name for r in folder] == list(SIZES)  # sorted, .md and .csv skipped
    one = common.image_records(str(images / "cell_b.png"))
    assert [r.path for r in one] == [str(images / "cell_b.png")]
    annotated = common.image_records(str(images / "gt.csv"), "simple")
    assert [Path(r.path).name for r in annotated] == ["cell_a.png", "cell_b.png"]
    assert all(r.num_boxes == 0 for r in annotated)  # ground truth dropped
    with pytest.raises(UserError, match="unknown annotation format"):
        common.image_records(str(images / "notes.md"))


def test_parser_names_map_to_annotation_formats():
    assert common.annotation_format("simple") == "csv"
    assert common.annotation_format("pascal_voc") == "pascal_voc"
    assert common.annotation_format("yolo") == "yolo"
    assert common.annotation_format(None) is None
    with pytest.raises(UserError, match="unknown parser 'darknet'"):
        common.annotation_format("darknet")


def test_output_names_are_distinct():
    from keras_frcnn.annotations.records import ImageRecord

    records = [ImageRecord(p, [], ()) for p in ("a/x.png", "b/x.jpg", "c/X.tif", "d/y.json")]
    assert output_names(records) == ["x.png", "x_2.png", "X_3.png", "y.png"]


def test_script_reports_bad_input_in_one_line(tmp_path: Path):
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "test_frcnn.py", "-p", str(tmp_path / "empty"), "--model", str(tmp_path)],
        capture_output=True, text=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == f"error: {tmp_path}: no best.keras or last.keras in this run folder " \
        "(has training finished an epoch?)\n"
