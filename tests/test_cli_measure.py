"""``measure_map.py --detections``, end to end in a subprocess, on hand-made cases with known metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_frcnn.cli.measure import align_paths
from keras_frcnn.inference.detections import Detections

REPO = Path(__file__).resolve().parents[1]

GROUND_TRUTH = """filepath,x1,y1,x2,y2,class_name
a.png,10,10,20,40,1-l
a.png,30,10,40,40,1-r
b.png,10,10,20,40,1-l
b.png,30,10,40,40,1-r
"""
PERFECT = """filepath,x1,y1,x2,y2,class_name,score
a.png,10,10,20,40,1-l,0.9
a.png,30,10,40,40,1-r,0.8
b.png,10,10,20,40,1-l,0.9
b.png,30,10,40,40,1-r,0.8
"""
# b's 1-r is missed: 1-l AP 1; 1-r AP 0.5 (all-point), 6/11 (11-point: recall 0..0.5 at precision 1).
ONE_MISSED = """filepath,x1,y1,x2,y2,class_name,score
a.png,10,10,20,40,1-l,0.9
a.png,30,10,40,40,1-r,0.8
b.png,10,10,20,40,1-l,0.9
"""


def run_measure(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "measure_map.py", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "gt.csv").write_text(GROUND_TRUTH)  # a.png and b.png need not exist
    (tmp_path / "perfect.csv").write_text(PERFECT)
    (tmp_path / "one_missed.csv").write_text(ONE_MISSED)
    return tmp_path


def measure_ok(data: Path, detections: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict, Path]:
    out = data / "out"
    result = run_measure("-p", str(data / "gt.csv"), "--detections", str(data / detections),
                         "--output", str(out), "--json", str(data / "m.json"), *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result, json.loads((data / "m.json").read_text()), out


def test_perfect_detections_give_map_1_and_every_output(data: Path):
    result, metrics, out = measure_ok(data, "perfect.csv")
    assert set(metrics) == {"voc", "voc07", "coco"}
    assert metrics["voc"]["mAP"] == 1.0 and metrics["voc07"]["mAP"] == pytest.approx(1.0)
    assert metrics["coco"]["AP"] == pytest.approx(1.0)
    assert "mean: VOC mAP 1.0000  VOC07 mAP 1.0000  COCO AP 1.0000  AP50 1.0000  AP75 1.0000" in result.stdout
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class"))
    assert lines[header].split() == ["class", "AP", "P@0.5", "R@0.5", "n_gt", "n_det@0.5"]
    assert lines[header + 1].split() == ["1-l", "1.0000", "1.0000", "1.0000", "2", "2"]
    assert "left out of the mean (no ground truth): none" in result.stdout
    assert "2 images, 4 boxes, 2 classes" in result.stdout
    for name in ("per_class_precision.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "metrics.json").read_text())
    assert {k: saved[k] for k in ("voc", "voc07", "coco")} == metrics
    assert saved["settings"]["iou_threshold"] == 0.5
    assert (out / "confusion.csv").read_text().splitlines()[0] == "ground truth,1-l,1-r,missed"
    # the review page names every image (here without pictures: a.png and b.png do not exist)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert ">a.png</h3>" in report and ">b.png</h3>" in report and "image not available" in report
    assert "perfect.csv (read from a file, no model run)" in report
    written = [out / name for name in ("metrics.json", "per_class_precision.png", "confusion.png", "confusion.csv",
                                       "report.html")] + [data / "m.json"]
    assert result.stdout.splitlines()[-1] == "wrote " + ", ".join(map(str, written))
    assert result.stderr == ""


def test_one_missed_box_gives_the_hand_computed_values(data: Path):
    result, metrics, out = measure_ok(data, "one_missed.csv")
    voc = metrics["voc"]
    assert voc["per_class"]["1-l"]["ap"] == pytest.approx(1.0)
    assert voc["per_class"]["1-r"] == {"ap": pytest.approx(0.5), "precision": pytest.approx(1.0),
                                       "recall": pytest.approx(0.5), "n_gt": 2, "n_det": 1}
    assert voc["mAP"] == pytest.approx(0.75)
    assert metrics["voc07"]["mAP"] == pytest.approx((1.0 + 6 / 11) / 2)
    assert "VOC mAP 0.7500  VOC07 mAP 0.7727" in result.stdout
    assert ["1-r", "0.5000", "1.0000", "0.5000", "2", "1"] in [line.split() for line in result.stdout.splitlines()]
    assert "3 correct, 0 confused, 1 missed, 0 on background" in result.stdout
    confusion = (out / "confusion.csv").read_text().splitlines()
    assert confusion[2] == "1-r,0,1,1"  # one 1-r found, one missed


def test_confusions_and_unmatched_images_are_reported(data: Path):
    (data / "mixed.csv").write_text(
        "filepath,x1,y1,x2,y2,class_name,score\n"
        "a.png,10,10,20,40,1-l,0.9\n"
        "a.png,30,10,40,40,1-r,0.8\n"
        "b.png,10,10,20,40,1-r,0.9\n"  # 1-l taken for 1-r
        "b.png,30,10,40,40,2-l,0.8\n"  # 1-r taken for another chromosome
        "elsewhere/c.png,1,1,5,5,1-l,0.7\n"
    )
    result, metrics, _ = measure_ok(data, "mixed.csv", "--score-threshold", "0.6")
    assert "1-l -> 1-r: 1" in result.stdout and "1-r -> 2-l: 1" in result.stdout
    assert "side: 1 of 2 confusions swap N-l and N-r, 0 involve a side-unknown N-?, 1 take another chromosome" \
        in result.stdout
    assert "left out of the mean (no ground truth): 2-l" in result.stdout
    assert "P@0.6" in result.stdout
    warning = [line for line in result.stderr.splitlines() if "match no ground-truth image" in line]
    assert warning == [
        f"warning: 1 of 3 image(s) in {data / 'mixed.csv'} match no ground-truth image (e.g. elsewhere/c.png); "
        "their 1 detection(s) count as false positives"
    ]
    assert metrics["voc"]["per_class"]["1-l"]["n_det"] == 2  # the unmatched one is a false positive


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give either --model or --detections"),
        (["--detections", "{d}/perfect.csv", "--model", "{d}/m.keras"], "give either --model or --detections"),
        (["--detections", "{d}/perfect.csv", "--iou", "2"], "argument --iou: must be between 0 and 1"),
        (["--detections", "{d}/perfect.csv", "--bogus"], "unrecognized arguments: --bogus"),
        (["--detections", "{d}/nope.csv"], "nope.csv: cannot read detections"),
        (["--detections", "{d}/columns.csv"], "columns.csv:1: unknown columns filepath,xmin,ymin,xmax,ymax,label,p"),
        (["--detections", "{d}/perfect.csv", "-o", "kitti"], "argument -o/--parser: invalid choice: 'kitti'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(data: Path, args: list[str], message: str):
    (data / "columns.csv").write_text("filepath,xmin,ymin,xmax,ymax,label,p\na.png,1,1,2,2,1-l,0.5\n")
    result = run_measure("-p", str(data / "gt.csv"), *(a.format(d=data) for a in args))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr


def test_missing_ground_truth_is_one_line(data: Path):
    result = run_measure("-p", str(data / "absent.csv"), "--detections", str(data / "perfect.csv"))
    assert result.returncode == 2 and result.stderr == f"error: {data / 'absent.csv'}: no such file or directory\n"


def test_align_paths_tries_as_written_then_beside_the_file_then_the_file_name(tmp_path: Path):
    from keras_frcnn.annotations.records import ImageRecord

    truth = [ImageRecord(str(tmp_path / "img" / name), [], ()) for name in ("a.png", "b.png", "c.png")]
    found = [
        Detections(str(tmp_path / "img" / "a.png"), [], [], []),  # as written
        Detections(os.path.join("img", "b.png"), [], [], []),  # beside the detections file
        Detections("/somewhere/else/c.png", [], [], []),  # only the file name
        Detections("/somewhere/else/d.png", [], [], []),  # nothing
    ]
    aligned, unmatched, by_name = align_paths(found, truth, str(tmp_path / "dets.csv"))
    assert [d.path for d in aligned[:3]] == [r.path for r in truth]
    assert [d.path for d in unmatched] == ["/somewhere/else/d.png"] and by_name == 1


def test_json_onto_the_report_file_keeps_the_full_report(data: Path):
    out = data / "out"
    result = run_measure("-p", str(data / "gt.csv"), "--detections", str(data / "perfect.csv"),
                         "--output", str(out), "--json", str(out / "metrics.json"))
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["voc"]["mAP"] == 1.0 and saved["settings"]["iou_threshold"] == 0.5  # not cut to the metrics
    assert result.stdout.count("metrics.json") == 1
