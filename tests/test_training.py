"""Training runs: run folder contents, exact resume, kill -9, non-finite loss, bad flags."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from keras_frcnn.annotations import read_annotations
from keras_frcnn.cli.train import main as train_main
from keras_frcnn.errors import UserError
from keras_frcnn.training.loop import TrainOptions, split_records, train
from model_fixtures import TINY_MODEL_FLAGS, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--network", "tiny", *TINY_MODEL_FLAGS]


def _run(dataset, run_dir, num_epochs, resume=False):
    data = read_annotations(dataset)
    train_records, val_records = split_records(data.records, 0.25, seed=0)
    config = tiny_config(class_names=data.class_map.names)
    options = TrainOptions(optimizer="adam", num_epochs=num_epochs, epoch_length=3, verbose=0)
    return train(str(run_dir), config=config, options=options, class_map=data.class_map, train_records=train_records,
                 val_records=val_records, resume=resume, print_fn=lambda line: None)


@pytest.fixture
def deterministic_ops():
    """Bit-reproducible kernels (oneDNN's threaded reductions otherwise differ run to run at 1e-6)."""
    from tensorflow.python.framework import config as framework_config

    framework_config.enable_op_determinism()
    yield
    framework_config.disable_op_determinism()


def test_run_folder_and_exact_resume(dataset, tmp_path, deterministic_ops):
    straight = _run(dataset, tmp_path / "straight", num_epochs=2)
    _run(dataset, tmp_path / "resumed", num_epochs=1)
    resumed = _run(dataset, tmp_path / "resumed", num_epochs=2, resume=True)

    files = set(os.listdir(tmp_path / "straight"))
    assert {"config.json", "class_map.json", "split.json", "history.csv", "state.json", "best.keras", "last.keras",
            "loss_curve.png", "logs", "checkpoints"} <= files
    assert not [name for name in files if ".tmp" in name]
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["optimizer"]["name"] == "adam" and config["optimizer"]["learning_rate"] == 0.001
    history = pd.read_csv(tmp_path / "straight" / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg", "val_mAP", "val_coco_AP"} <= set(history.columns)
    pd.testing.assert_frame_equal(straight.history.drop(columns="seconds"), resumed.history.drop(columns="seconds"),
                                  rtol=1e-4)

    a = keras.models.load_model(tmp_path / "straight" / "last.keras")
    b = keras.models.load_model(tmp_path / "resumed" / "last.keras")
    assert int(a.optimizer.iterations) == int(b.optimizer.iterations) == 6
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-4, atol=1e-5, err_msg=wa.path)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    import tensorflow as tf

    from keras_frcnn.model.faster_rcnn import FasterRCNN

    _run(dataset, tmp_path / "run", num_epochs=1)
    state_before = (tmp_path / "run" / "state.json").read_text()
    original = FasterRCNN._losses_and_features  # what the training step computes

    def exploding(self, data, training):
        terms, features = original(self, data, training)
        terms["loss"] = terms["loss"] * tf.constant(float("nan"))
        return terms, features

    monkeypatch.setattr(FasterRCNN, "_losses_and_features", exploding)
    with pytest.raises(UserError, match=r"non-finite loss .* at epoch 2, step 1.*last good checkpoint \(epoch 1\)"):
        _run(dataset, tmp_path / "run", num_epochs=3, resume=True)
    assert (tmp_path / "run" / "state.json").read_text() == state_before
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 1
    monkeypatch.undo()
    keras.models.load_model(tmp_path / "run" / "last.keras")  # still a whole model


def test_split_is_seeded_and_grouped():
    from keras_frcnn.annotations.records import ImageRecord

    records = [ImageRecord(f"original_{n}{s}.json", np.zeros((0, 4)), ()) for n in range(10) for s in "ab"]
    group = lambda path: path.split("_")[1].rstrip("ab.json")  # noqa: E731
    train_a, val_a = split_records(records, 0.3, seed=5, group_of=group)
    train_b, val_b = split_records(records, 0.3, seed=5, group_of=group)
    assert [r.path for r in val_a] == [r.path for r in val_b] and len(val_a) == 6
    assert not {group(r.path) for r in train_a} & {group(r.path) for r in val_a}
    assert [r.path for r in split_records(records, 0.3, seed=6, group_of=group)[1]] != [r.path for r in val_a]


@pytest.mark.parametrize("flags, message", [
    (["-p", "missing.csv"], "missing.csv: no such file or directory"),
    (["--resume", "--output", "nowhere"], "not found; is nowhere a run folder"),
    (["--network", "alexnet"], "invalid choice: 'alexnet'"),
    (["--optimizer", "nadam"], "invalid choice: 'nadam'"),
    (["--num_epochs", "0", "-p", "DATASET"], "at least 1"),
    (["--set", "anchor_scale=[8]", "-p", "DATASET"], "unknown config keys: anchor_scale"),
    (["--weights", "no_such_weights.h5", "-p", "DATASET"], "no_such_weights.h5: backbone weights file not found"),
])
def test_bad_flags_give_one_line(flags, message, dataset, tmp_path, capsys):
    flags = [str(dataset) if f == "DATASET" else f for f in flags]
    code = train_main(flags + ["--output", str(tmp_path / "run")] if "--output" not in flags else flags)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume(dataset, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, os.path.join(REPO, "train_frcnn.py"), "-p", str(dataset), "--output", str(run),
               "--epoch_length", "300", "--num_epochs", "2", "--optimizer", "adam", "--quiet", *TINY_FLAGS]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (run / "state.json").exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert (run / "state.json").exists(), "the first epoch never finished"
        time.sleep(1.0)  # inside epoch 2 (an epoch of 300 steps takes several seconds)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1
    done = subprocess.run([sys.executable, os.path.join(REPO, "train_frcnn.py"), "--resume", "--output", str(run),
                           "--quiet"], env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert json.loads((run / "state.json").read_text())["iterations"] == 600
    assert sorted(os.listdir(run / "checkpoints")) == ["epoch_0002.keras"]


def test_relative_path_run_resumes_from_another_folder(dataset, tmp_path, monkeypatch, capsys):
    """The saved split holds absolute paths, so --resume works wherever it is run from."""
    monkeypatch.chdir(dataset.parent)
    flags = ["-p", "train.csv", "--output", str(tmp_path / "run"), "--num_epochs", "1", "--epoch_length", "2",
             "--optimizer", "adam", "--quiet", *TINY_FLAGS]
    assert train_main(flags) == 0, capsys.readouterr().err
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert all(os.path.isabs(path) for path in split["train"] + split["val"])
    monkeypatch.chdir(tmp_path)
    assert train_main(["--resume", "--output", str(tmp_path / "run"), "--num_epochs", "2", "--quiet"]) == 0, \
        capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "run" / "history.csv")["epoch"]) == [1, 2]


