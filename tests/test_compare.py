"""compare_optimizers.py: the plan, the study loop (budget, failures, resume), the reports, bad flags."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from keras_frcnn.training import comparison
from keras_frcnn.cli.compare import main as compare_main
from keras_frcnn.training.comparison import RunStatus, Study, epochs_within_budget, hyperparameters_text, plan_study, table_row
from keras_frcnn.config import Config
from keras_frcnn.errors import UserError
from keras_frcnn.training.optimizers import optimizer_settings
from keras_frcnn.training.loop import TrainingDiverged, TrainOptions
from model_fixtures import TINY_MODEL_FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--networks", "tiny", *TINY_MODEL_FLAGS]
PAPER = {  # the paper's optimizers with its Keras 2 hyper-parameters
    "adadelta": "lr=1.0 rho=0.95 eps=1e-07",
    "adamax": "lr=0.002 beta_1=0.9 beta_2=0.999 eps=1e-07",
    "rmsprop": "lr=0.001 rho=0.9 eps=1e-07",
    "adagrad": "lr=0.01 eps=1e-07 init_acc=0.0",
}
OUTPUTS = ("comparison.csv", "comparison.md", "comparison.json", "comparison_map.png", "comparison_loss.png",
           "best_run_per_class_precision.png", "study.json", "split.json", "progress.json")


def _files(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


# ----------------------------------------------------------------------------- the plan
def test_dry_run_lists_the_papers_eight_runs_and_writes_nothing(dataset, tmp_path, capsys):
    study = tmp_path / "study"
    before = _files(dataset.parent)
    assert compare_main(["-p", str(dataset), "--output", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    runs = [line.split() for line in out.splitlines() if str(study) in line and line.startswith("  ")]
    assert [(r[0], r[1]) for r in runs] == [(n, o) for n in ("vgg16", "resnet50")
                                            for o in ("adadelta", "adamax", "rmsprop", "adagrad")]
    for line in out.splitlines():
        for name, settings in PAPER.items():
            if line.startswith("  ") and f" {name} " in line:
                assert settings in line, line
                assert "300 x 1000" in line and line.rstrip().endswith("new")
                assert os.path.join(str(study), line.split()[0] + "_" + name) in line
    assert "dry run" in out
    assert not study.exists()
    assert _files(dataset.parent) == before


def test_hyperparameters_are_the_papers():
    for name, text in PAPER.items():
        assert hyperparameters_text(optimizer_settings(name)) == text


def test_epochs_within_budget():
    assert epochs_within_budget(100.0, 10.0, epochs_left=50) == 10
    assert epochs_within_budget(100.0, 10.0, epochs_left=3) == 3
    assert epochs_within_budget(9.0, 10.0, epochs_left=3) == 0
    assert epochs_within_budget(-1.0, 10.0, epochs_left=3) == 0
    assert epochs_within_budget(10.0, 10.0, epochs_left=0) == 0


# ----------------------------------------------------------------------------- the loop, with a fake trainer
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _fake_train(clock, calls, diverge=(), epoch_seconds=10.0, interrupt_at=None):
    """A stand-in for keras_frcnn.training.loop.train (no model): epochs of ``epoch_seconds`` at the rate
    ``options.learning_rate_at`` gives, committed with their train_seconds, stopping as train()
    does after the last epoch its time budget holds; KeyboardInterrupt before epoch ``interrupt_at``."""

    def train(run_dir, *, config, options, class_map, train_records, val_records=(), data_info=None, resume=False,
              print_fn=print):
        state_path = os.path.join(run_dir, "state.json")
        assert resume == os.path.exists(state_path)
        state = json.load(open(state_path)) if resume else {"epoch": 0, "train_seconds": 0.0}
        history = pd.read_csv(os.path.join(run_dir, "history.csv")) if resume else pd.DataFrame(
            columns=["epoch", "loss", "learning_rate", "seconds"])
        calls.append((os.path.basename(run_dir), state["epoch"], options.num_epochs))
        os.makedirs(run_dir, exist_ok=True)
        for epoch in range(state["epoch"] + 1, options.num_epochs + 1):
            if epoch == interrupt_at:
                raise KeyboardInterrupt
            if options.optimizer in diverge and epoch == 2:
                raise TrainingDiverged(f"non-finite loss (nan) at epoch {epoch}, step 1: training stopped")
            rate = options.learning_rate_at(1.0, epoch - 1, state["train_seconds"])
            clock.now += epoch_seconds
            history.loc[len(history)] = [epoch, 1.0 / epoch, rate, epoch_seconds]
            history.to_csv(os.path.join(run_dir, "history.csv"), index=False)
            state = {"epoch": epoch, "best_epoch": epoch, "best_val_mAP": None,
                     "train_seconds": state["train_seconds"] + epoch_seconds}
            json.dump(state, open(state_path, "w"))
            budget = options.time_budget_minutes
            if budget is not None and epochs_within_budget(60 * budget - state["train_seconds"], epoch_seconds, 1) == 0:
                break

    return train


def _specs(folder, optimizers, num_epochs, networks=("tiny",)):
    configs = {network: Config(class_names=("a", "b"), network=network) for network in networks}
    return plan_study(str(folder), list(networks), list(optimizers), configs,
                      TrainOptions(num_epochs=num_epochs, epoch_length=5, verbose=0))


def test_budget_cuts_runs_and_divergence_is_recorded(tmp_path, monkeypatch):
    import keras_frcnn.training.loop

    clock, calls = FakeClock(), []
    monkeypatch.setattr(keras_frcnn.training.loop, "train", _fake_train(clock, calls, diverge=("adagrad",)))
    specs = _specs(tmp_path, ["adamax", "adagrad", "rmsprop"], num_epochs=10)
    # 3 runs x 25 s: each run is one train() call with a 25 s budget: two 10 s epochs fit, a third does not.
    study = Study(str(tmp_path), specs, budget_minutes=3 * 25 / 60, print_fn=lambda line: None, clock=clock)
    statuses = [study.train_run(spec, None, [object()], [], {}) for spec in specs]
    assert [(s.kind, s.epoch) for s in statuses] == [("cut", 2), ("failed", 1), ("cut", 2)]
    assert calls == [("tiny_adamax", 0, 10), ("tiny_adagrad", 0, 10), ("tiny_rmsprop", 0, 10)]
    progress = json.loads((tmp_path / "progress.json").read_text())["runs"]
    assert progress["tiny_adamax"]["wall_seconds"] == pytest.approx(20.0)
    assert progress["tiny_adamax"]["cut_by_budget"] is True
    assert "non-finite loss" in progress["tiny_adagrad"]["failure"]["message"]
    rows = [table_row(spec, status, None) for spec, status in zip(specs, statuses)]
    assert [row["cut_by_budget"] for row in rows] == [True, False, True]
    assert [row["status"] for row in rows] == ["cut by budget", "failed", "cut by budget"]
    assert [row["train_time_s"] for row in rows] == [20.0, 10.0, 20.0]

    # The same command again: nothing trains; without the budget the cut runs resume, the failed one is skipped.
    again = Study(str(tmp_path), specs, budget_minutes=3 * 25 / 60, print_fn=lambda line: None, clock=clock)
    assert [again.status(spec).kind for spec in specs] == ["cut", "failed", "cut"]
    unlimited = Study(str(tmp_path), specs, print_fn=lambda line: None, clock=clock)
    assert [unlimited.status(spec).describe() for spec in specs] == [
        "resume (2/10 epochs done)", "failed at epoch 2 (skipped; --retry-failed to try again)",
        "resume (2/10 epochs done)"]
    calls.clear()
    assert unlimited.train_run(specs[0], None, [object()], [], {}).kind == "done"
    assert calls == [("tiny_adamax", 2, 10)]  # one call for all the epochs left
    retry = Study(str(tmp_path), specs, retry_failed=True, print_fn=lambda line: None, clock=clock)
    assert retry.status(specs[1]).kind == "resume"


def test_a_study_resumed_with_a_larger_budget_follows_the_schedule_of_one_run_with_that_budget(tmp_path, monkeypatch):
    import keras_frcnn.training.loop

    def learning_rates(folder, spec_folder):
        return list(pd.read_csv(os.path.join(folder, spec_folder, "history.csv"))["learning_rate"])

    clock, calls = FakeClock(), []
    options = TrainOptions(num_epochs=100, epoch_length=5, verbose=0, lr_drops=(0.5,))
    configs = {"tiny": Config(class_names=("a", "b"), network="tiny")}
    # Stopped by the user during epoch 3 of a 60 s budget, then resumed with 120 s (two runs: 60 s each).
    stopped = plan_study(str(tmp_path / "resumed"), ["tiny"], ["adamax"], configs, options)
    monkeypatch.setattr(keras_frcnn.training.loop, "train", _fake_train(clock, calls, interrupt_at=3))
    with pytest.raises(KeyboardInterrupt):
        Study(str(tmp_path / "resumed"), stopped, budget_minutes=1.0, clock=clock,
              print_fn=lambda line: None).train_run(stopped[0], None, [object()], [], {})
    monkeypatch.setattr(keras_frcnn.training.loop, "train", _fake_train(clock, calls))
    resumed = Study(str(tmp_path / "resumed"), stopped, budget_minutes=1.0, clock=clock, print_fn=lambda line: None)
    assert resumed.status(stopped[0]).kind == "resume"
    larger = Study(str(tmp_path / "resumed"), stopped, budget_minutes=2.0, clock=clock, print_fn=lambda line: None)
    assert larger.train_run(stopped[0], None, [object()], [], {}).kind == "cut"
    once = plan_study(str(tmp_path / "once"), ["tiny"], ["adamax"], configs, options)
    Study(str(tmp_path / "once"), once, budget_minutes=2.0, clock=clock,
          print_fn=lambda line: None).train_run(once[0], None, [object()], [], {})
    # 120 s: twelve 10 s epochs, the rate / 10 once 60 s (half the budget) are spent: from epoch 7 on.
    expected = [1.0] * 6 + [0.1] * 6
    assert learning_rates(tmp_path / "once", "tiny_adamax") == pytest.approx(expected)
    assert learning_rates(tmp_path / "resumed", "tiny_adamax") == pytest.approx(expected)


def test_bad_input_while_training_stops_the_study(tmp_path, monkeypatch):
    import keras_frcnn.training.loop

    def failing(run_dir, **kwargs):
        raise UserError("no_such.h5: input weights file not found")

    monkeypatch.setattr(keras_frcnn.training.loop, "train", failing)
    specs = _specs(tmp_path, ["adamax", "rmsprop"], num_epochs=2)
    study = Study(str(tmp_path), specs, print_fn=lambda line: None)
    with pytest.raises(UserError, match="input weights file not found"):
        study.train_run(specs[0], None, [object()], [], {})
    assert "failure" not in json.loads((tmp_path / "progress.json").read_text())["runs"]["tiny_adamax"]


# ----------------------------------------------------------------------------- reports from run folders
def _metrics(voc_map, coco_ap):
    per_class = {name: {"ap": voc_map, "precision": 0.5, "recall": 0.5, "n_gt": 2, "n_det": 2} for name in ("a", "b")}
    return {"voc": {"mAP": voc_map, "per_class": per_class, "missing_classes": []}, "voc07": {"mAP": voc_map},
            "coco": {"AP": coco_ap}}


def test_reports_take_their_numbers_from_the_run_folders(tmp_path):
    specs = _specs(tmp_path, ["adamax", "rmsprop"], num_epochs=3, networks=("tiny", "vgg16"))
    values = {"tiny_adamax": (0.25, 0.125), "tiny_rmsprop": (0.5, 0.375), "vgg16_adamax": (0.75, 0.625),
              "vgg16_rmsprop": None}  # the last one has no model yet
    rows = []
    for i, spec in enumerate(specs):
        os.makedirs(spec.folder)
        history = {"epoch": [1, 2, 3], "loss": [4.0 - i, 2.0 - i / 2, 1.5 - i / 3], "seconds": [4.0, 5.0, 6.0 + i]}
        pd.DataFrame(history).to_csv(spec.run.history, index=False)
        json.dump({"epoch": 3, "best_epoch": 2}, open(spec.run.state, "w"))
        metrics = None if values[spec.name] is None else _metrics(*values[spec.name])
        if metrics is not None:
            json.dump(metrics, open(spec.metrics_path, "w"))
        rows.append(table_row(spec, RunStatus("done", 3, 3), metrics))
    study = Study(str(tmp_path), specs, print_fn=lambda line: None)
    eval_set = comparison.eval_set_info("validation", None, [])
    report = study.write_reports(rows, eval_set, {"data": "four images"})

    for name in OUTPUTS[:6]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table.columns) == list(comparison.TABLE_COLUMNS)
    for _, row in table.iterrows():
        spec = next(s for s in specs if s.folder == row["run"])
        if values[spec.name] is None:
            assert pd.isna(row["voc_mAP"]) and pd.isna(row["coco_AP"])
        else:
            metrics = json.load(open(spec.metrics_path))
            assert row["voc_mAP"] == metrics["voc"]["mAP"] and row["coco_AP"] == metrics["coco"]["AP"]
        assert row["train_time_s"] == pd.read_csv(spec.run.history)["seconds"].sum()
        assert row["best_epoch"] == 2 and row["epochs_trained"] == 3 and not row["cut_by_budget"]
        assert row["hyperparameters"] == PAPER[spec.optimizer]
    assert report["best_run"] == os.path.join(str(tmp_path), "vgg16_adamax")
    assert json.loads((tmp_path / "comparison.json").read_text())["runs"][2]["voc_mAP"] == 0.75
    markdown = (tmp_path / "comparison.md").read_text()
    assert "**vgg16 + adamax** (VOC mAP 0.7500)" in markdown
    assert "| tiny | rmsprop | `lr=0.001 rho=0.9 eps=1e-07` | 0.5000 | 0.3750 | 2 | 3/3 |" in markdown


def test_a_rerun_must_use_the_studys_data_and_model_flags(dataset, tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    saved = {"path": str(dataset), "parser": None, "clip": False, "val": None, "val_fraction": 0.2, "seed": 7,
             "classes": None}
    (study / "study.json").write_text(json.dumps({"data": saved}))
    flags = ["-p", str(dataset), "--output", str(study), "--dry-run", *TINY_FLAGS]
    assert compare_main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert "started with seed = 7, not 0" in err and len(err.splitlines()) == 1

    (study / "study.json").unlink()
    run = study / "tiny_adamax"
    run.mkdir()
    config = Config(class_names=("a", "b", "c"), network="tiny", im_size=256).to_dict()
    (run / "config.json").write_text(json.dumps({"model": config, "training": {}}))
    (run / "state.json").write_text(json.dumps({"epoch": 1}))
    assert compare_main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert "tiny_adamax: trained with im_size = 256, not 128" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- bad flags
@pytest.mark.parametrize("flags, message", [
    (["--optimizers", "adamax,nadam"], "unknown optimizer 'nadam'"),
    (["--networks", "alexnet"], "unknown network 'alexnet'"),
    (["--output", "OUT"], "-p/--path is required"),
    (["-p", "missing.csv"], "missing.csv: no such file or directory"),
    (["--num_epochs", "0"], "must be at least 1"),
    (["--budget-minutes", "0"], "must be positive"),
    (["--set", "anchor_scale=[8]"], "unknown config keys: anchor_scale"),
    (["--test", "missing_test.csv"], "missing_test.csv: no such file or directory"),
    (["--distribute", "multiworker"], "--distribute multiworker is not supported for a study"),
])
def test_bad_flags_give_one_line(flags, message, dataset, tmp_path, capsys):
    if "-p" not in flags and "--output" not in flags:
        flags = ["-p", str(dataset)] + flags
    flags = [str(tmp_path / "study") if f == "OUT" else f for f in flags]
    output = [] if "--output" in flags else ["--output", str(tmp_path / "study")]
    code = compare_main(flags + output + ["--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "study").exists()


def test_nothing_to_evaluate_stops_a_run_and_is_a_warning_in_a_dry_run(dataset, tmp_path, capsys):
    flags = ["-p", str(dataset), "--val-fraction", "0", "--output", str(tmp_path / "study")]
    assert compare_main(flags + ["--dry-run"]) == 0
    assert "warning: nothing to evaluate on" in capsys.readouterr().err
    assert compare_main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing to evaluate on" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "study").exists()


def test_the_script_reports_a_bad_flag_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, os.path.join(REPO, "compare_optimizers.py"), "--optimizers", "nadam"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unknown optimizer 'nadam'" in errors[0] and "Traceback" not in done.stderr
    assert done.stdout == ""


# ----------------------------------------------------------------------------- a real tiny study
@pytest.mark.slow
def test_tiny_study_end_to_end_then_rerun(dataset, tmp_path, capsys):
    study = tmp_path / "study"
    flags = ["-p", str(dataset), "--output", str(study), "--optimizers", "adamax,rmsprop", "--num_epochs", "1",
             "--epoch_length", "2", "--val-fraction", "0.25", "--quiet", *TINY_FLAGS]
    assert compare_main(flags) == 0
    out = capsys.readouterr().out
    assert "[1/2] tiny_adamax: new" in out and "[2/2] tiny_rmsprop: new" in out and "epoch 1:" in out
    assert "tiny_rmsprop: done: 1/1 epochs" in out and "VOC mAP" in out
    for name in OUTPUTS:
        assert (study / name).stat().st_size > 0, name
    assert not [name for name in _files(study) if ".tmp" in name]

    table = pd.read_csv(study / "comparison.csv")
    assert list(table["optimizer"]) == ["adamax", "rmsprop"] and set(table["backbone"]) == {"tiny"}
    split = json.loads((study / "split.json").read_text())
    for _, row in table.iterrows():
        run = study / f"tiny_{row['optimizer']}"
        assert row["run"] == str(run)
        metrics = json.loads((run / "metrics.json").read_text())
        assert set(metrics) == {"voc", "voc07", "coco", "settings"}
        assert row["voc_mAP"] == metrics["voc"]["mAP"] and row["coco_AP"] == metrics["coco"]["AP"]
        state = json.loads((run / "state.json").read_text())
        history = pd.read_csv(run / "history.csv")
        assert row["best_epoch"] == state["best_epoch"] and row["epochs_trained"] == state["epoch"] == 1
        assert row["train_time_s"] == pytest.approx(history["seconds"].sum())
        # the evaluation on the validation set is the one training did for the best epoch
        assert metrics["voc"]["mAP"] == pytest.approx(history["val_mAP"].iloc[state["best_epoch"] - 1], abs=1e-6)
        assert json.loads((run / "split.json").read_text())["val"] == split["val"]  # the study's split
        config = json.loads((run / "config.json").read_text())
        assert config["optimizer"] == {"name": row["optimizer"], **optimizer_settings(row["optimizer"])}
        assert config["data"]["path"] == str(dataset) and config["model"]["network"] == "tiny"
        assert not row["cut_by_budget"] and row["status"] == "done"
    report = json.loads((study / "comparison.json").read_text())
    assert [r["voc_mAP"] for r in report["runs"]] == list(table["voc_mAP"])

    # The same command again: both runs are done, nothing trains and the metrics are reused...
    history_before = (study / "tiny_adamax" / "history.csv").read_text()
    metrics_path = study / "tiny_rmsprop" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["voc"]["mAP"] = 0.875  # ...so the table shows what the run folder holds
    metrics_path.write_text(json.dumps(metrics))
    assert compare_main(flags) == 0
    out = capsys.readouterr().out
    assert "tiny_adamax: done: 1/1 epochs" in out and "tiny_rmsprop: done: 1/1 epochs" in out
    assert "nothing to train" in out and "epoch 1:" not in out
    assert (study / "tiny_adamax" / "history.csv").read_text() == history_before
    table = pd.read_csv(study / "comparison.csv")
    assert table["voc_mAP"].iloc[1] == 0.875
    assert json.loads((study / "comparison.json").read_text())["best_run"] == str(study / "tiny_rmsprop")

    # A longer schedule: the plan resumes both; with a spent budget, they are cut without training.
    assert compare_main([*flags, "--num_epochs", "2", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("resume (1/2 epochs done)") == 2
    assert compare_main([*flags, "--num_epochs", "3", "--budget-minutes", "0.001"]) == 0
    out = capsys.readouterr().out
    assert "epoch 2:" not in out and out.count("cut by budget: 1/3 epochs") == 2
    table = pd.read_csv(study / "comparison.csv")
    assert list(table["cut_by_budget"]) == [True, True] and list(table["epochs_trained"]) == [1, 1]
    assert "| yes | cut by budget |" in (study / "comparison.md").read_text()


def test_dry_run_with_val_and_test_files(dataset, tmp_path, capsys):
    flags = ["-p", str(dataset), "--val", str(dataset), "--test", str(dataset), "--output", str(tmp_path / "study"),
             "--optimizers", "adam", "--budget-minutes", "10", "--dry-run", *TINY_FLAGS]
    assert compare_main(flags) == 0
    out = capsys.readouterr().out
    assert ("1 runs (tiny x adam) on 4 training / 4 validation images, 3 classes, "
            "test set for the comparison (4 images)") in out
    assert "budget 10 min (10.00 min per run)" in out
    assert not (tmp_path / "study").exists()
