"""The accuracy benchmark scripts: the sample grouping, their errors, and one tiny end-to-end run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "benchmarks")


def _run(script, *flags, timeout=600):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), *flags], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_cells_of_one_sample_share_a_group():
    sys.path.insert(0, BENCHMARKS)
    try:
        from accuracy_bioimlab import sample_of
    finally:
        sys.path.remove(BENCHMARKS)
    assert sample_of("/x/original_104a.json") == sample_of("original_104b.json") == "original_104"
    assert sample_of("original_10.json") == "original_10" != sample_of("original_104.json")


def test_missing_data_folder_is_one_clear_line(tmp_path):
    result = _run("accuracy_bioimlab.py", "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("no such folder; pass --data with the BioImLab LabelMe JSON files "
                                          "(e.g. ../shared/data/bioimlab/json)")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_synthetic_benchmark_runs_end_to_end_and_prints_its_json(tmp_path):
    result = _run("accuracy_synthetic.py", "--output", str(tmp_path / "bench"), "--budget-minutes", "0.01",
                  "--train-images", "4", "--val-images", "1", "--test-images", "2", "--epoch-length", "2",
                  "--precision", "float32", "--json", str(tmp_path / "result.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "result.json").read_text())
    assert printed["training"]["epochs"] == 1 and printed["training"]["iterations"] == 2  # the budget stopped it
    assert printed["data"] == {"train_images": 3, "val_images": 1, "test_images": 2, "train_seed": 0, "test_seed": 1,
                               "test_boxes": printed["data"]["test_boxes"]} and printed["data"]["test_boxes"] > 80
    for mode in ("per_class_nms", "optimal_assignment"):
        test = printed["test"][mode]
        assert 0.0 <= test["voc_mAP"] <= 1.0 and len(test["per_class"]) == 49
    assert printed["goal"] == {"voc_mAP_at_least": 0.9, "met": False}


def _labelme_spreads(folder, count):
    """``count`` synthetic Q-banded spreads as LabelMe files of one class ``chr`` (sample names like BioImLab's)."""
    from keras_frcnn.synthetic.generate import generate_dataset

    generate_dataset(folder / "synthetic", count, 0, mode="metaphase", style="qband", seed=3)
    rows = [line.split(",") for line in (folder / "synthetic" / "train.csv").read_text().splitlines()[1:]]
    for index in range(count):
        image = f"synthetic/images/train_{index:05d}.png"
        boxes = np.array([[float(v) for v in row[1:5]] for row in rows if row[0] == f"images/train_{index:05d}.png"])
        shapes = [{"label": "chr", "shape_type": "polygon", "points": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]}
                  for x1, y1, x2, y2 in boxes]
        (folder / f"original_{index + 1}.json").write_text(json.dumps(
            {"shapes": shapes, "imagePath": image, "imageData": None, "imageWidth": 768, "imageHeight": 576}))