def test_learning_rate_drops_after_fractions_of_epochs_or_budget():
    options = TrainOptions(num_epochs=10, lr_drops=(0.5, 0.8), lr_drop_factor=0.1)
    assert [options.learning_rate_at(1.0, epoch, 0.0) for epoch in (0, 4, 5, 7, 8, 9)] == \
        pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    budget = TrainOptions(num_epochs=100, time_budget_minutes=10, lr_drops=[0.75])  # a list, as read from JSON
    assert budget.lr_drops == (0.75,)
    assert budget.learning_rate_at(2e-3, 1, 60 * 7.4) == pytest.approx(2e-3)  # 7.4 of 10 min, epoch 1 of 100
    assert budget.learning_rate_at(2e-3, 1, 60 * 7.5) == pytest.approx(2e-4)  # 75% of the budget spent


def test_cosine_schedule_and_warm_up():
    cosine = TrainOptions(num_epochs=10, lr_schedule="cosine")
    assert [cosine.learning_rate_at(1.0, epochs, 0.0) for epochs in (0, 2.5, 5, 10, 12)] == \
        pytest.approx([1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5, 0.0, 0.0])
    budget = TrainOptions(num_epochs=1000, time_budget_minutes=10, lr_schedule="cosine")
    assert budget.learning_rate_at(2.0, 1, 60 * 5) == pytest.approx(1.0)  # half the budget spent
    warm = TrainOptions(num_epochs=10, lr_schedule="cosine", warmup=0.1)
    # progress 0 -> 1% of the rate; 0.05 -> half-way up the ramp (0.505) times the cosine there
    assert warm.learning_rate_at(1.0, 0, 0.0) == pytest.approx(0.01)
    assert warm.learning_rate_at(1.0, 0.5, 0.0) == pytest.approx(0.505 * 0.5 * (1 + np.cos(np.pi * 0.05)))
    assert warm.learning_rate_at(1.0, 1, 0.0) == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.1)))
    step_warm = TrainOptions(num_epochs=10, lr_drops=(0.5,), warmup=0.2)
    assert [step_warm.learning_rate_at(1.0, e, 0.0) for e in (1, 2, 5)] == pytest.approx([0.01 + 0.99 * 0.5, 1.0, 0.1])


