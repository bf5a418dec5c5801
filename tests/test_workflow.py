"""The three scripts end to end on a tiny synthetic set, as a user runs them (subprocesses)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from keras_frcnn.synthetic import generate_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--network", "tiny", "--im-size", "160", "--set", "max_size=200", "--set", "tiny_filters=[8,16,32,32]",
        "--set", "head_units=32", "--set", "rpn_head_channels=16", "--set", "post_nms_top_n_train=64",
        "--set", "post_nms_top_n_test=64", "-n", "16"]


def _script(name, *args):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, os.path.join(REPO, name), *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_train_test_measure_on_synthetic_karyograms(tmp_path):
    generate_dataset(tmp_path / "data", 4, 2, mode="karyogram", seed=3, width=320, height=240)
    run = tmp_path / "run"
    trained = _script("train_frcnn.py", "-p", str(tmp_path / "data" / "train.csv"), "--output", str(run),
                      "--num_epochs", "1", "--epoch_length", "3", "--hf", "--rot", "--optimizer", "adadelta", *TINY)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "epoch 1:" in trained.stdout and "done: 1 epochs" in trained.stdout
    for name in ("config.json", "class_map.json", "history.csv", "best.keras", "last.keras", "loss_curve.png"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["optimizer"] == {"name": "adadelta", "class": "Adadelta", "learning_rate": 1.0, "rho": 0.95,
                                   "epsilon": 1e-7}
    assert len(json.loads((run / "class_map.json").read_text())["classes"]) == 49

    tested = _script("test_frcnn.py", "-p", str(tmp_path / "data" / "test.csv"), "--model", str(run),
                     "--output", str(tmp_path / "test"))
    assert tested.returncode == 0, tested.stderr[-3000:]
    detections = pd.read_csv(tmp_path / "test" / "detections.csv")
    assert list(detections.columns) == ["filepath", "x1", "y1", "x2", "y2", "class_name", "score"]
    assert len(pd.read_csv(tmp_path / "test" / "karyotype.csv")) == 2
    assert len(os.listdir(tmp_path / "test" / "images")) == 2

    measured = _script("measure_map.py", "-p", str(tmp_path / "data" / "test.csv"), "--model", str(run),
                       "--output", str(tmp_path / "measure"), "--json", str(tmp_path / "metrics.json"))
    assert measured.returncode == 0, measured.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"voc", "voc07", "coco"}
    assert 0.0 <= metrics["voc"]["mAP"] <= 1.0
    assert (tmp_path / "measure" / "per_class_precision.png").exists()
    assert "VOC mAP" in measured.stdout
