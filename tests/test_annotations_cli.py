"""``python -m keras_frcnn.annotations check``: summary, problems, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def run_check(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "keras_frcnn.annotations", "check", *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two 100x80 images; ``clean.csv`` has 3 boxes, ``bad.csv`` three errors and a warning."""
    for name in ("a.png", "b.png"):
        assert cv2.imwrite(str(tmp_path / name), np.zeros((80, 100), dtype=np.uint8))
    (tmp_path / "clean.csv").write_text(
        "filepath,x1,y1,x2,y2,class_name\na.png,10,10,20,40,Y\na.png,0,0,100,80,1-l\nb.png,5,5,35,15,Y\n"
    )
    (tmp_path / "bad.csv").write_text(
        "a.png,40,10,12,40,Y\na.png,1,2,3\nb.png,90,10,110,20,Y\nb.png,1,1,9,9,Z\nb.png,1,1,9,9,Z\n"
    )
    (tmp_path / "classes.txt").write_text("1-l\nY\n")
    return tmp_path


def test_clean_data_exits_0_with_a_summary(dataset: Path):
    result = run_check(str(dataset / "clean.csv"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "images: 2 (0 without boxes)" in out and "boxes: 3" in out
    lines = out.splitlines()
    per_class = lines.index("boxes per class:")
    assert lines[per_class + 1].split() == ["1-l", "1"] and lines[per_class + 2].split() == ["Y", "2"]
    # widths 10, 100, 30; heights 30, 80, 10; longer sides 30, 100, 30
    assert "width 10.0 30.0 100.0" in " ".join(out.split())
    assert "height 10.0 30.0 80.0" in " ".join(out.split())
    assert "longer side 30.0 30.0 100.0" in " ".join(out.split())
    assert lines[-1] == "problems: none"


def test_problems_exit_2_and_are_all_listed(dataset: Path):
    bad = dataset / "bad.csv"
    expected = [
        f"  {bad}:1: x2 (12.0) must be greater than x1 (40.0)",
        f"  {bad}:2: expected 6 columns (filepath,x1,y1,x2,y2,class_name), found 4",
        f"  {bad}:3: box (90.0, 10.0, 110.0, 20.0) extends outside the 100x80 image "
        "(--clip / clip_boxes=True clips it)",
        f"  {bad}:4: unknown class 'Z' (not in the class list)",
        f"  {bad}:5: warning: duplicate of line 4 (ignored)",
    ]
    result = run_check(str(bad), "--classes", str(dataset / "classes.txt"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout.split("problems: 4 errors, 1 warning\n")[1].splitlines() == expected
    without_classes = run_check(str(bad))
    assert without_classes.returncode == 2
    assert without_classes.stdout.split("problems: 3 errors, 1 warning\n")[1].splitlines() == (
        expected[:3] + expected[4:]
    )


def test_clip_and_the_console_script_form_in_process(dataset: Path, capsys):
    bad = dataset / "bad.csv"
    bad.write_text("a.png,10,10,20,40,Y\nb.png,90,10,110,20,Y\nb.png,90,10,110,20,Y\n")
    assert main(["check", str(bad), "--clip"]) == 0
    out = capsys.readouterr().out
    assert out.split("problems: 0 errors, 2 warnings\n")[1].splitlines() == [
        f"  {bad}:2: warning: box (90.0, 10.0, 110.0, 20.0) clipped to the 100x80 image",
        f"  {bad}:3: warning: duplicate of line 2 (ignored)",
    ]
    assert main([str(bad), "--clip"]) == 0  # `keras-frcnn-check PATH`, without "check"
    assert main(["check", str(bad)]) == 2
    assert main(["check", str(dataset / "nothing.csv")]) == 2
    assert capsys.readouterr().err.endswith("nothing.csv: no such file or directory\n")


def test_bad_paths_are_one_line_errors_with_exit_2(dataset: Path):
    missing = run_check(str(dataset / "nothing.csv"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == f"error: {dataset / 'nothing.csv'}: no such file or directory\n"
    bad_classes = run_check(str(dataset / "clean.csv"), "--classes", str(dataset / "none.txt"))
    assert bad_classes.returncode == 2 and "Traceback" not in bad_classes.stderr
    assert bad_classes.stderr.startswith(f"error: {dataset / 'none.txt'}: cannot read class list")
