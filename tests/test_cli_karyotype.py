"""``karyotype_frcnn.py``: karyotype.json from hand-made detections, bad input, and (slow) a tiny model end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from keras_frcnn.annotations.classes import chromosome_classes, chromosome_labels
from keras_frcnn.cli.karyotype import check_chromosome_classes, json_ready, main, write_spread
from keras_frcnn.inference.detections import Detections
from keras_frcnn.errors import UserError
from keras_frcnn.inference.karyotype import CHROMOSOMES, summarise_detections
from model_fixtures import scene, tiny_config


def cell_47xy_plus_21() -> Detections:
    """A 47,XY,+21 spread's detections (24 classes) on a grid, plus one too weak to count and one
    overlapping reading of a chromosome (counted once, with its best label)."""
    labels = [name for name in chromosome_classes()[:22] for _ in range(2)] + ["X", "Y", "21"]
    boxes = []
    for index, label in enumerate(labels):
        row, column = divmod(index, 8)
        length = 50 - 1.5 * (CHROMOSOMES.index(label))
        boxes.append((10 + 45 * column, 10 + 70 * row, 18 + 45 * column, 10 + 70 * row + length))
    scores = [0.9] * len(labels)
    scores[3] = scores[20] = 0.4  # a 2 and an 11: low confidence
    scores[30] = 0.6  # a 16: counted, not low
    boxes.append((380, 10, 388, 40))
    labels.append("5")
    scores.append(0.2)  # below --karyotype-score: not counted
    boxes.append((10, 11, 18, 58))
    labels.append("3")
    scores.append(0.5)  # the first 1 read again as a 3: overlaps, counted once as the better-scoring 1
    return Detections("cell.png", boxes, scores, labels)


def spread_image(detections: Detections) -> np.ndarray:
    image = np.full((430, 400, 3), 12, np.uint8)
    for (x1, y1, x2, y2), score in zip(detections.boxes.astype(int), detections.scores):
        if score >= 0.3:
            image[y1:y2, x1:x2] = 190
            image[y1 + 5:y2 - 5:9, x1:x2] = 90  # bands
    return image


def test_karyotype_json_is_the_summary_with_its_confidence(tmp_path: Path):
    detections = cell_47xy_plus_21()
    summary = write_spread(str(tmp_path / "cell"), spread_image(detections), detections, CHROMOSOMES,
                           karyotype_score=0.3, low_confidence=0.5, title="cell.png")
    expected = summarise_detections(detections, low_confidence=0.5, min_score=0.3)
    assert summary == expected
    data = json.loads((tmp_path / "cell" / "karyotype.json").read_text())
    assert {key: data[key] for key in dataclasses.asdict(expected)} == json_ready(dataclasses.asdict(expected))
    assert data["iscn_draft"] == "47,XY,+21" and data["total"] == 47 and data["gains"] == ["+21"]
    assert data["losses"] == [] and data["sex_chromosomes"] == "XY" and data["counts"]["21"] == 3
    # hand-checked: 44 at 0.9, two at 0.4, one at 0.6 -> mean 41 / 47
    assert data["confidence"] == {
        "counted": 47, "mean_score": 0.8723, "min_score": 0.4, "low_confidence": 0.5, "below_low_confidence": 2,
        "karyotype_score": 0.3, "review_items": 2,
    }
    assert len(data["review_items"]) == 2 and all("low confidence" in item for item in data["review_items"])
    chromosomes = data["chromosomes"]
    assert [c["number"] for c in chromosomes] == list(range(1, 48))
    assert [c["chromosome"] for c in chromosomes] == [c for c in CHROMOSOMES[:22] for _ in range(2 + (c == "21"))] \
        + ["X", "Y"]
    assert sum(c["low_confidence"] for c in chromosomes) == 2 and all(c["masked"] for c in chromosomes)
    assert data["files"] == {"karyogram": "karyogram.png", "spread": "spread.png"}
    for name in ("karyogram.png", "spread.png"):
        assert cv2.imread(str(tmp_path / "cell" / name)) is not None
    assert cv2.imread(str(tmp_path / "cell" / "spread.png")).shape == (430, 400, 3)
    assert sorted(p.name for p in (tmp_path / "cell").iterdir()) == ["karyogram.png", "karyotype.json", "spread.png"]


def test_check_chromosome_classes():
    check_chromosome_classes(chromosome_classes(), "m.keras")
    check_chromosome_classes(chromosome_labels(), "m.keras")
    check_chromosome_classes([c for c in chromosome_labels() if not c.endswith("-?")], "m.keras")
    with pytest.raises(UserError, match=r"its 3 classes are a, b, c, missing chromosome\(s\) 1, 2, 3, \.\.\., X, Y; "
                                        r"a karyotype needs the 24 classes 1, 2, 3, \.\.\., X, Y or the 49 labels"):
        check_chromosome_classes(["a", "b", "c"], "m.keras")
    with pytest.raises(UserError, match="missing chromosome"):
        check_chromosome_classes(["1-l", "1-r", "X-l", "Y"], "m.keras")


@pytest.fixture(scope="module")
def abc_model(tmp_path_factory) -> Path:
    from keras_frcnn.model.faster_rcnn import build_model

    path = tmp_path_factory.mktemp("abc") / "abc.keras"
    build_model(tiny_config()).save(path)
    return path


@pytest.mark.parametrize(
    "setup, message",
    [
        ("empty_file", "empty.png: cannot read image (empty file)"),
        ("text_png", "notes.png: cannot read image"),
        ("no_images", "no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff) and no annotations in this folder"),
        ("missing_input", "no such file or directory"),
        ("no_model", "absent.keras: model not found"),
        ("abc_model", "not a chromosome model: its 3 classes are a, b, c"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(setup: str, message: str, tmp_path: Path, capsys, request):
    folder = tmp_path / "in"
    folder.mkdir()
    model = tmp_path / "model.keras"
    model.write_bytes(b"")  # enough for the checks made before loading the model
    if setup == "empty_file":
        (folder / "empty.png").write_bytes(b"")
    elif setup == "text_png":
        (folder / "notes.png").write_text("not an image\n")
    elif setup == "missing_input":
        folder = tmp_path / "nowhere"
    if setup in ("no_model", "abc_model"):
        assert cv2.imwrite(str(folder / "ok.png"), np.zeros((32, 32), np.uint8))
        model = tmp_path / "absent.keras" if setup == "no_model" else request.getfixturevalue("abc_model")
    code = main(["-p", str(folder), "--model", str(model), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_bad_flags_are_one_line():
    with pytest.raises(UserError, match="--scale"):
        from keras_frcnn.cli.karyotype import build_parser

        build_parser().parse_args(["-p", "x", "--model", "m", "--scale", "0"])


def test_script_reports_bad_input_in_one_line(tmp_path: Path):
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "karyotype_frcnn.py", "-p", str(tmp_path / "empty"), "--model", str(tmp_path / "m.keras")],
        capture_output=True, text=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == f"error: {tmp_path / 'm.keras'}: model not found (give a .keras file or a run folder)\n"


@pytest.mark.slow
def test_end_to_end_with_a_tiny_24_class_model(tmp_path: Path, capsys):
    """An untrained model detects junk: this checks the outputs' structure, not their content."""
    from keras_frcnn.model.faster_rcnn import build_model

    model = tmp_path / "chromosomes.keras"
    build_model(tiny_config(class_names=chromosome_classes(), score_threshold=0.0, max_detections=10)).save(model)
    spreads = tmp_path / "spreads"
    spreads.mkdir()
    for seed, name in enumerate(("cell_a.png", "cell_b.png")):
        image = scene([(10, 12, 30, 52, 0), (50, 20, 90, 40, 1), (70, 70, 96, 118, 2)], seed=seed)
        assert cv2.imwrite(str(spreads / name), image.astype(np.uint8))
    out = tmp_path / "out"
    code = main(["-p", str(spreads), "--model", str(model), "--output", str(out), "--karyotype-score", "0",
                 "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    table = pd.read_csv(out / "karyotypes.csv")
    assert [Path(p).name for p in table["filepath"]] == ["cell_a.png", "cell_b.png"]
    for name in ("cell_a", "cell_b"):
        assert sorted(p.name for p in (out / name).iterdir()) == ["karyogram.png", "karyotype.json", "spread.png"]
        data = json.loads((out / name / "karyotype.json").read_text())
        assert data["path"].endswith(f"{name}.png") and data["iscn_status"] == "draft, needs review"
        assert data["total"] == len(data["chromosomes"]) == table.loc[table["filepath"] == data["path"], "total"].item()
        assert cv2.imread(str(out / name / "karyogram.png")) is not None
        assert cv2.imread(str(out / name / "spread.png")).shape == (128, 128, 3)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "temporary files left behind"
    lines = captured.out.splitlines()
    assert "label assignment karyotype" in lines[0]
    assert [line.split(":")[0] for line in lines if line.startswith("[")] == [
        f"[{i}/2] {spreads / name}" for i, name in enumerate(("cell_a.png", "cell_b.png"), 1)]
    assert lines[-1].startswith("wrote ") and lines[-1].endswith(f"{out / 'karyotypes.csv'} and {out / 'report.html'}")
    # the review page shows each spread with its karyogram beside it, linked relatively
    report = (out / "report.html").read_text(encoding="utf-8")
    assert all(f">{name}.png</h3>" in report for name in ("cell_a", "cell_b"))
    assert report.count('<figure class="karyogram">') == 2
    assert 'src="cell_a/karyogram.png"' in report and 'src="cell_b/karyogram.png"' in report
    assert "<dt>Label assignment</dt><dd>karyotype</dd>" in report