@pytest.mark.parametrize("changes, message", [
    (dict(time_budget_minutes=0), "^time_budget_minutes must be positive"),  # the library's words
    (dict(time_budget_minutes=5, distribute="multiworker"), "does not work with distribute multiworker"),
    (dict(lr_drops=(1.5,)), "^lr_drops takes fractions"),
    (dict(lr_schedule="linear"), "^lr_schedule must be one of step, cosine, not 'linear'"),
    (dict(lr_schedule="cosine", lr_drops=(0.5,)), "^lr_schedule cosine has no drops"),
    (dict(warmup=1.0), "^warmup takes a fraction"),
    (dict(validate_every=0), "^validate_every must be at least 1"),
])
def test_bad_schedule_options(changes, message):
    with pytest.raises(UserError, match=message):
        TrainOptions(**changes).validate()


def test_schedule_and_time_budget_in_a_run(dataset, tmp_path):
    data = read_annotations(dataset)
    config = tiny_config(class_names=data.class_map.names)

    def run(name, **changes):
        options = TrainOptions(optimizer="adam", epoch_length=2, verbose=0, **changes)
        return train(str(tmp_path / name), config=config, options=options, class_map=data.class_map,
                     train_records=data.records, print_fn=lambda line: None)

    dropped = run("drop", num_epochs=2, lr_drops=(0.5,), lr_drop_factor=0.1)
    assert list(dropped.history["learning_rate"]) == pytest.approx([1e-3, 1e-4])
    # A budget far shorter than an epoch: the first epoch is committed, then training stops.
    budgeted = run("budget", num_epochs=50, time_budget_minutes=1e-4)
    assert list(budgeted.history["epoch"]) == [1]
    state = json.loads((tmp_path / "budget" / "state.json").read_text())
    assert state["epoch"] == 1 and state["train_seconds"] == pytest.approx(budgeted.history["seconds"][0], abs=0.01)


def test_rate_per_step_and_validation_every_other_epoch(dataset, tmp_path):
    """The cosine rate is set before every step (an epoch's row records its last step's), and with
    validate_every 2 the epochs 2 and 3 (the last) are scored, epoch 1 is not and cannot be best."""
    data = read_annotations(dataset)
    train_records, val_records = split_records(data.records, 0.25, seed=0)
    config = tiny_config(class_names=data.class_map.names)
    options = TrainOptions(optimizer="adam", num_epochs=3, epoch_length=4, verbose=0, lr_schedule="cosine",
                           validate_every=2)
    result = train(str(tmp_path / "run"), config=config, options=options, class_map=data.class_map,
                   train_records=train_records, val_records=val_records, print_fn=lambda line: None)
    history = result.history
    # the last step of epoch e (1-based) starts at (e - 1) + 3/4 epochs of 3
    expected = [1e-3 * 0.5 * (1 + np.cos(np.pi * (e - 0.25) / 3)) for e in (1, 2, 3)]
    assert list(history["learning_rate"]) == pytest.approx(expected, rel=1e-5)
    assert history["val_mAP"].isna().tolist() == [True, False, False]
    assert result.best_epoch in (2, 3)
    on_time = TrainOptions(optimizer="adam", num_epochs=50, epoch_length=2, verbose=0, validate_every=10,
                           time_budget_minutes=1e-4)
    budgeted = train(str(tmp_path / "budget"), config=config, options=on_time, class_map=data.class_map,
                     train_records=train_records, val_records=val_records, print_fn=lambda line: None)
    # the budget holds no second epoch: the first is the last, so it is scored
    assert list(budgeted.history["epoch"]) == [1] and not budgeted.history["val_mAP"].isna()[0]