@pytest.mark.slow
def test_the_spread_benchmark_fine_tunes_the_shipped_weights(tmp_path):
    """The default configuration end to end on four LabelMe spreads: the shipped weights and their
    anchors, bfloat16 or float32 by CPU, cosine schedule; the JSON says so."""
    _labelme_spreads(tmp_path, 4)
    result = _run("accuracy_bioimlab.py", "--data", str(tmp_path), "--output", str(tmp_path / "bench"),
                  "--budget-minutes", "0.01", "--epoch-length", "2", "--val-fraction", "0.25",
                  "--json", str(tmp_path / "result.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "initialised from the shipped 'chromosomes' weights: 14 weights of 7 layers" in result.stderr
    printed = json.loads(result.stdout)
    from keras_frcnn.pretrained import CHROMOSOMES, read_manifest

    manifest = read_manifest(CHROMOSOMES)
    assert printed["model"]["weights"] == "chromosomes"
    assert printed["model"]["anchor_scales"] == manifest["anchor_scales"]
    assert printed["training"]["learning_rate_schedule"] == "cosine" and printed["training"]["warmup"] == 0.05
    assert printed["data"]["train_images"] == 3 and printed["data"]["val_images"] == 1
    assert [point["epoch"] for point in printed["validation_curve"]] == [1]  # the budget's last epoch is scored
    assert 0.0 <= printed["validation"]["AP50"] <= 1.0
    # spreads hold ~46 chromosomes: 1,000 test proposals of 6,000; the first two shipped blocks stay frozen
    assert printed["model"]["test_proposals"] == [6000, 1000] and printed["model"]["freeze_blocks"] == 2
    from keras_frcnn.pretrained import read_shipped
    from keras_frcnn.training.runs import load_model

    shipped, _ = read_shipped(CHROMOSOMES)
    trained = {f"{layer.name}/{weight.name}": weight.numpy()
               for layer in load_model(str(tmp_path / "bench" / "run")).features.layers for weight in layer.weights}
    for name in ("block1_conv1/kernel", "block2_conv1/bias"):
        np.testing.assert_array_equal(trained[name], shipped[name])
    assert not np.array_equal(trained["block3_conv1/kernel"], shipped["block3_conv1/kernel"])  # trained on


def _benchmark_module(name):
    sys.path.insert(0, BENCHMARKS)
    try:
        return __import__(name)
    finally:
        sys.path.remove(BENCHMARKS)


def test_the_karyogram_benchmark_keeps_every_source_karyogram_on_one_side():

    from keras_frcnn.annotations.records import ImageRecord
    from keras_frcnn.annotations.sources import source_of

    karyograms = _benchmark_module("accuracy_karyograms")
    names = [f"/d/images/karyotype-{n}_bmp_jpg.rf.{n:016x}{copy:016x}.jpg" for n in range(60) for copy in range(n % 9 + 1)]
    records = [ImageRecord(name, np.zeros((0, 4)), ()) for name in names]
    for seed in range(3):
        train, test = karyograms.split_by_source(records, 0.2, seed)
        assert not {source_of(r.path) for r in train} & {source_of(r.path) for r in test}
        assert len({source_of(r.path) for r in test}) == 12 and len(train) + len(test) == len(records)
        first = karyograms.one_per_source(test)
        assert len(first) == 12 and len({source_of(r.path) for r in first}) == 12


def test_synthetic_boxes_get_the_real_labels_slack_inside_the_image():

    karyograms = _benchmark_module("accuracy_karyograms")
    boxes = np.array([[10, 10, 20, 50], [0, 1, 5, 414]], np.float32)
    np.testing.assert_allclose(karyograms.with_label_slack(boxes, 416, 416), [[9, 7, 21, 53], [0, 0, 6, 416]])
    np.testing.assert_allclose(karyograms.with_label_slack(boxes, 832, 832), [[8, 4, 22, 56], [0, 0, 7, 420]])


@pytest.mark.parametrize("script", ["accuracy_karyograms.py", "accuracy_spreads.py"])
def test_the_real_data_benchmarks_need_their_folder(script, tmp_path):
    result = _run(script, "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'nowhere'}: no such folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_folder_benchmark_times_four_ways_and_reports_their_ratios(tmp_path):
    out = tmp_path / "folder.json"
    result = _run("bench_folder.py", "--networks", "tiny", "--images", "4", "--json", str(out), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cudart" not in result.stderr  # TensorFlow started quietly
    report = json.loads(out.read_text())
    assert report == json.loads(result.stdout)
    tiny = report["networks"]["tiny"]
    ways = ("one_at_a_time", "pipeline_batch_1", "pipeline_batch_2", "model_only")
    assert set(tiny["images_per_second"]) == set(ways) and report["images"] == 4
    rates = tiny["images_per_second"]
    for way in ways:  # images / median seconds, each way's ratio to one at a time and share of the model alone
        assert rates[way] == pytest.approx(4 / tiny["seconds"][way][0], rel=0.02)
        assert tiny["speedup_over_one_at_a_time"][way] == round(rates[way] / rates["one_at_a_time"], 3)
        assert tiny["share_of_model_only"][way] == round(rates[way] / rates["model_only"], 3)
    assert report["machine"]["cpu"]["cores"] >= 1 and report["source_size"] == [768, 576]


def test_iterator_end_benchmark_knows_the_autotuning_ticks_and_counts_waits(tmp_path):
    sys.path.insert(0, BENCHMARKS)
    try:
        from tfdata_iterator_end import autotune_ticks
    finally:
        sys.path.remove(BENCHMARKS)
    # periods 10, 20, 40 ... ms, doubling to 60 s: wake-ups at 10 ms x (2^k - 1), then every 60 s
    assert autotune_ticks(20.0) == [0.01, 0.03, 0.07, 0.15, 0.31, 0.63, 1.27, 2.55, 5.11, 10.23, 20.47]
    assert autotune_ticks(100.0)[-3:] == [40.95, 81.91, 141.91]
    result = _run("tfdata_iterator_end.py", "--elements", "3", "--map-size", "8", "--repeats", "2", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    for way in ("autotune_on", "autotune_off"):
        assert report["summary"][way]["passes"] == len(report["passes"][way]) == 2
        assert all(p["ended_s"] >= p["iterated_s"] and p["tick_after_s"] >= p["iterated_s"] for p in report["passes"][way])


def test_budget_curve_reads_runs_by_budget_and_draws_them(tmp_path):
    def run(name, budget, ap50, cpu="Test CPU"):
        result = {"budget_minutes": budget, "machine": {"cpu": {"model": cpu}},
                  "training": {"iterations": budget * 10}, "validation": {"AP50": ap50, "coco_AP": ap50 / 2},
                  "validation_curve": [{"epoch": 1, "minutes": budget / 2, "voc_AP50": ap50 / 2, "coco_AP": 0.1}]}
        (tmp_path / name).write_text(json.dumps(result))
        return str(tmp_path / name)

    old = [run("old30.json", 30, 0.8), run("old10.json", 10, 0.5)]
    new = [run("new10.json", 10, 0.85)]
    result = _run("plot_budget_curve.py", "--config", "before", *old, "--config", "after", *new,
                  "--output", str(tmp_path / "curve.png"))
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert [p["budget_minutes"] for p in printed["before"]["points"]] == [10, 30]
    assert [p["AP50"] for p in printed["before"]["points"]] == [0.5, 0.8]
    assert printed["after"] == {"cpu": "Test CPU", "points": [
        {"budget_minutes": 10, "AP50": 0.85, "coco_AP": 0.425, "iterations": 100}]}
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stderr == ""
    elsewhere = _run("plot_budget_curve.py", "--config", "before", *old, "--config", "after",
                     run("new20.json", 20, 0.9, cpu="Other CPU"), "--output", str(tmp_path / "mixed.png"))
    assert elsewhere.returncode == 0 and "warning: the runs come from 2 CPUs" in elsewhere.stderr
