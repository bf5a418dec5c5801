"""YOLO karyograms end to end: train on the paper's 49 labels, measure, then --init-from into a 24-class run."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from model_fixtures import TINY_MODEL_FLAGS, scene

from keras_frcnn.cli.measure import main as measure_main
from keras_frcnn.cli.train import main as train_main

# Two pairs per image (classes "1" and "2"), homologues side by side.
PAIRS = [
    [(10, 20, 26, 70, 0), (34, 20, 50, 70, 0), (70, 30, 84, 60, 2), (92, 30, 106, 60, 2)],
    [(14, 16, 30, 66, 0), (40, 16, 56, 66, 0), (66, 70, 80, 100, 2), (90, 70, 104, 100, 2)],
    [(20, 60, 36, 110, 0), (44, 60, 60, 110, 0), (76, 10, 90, 40, 2), (100, 10, 114, 40, 2)],
    [(8, 8, 24, 58, 0), (30, 8, 46, 58, 0), (60, 80, 74, 110, 2), (84, 80, 98, 110, 2)],
]


def write_yolo_karyograms(root):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text("names: ['1', '2']\n")
    for i, objects in enumerate(PAIRS):
        cv2.imwrite(str(root / "images" / f"karyotype-{i}_png.rf.{i:032x}.png"), scene(objects, seed=i).astype(np.uint8))
        lines = [f"{c // 2} {(x1 + x2) / 256} {(y1 + y2) / 256} {(x2 - x1) / 128} {(y2 - y1) / 128}"
                 for x1, y1, x2, y2, c in objects]
        (root / "labels" / f"karyotype-{i}_png.rf.{i:032x}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_yolo_to_paper49_training_measure_and_init_from(tmp_path, capsys):
    data = write_yolo_karyograms(tmp_path / "yolo")
    flags = ["--network", "tiny", *TINY_MODEL_FLAGS, "--optimizer", "adam", "--num_epochs", "1",
             "--epoch_length", "4", "--val-fraction", "0.25", "--quiet"]
    run49 = tmp_path / "run49"
    assert train_main(["-p", str(data), "--labels", "paper49", "--output", str(run49), *flags]) == 0, \
        capsys.readouterr().err
    assert json.loads((run49 / "class_map.json").read_text())["classes"][:4] == ["1-l", "1-r", "2-l", "2-r"]
    assert json.loads((run49 / "config.json").read_text())["data"]["labels"] == "paper49"
    split = json.loads((run49 / "split.json").read_text())
    assert len(split["val"]) == 1 and len(split["train"]) == 3

    out = tmp_path / "measure"
    assert measure_main(["-p", str(data), "--labels", "paper49", "--model", str(run49), "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["voc"]["per_class"]["1-l"]["n_gt"] == 4 and metrics["voc"]["per_class"]["2-r"]["n_gt"] == 4

    capsys.readouterr()
    run24 = tmp_path / "run24"
    assert train_main(["-p", str(data), "--init-from", str(run49), "--output", str(run24), *flags]) == 0
    printed = capsys.readouterr().out
    assert json.loads((run24 / "class_map.json").read_text())["classes"][:2] == ["1", "2"]
    assert f"initialised from {run49}" in printed
    assert "class_logits/kernel: class-dependent (49 source classes, 24 here" in printed

    # The 24-class model scored on the paper's scheme: its detections get their sides by position.
    out24 = tmp_path / "measure24"
    assert measure_main(["-p", str(data), "--labels", "paper49", "--model", str(run24), "--output", str(out24)]) == 0
    per_class = json.loads((out24 / "metrics.json").read_text())["voc"]["per_class"]
    assert "1-l" in per_class and "1" not in per_class
