"""The epoch hooks on their own: order, the non-finite-loss stop, the non-chief worker, the time budget."""

import math

from keras_frcnn.training.hooks import EpochHooks, EpochTime, Hook, TrainingState, epochs_within_budget
from keras_frcnn.training.runs import RunFolder


class Recorder(Hook):
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def begin_epoch(self, training):
        self.calls.append(("begin", self.name))

    def end_epoch(self, training, epoch):
        self.calls.append(("end", self.name, epoch.number, epoch.row["loss"]))


class Options:
    time_budget_minutes = None
    num_epochs = 10


def hooks_with(tmp_path, calls, chief=True, options=Options()):
    training = TrainingState(RunFolder(str(tmp_path / "run")), options, {}, [], calls.append)
    return EpochHooks(training, [Recorder("a", calls), Recorder("b", calls)], chief=chief, images_per_epoch=8)


LOGS = {"loss": 1.5, "rpn_cls": 0.5, "rpn_reg": 0.25, "head_cls": 0.5, "head_reg": 0.25}


def test_hooks_run_in_order_and_see_the_epoch(tmp_path):
    calls = []
    hooks = hooks_with(tmp_path, calls)
    hooks.begin_epoch(model=None)
    hooks.commit(model=None, epoch=2, logs=dict(LOGS))
    assert calls == [("begin", "a"), ("begin", "b"), ("end", "a", 3, 1.5), ("end", "b", 3, 1.5)]
    assert hooks.images_seen == 8 and not hooks.stopped


def test_a_non_finite_loss_stops_before_any_hook_writes(tmp_path):
    calls = []
    hooks = hooks_with(tmp_path, calls)
    assert hooks.check_step(0.7, 0) and not hooks.check_step(math.nan, 4)
    assert hooks.failure == "non-finite loss (nan) at epoch 1, step 5" and hooks.stopped

    class Model:
        stop_training = False

    calls.clear()
    hooks = hooks_with(tmp_path, calls)
    model = Model()
    hooks.commit(model, epoch=0, logs={**LOGS, "head_reg": math.inf})
    assert calls == [] and model.stop_training and hooks.failure == "non-finite loss at the end of epoch 1"
    assert not (tmp_path / "run").exists()


def test_a_worker_that_is_not_the_chief_keeps_count_and_writes_nothing(tmp_path):
    calls = []
    hooks = hooks_with(tmp_path, calls, chief=False)
    hooks.begin_epoch(model=None)
    hooks.commit(model=None, epoch=0, logs=dict(LOGS))
    assert calls == [("begin", "a"), ("begin", "b")]
    assert hooks.training.state == {"epoch": 1, "images_seen": 8} and not (tmp_path / "run").exists()


def test_the_time_budget_stops_when_another_epoch_would_not_fit(tmp_path):
    class Budget(Options):
        time_budget_minutes = 1.0  # 60 s

    training = TrainingState(RunFolder(str(tmp_path)), Budget(), {"train_seconds": 30.0}, [], print)
    training.epoch_start -= 20.0  # this epoch took 20 s: 50 s spent, 10 s left, less than an epoch
    row = {}
    EpochTime().end_epoch(training, type("Epoch", (), {"row": row})())
    assert training.out_of_time and 20.0 <= row["seconds"] < 21.0 and 50.0 <= training.state["train_seconds"] < 51.0
    assert epochs_within_budget(40.0, 20.0, epochs_left=5) == 2
