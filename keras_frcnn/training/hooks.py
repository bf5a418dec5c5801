"""The start and end of every training epoch, one duty per hook (the shape of detectron2's hooks).

:class:`EpochHooks` runs a list of :class:`Hook` objects for both training loops: ``fit`` reaches
it through :attr:`EpochHooks.callback`, the distributed loop calls :meth:`EpochHooks.begin_epoch`,
:meth:`EpochHooks.begin_step`, :meth:`EpochHooks.check_step` and :meth:`EpochHooks.commit`
itself. :func:`standard_hooks` is the list ``train()`` uses, in the commit order of
:mod:`keras_frcnn.training.loop`:

``LearningRate`` (set before every step, recorded at the end) -> ``Validation`` -> ``EpochTime``
(and the time budget) -> ``Checkpoint`` (checkpoint, history, best, ``state.json``, last,
pruning) -> ``LossPlot`` -> ``ProgressLine``.

A non-finite loss stops training before any hook writes. Only the chief runs the hooks' end of
epoch; other workers keep the epoch count and the state in step without touching the run.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from keras_frcnn.atomic import atomic_path, link_or_copy, write_json, write_text
from keras_frcnn.model.terms import LOSS_TERMS, SKIPPED_STEPS
from keras_frcnn.progress import format_duration
from keras_frcnn.training.runs import RunFolder

HISTORY_COLUMNS = ("epoch",) + LOSS_TERMS + ("val_mAP", "val_coco_AP", "learning_rate", "seconds", SKIPPED_STEPS)


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def numpy_value(value) -> np.ndarray:
    """A variable's (or tensor's) value as NumPy, also for a distributed (mirrored) variable."""
    import tensorflow as tf

    value = getattr(value, "value", value)  # keras.Variable -> its tf.Variable (mirrored under a strategy)
    return np.asarray(tf.convert_to_tensor(value))


def epochs_within_budget(remaining_seconds: float, epoch_seconds: float, epochs_left: int) -> int:
    """How many more epochs of ``epoch_seconds`` fit in ``remaining_seconds`` (at most ``epochs_left``)."""
    if epoch_seconds <= 0:
        return epochs_left
    return max(0, min(epochs_left, int(remaining_seconds // epoch_seconds)))


@dataclass
class Epoch:
    """The epoch being committed: its number (1-based), its history row and Keras' logs."""

    number: int
    row: dict
    logs: dict
    validation_skipped: bool = False  # validation data exist but this epoch was not scored (validate_every)


@dataclass
class TrainingState:
    """What the hooks share: the run, the model, the committed state (``state.json``'s contents),
    the history rows, and the flags that stop training."""

    run: RunFolder
    options: object  # keras_frcnn.training.loop.TrainOptions
    state: dict
    rows: list[dict]
    print: Callable[[str], None]
    model: object = None
    epoch_start: float = field(default_factory=time.perf_counter)
    out_of_time: bool = False  # the time budget has no room for another epoch
    failure: str | None = None  # why training stopped on a non-finite loss


class Hook:
    """One duty. ``begin_epoch`` and ``begin_step`` run on every worker; ``end_epoch`` on the chief only."""

    def begin_epoch(self, training: TrainingState) -> None:
        pass

    def begin_step(self, training: TrainingState, step: int) -> None:
        """Before step ``step`` (0-based) of the epoch."""

    def end_epoch(self, training: TrainingState, epoch: Epoch) -> None:
        pass


class LearningRate(Hook):
    """Sets the learning rate before every step (a function of the committed state and the time
    and steps since, so a resumed run continues the schedule) and records the epoch's last rate in
    the history."""

    def __init__(self, base_rate: float):
        self.base_rate = base_rate

    def begin_step(self, training, step):
        options, state = training.options, training.state
        seconds = state.get("train_seconds", 0.0) + time.perf_counter() - training.epoch_start
        rate = options.learning_rate_at(self.base_rate, int(state.get("epoch", 0)) + step / options.epoch_length,
                                        seconds)
        training.model.optimizer.learning_rate.assign(rate)

    def end_epoch(self, training, epoch):
        epoch.row["learning_rate"] = float(numpy_value(training.model.optimizer.learning_rate))


class Validation(Hook):
    """VOC mAP and COCO AP of the model on the validation records (None without any), every
    ``options.validate_every`` epochs and at the last: the last of the epochs asked for, or the
    last the time budget holds (when what is left of it is shorter than this epoch so far)."""

    def __init__(self, records: Sequence):
        self.records = list(records)
        self._detector = None

    def end_epoch(self, training, epoch):
        if self.records and not self._due(training, epoch.number):
            epoch.validation_skipped = True
            epoch.row.update(val_mAP=None, val_coco_AP=None)
            return
        scores = self.scores(training.model)
        epoch.row.update(scores)
        epoch.logs.update({k: v for k, v in scores.items() if v is not None})

    @staticmethod
    def _due(training, number: int) -> bool:
        options = training.options
        if number % options.validate_every == 0 or number >= options.num_epochs:
            return True
        if options.time_budget_minutes is None:
            return False
        epoch_seconds = time.perf_counter() - training.epoch_start
        left = 60.0 * options.time_budget_minutes - training.state.get("train_seconds", 0.0) - epoch_seconds
        return epochs_within_budget(left, epoch_seconds, epochs_left=1) == 0

    def scores(self, model) -> dict:
        if not self.records:
            return {"val_mAP": None, "val_coco_AP": None}
        from keras_frcnn.evaluation import evaluate
        from keras_frcnn.inference.detector import Detector, predict_records

        if self._detector is None or self._detector.model is not model:
            self._detector = Detector(model)
        metrics = evaluate(self.records, predict_records(self._detector, self.records), model.class_names)
        voc = metrics["voc"]["mAP"]
        return {"val_mAP": None if voc is None else float(voc), "val_coco_AP": float(metrics["coco"]["AP"])}


class EpochTime(Hook):
    """The epoch's seconds (training and validation) into the history and the state's training
    time; stops training when the time budget has no room for another epoch like this one."""

    def end_epoch(self, training, epoch):
        seconds = time.perf_counter() - training.epoch_start
        training.state["train_seconds"] = training.state.get("train_seconds", 0.0) + seconds
        budget = training.options.time_budget_minutes
        if budget is not None:
            remaining = 60.0 * budget - training.state["train_seconds"]
            training.out_of_time = epochs_within_budget(remaining, seconds, epochs_left=1) == 0
        epoch.row["seconds"] = round(seconds, 2)


class Checkpoint(Hook):
    """The commit: ``checkpoints/epoch_NNNN.keras`` -> ``history.csv`` -> ``best.keras`` (if
    better) -> ``state.json`` (the commit point) -> ``last.keras``, then older checkpoints go."""

    def end_epoch(self, training, epoch):
        run, state, model = training.run, training.state, training.model
        training.rows.append(epoch.row)
        os.makedirs(run.checkpoints, exist_ok=True)
        checkpoint = os.path.join(run.checkpoints, f"epoch_{epoch.number:04d}.keras")
        with atomic_path(checkpoint) as temp:
            model.save(temp)
        write_text(run.history, history_frame(training.rows).to_csv(index=False))
        row = epoch.row
        score = row["val_mAP"] if row.get("val_mAP") is not None else -row["loss"]
        if not epoch.validation_skipped and (state.get("best_score") is None or score > state["best_score"]):
            link_or_copy(checkpoint, run.best)
            state.update(best_score=score, best_epoch=epoch.number, best_val_mAP=row.get("val_mAP"))
        state.update(epoch=epoch.number, checkpoint=os.path.relpath(checkpoint, run.root),
                     iterations=int(numpy_value(model.optimizer.iterations)))
        write_json(run.state, state)  # the commit point
        link_or_copy(checkpoint, run.last)
        for name in os.listdir(run.checkpoints):
            if name.endswith(".keras") and name != os.path.basename(checkpoint):
                os.unlink(os.path.join(run.checkpoints, name))


class LossPlot(Hook):
    """``loss_curve.png`` from the history."""

    def end_epoch(self, training, epoch):
        from keras_frcnn.training.plots import plot_loss_curve

        plot_loss_curve(history_frame(training.rows), training.run.loss_curve)


class ProgressLine(Hook):
    """One line per epoch: the loss terms, validation, seconds, best, and the time left."""

    def end_epoch(self, training, epoch):
        row, state, options = epoch.row, training.state, training.options
        val = "" if row.get("val_mAP") is None else f"  val mAP {row['val_mAP']:.4f}  val COCO AP {row['val_coco_AP']:.4f}"
        terms = "  ".join(f"{k} {row[k]:.4f}" for k in LOSS_TERMS)
        best = " (best)" if state.get("best_epoch") == epoch.number else ""
        skipped = row.get(SKIPPED_STEPS) or 0
        skipped = f"  {skipped} step(s) skipped (non-finite gradients)" if skipped else ""
        training.print(f"epoch {epoch.number}: {terms}{val}  {row['seconds']:.0f}s{best}{skipped}"
                       f"{self.time_left(training, epoch)}")
        if training.out_of_time:
            training.print(f"time budget of {options.time_budget_minutes:g} min reached after epoch {epoch.number} "
                           f"({state['train_seconds'] / 60:.1f} min of training)")

    @staticmethod
    def time_left(training, epoch) -> str:
        """``"; about 12 min 30 s left"``: the budget's rest, or the epochs left at the mean epoch time."""
        options, state = training.options, training.state
        if training.out_of_time or epoch.number >= options.num_epochs:
            return ""
        left = (options.num_epochs - epoch.number) * state["train_seconds"] / max(epoch.number, 1)
        if options.time_budget_minutes is not None:
            left = min(left, 60.0 * options.time_budget_minutes - state["train_seconds"])
        return f"; about {format_duration(left)} left"


def history_frame(rows: list[dict]) -> pd.DataFrame:
    """The history rows as ``history.csv``'s table."""
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def standard_hooks(val_records: Sequence, base_rate: float) -> list[Hook]:
    """The hooks of every training run, in commit order (module docstring)."""
    return [Validation(val_records), LearningRate(base_rate), EpochTime(), Checkpoint(), LossPlot(), ProgressLine()]


class EpochHooks:
    """Runs ``hooks`` at the start and end of each epoch, for ``fit`` (:attr:`callback`) or the
    distributed loop; stops training on a non-finite loss or when a hook says the time is up.

    ``images_per_epoch``: global batch x steps per epoch; ``images_seen`` counts them into the
    state (where a resumed run takes up the data stream).
    """

    def __init__(self, training: TrainingState, hooks: Sequence[Hook], *, chief: bool = True,
                 images_per_epoch: int = 1, images_seen: int = 0):
        import keras

        self.training = training
        self.hooks = list(hooks)
        self.chief = chief
        self.images_per_epoch = images_per_epoch
        self.images_seen = images_seen
        runner = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                runner.begin_epoch(self.model)

            def on_train_batch_begin(self, batch, logs=None):
                runner.begin_step(batch)

            def on_train_batch_end(self, batch, logs=None):
                if not runner.check_step((logs or {}).get("loss"), batch):
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                if runner.training.failure is None:
                    runner.commit(self.model, epoch, logs if logs is not None else {})
                if runner.stopped:
                    self.model.stop_training = True

        self.callback = Callback()

    @property
    def failure(self) -> str | None:
        return self.training.failure

    @property
    def stopped(self) -> bool:
        return self.training.failure is not None or self.training.out_of_time

    def begin_epoch(self, model) -> None:
        self.training.model = model
        self.training.epoch_start = time.perf_counter()
        for hook in self.hooks:
            hook.begin_epoch(self.training)

    def begin_step(self, batch: int) -> None:
        for hook in self.hooks:
            hook.begin_step(self.training, batch)

    def check_step(self, loss, batch: int) -> bool:
        """False (and the failure set) when step ``batch`` of the epoch had a non-finite loss."""
        if loss is not None and not math.isfinite(float(loss)):
            epoch = int(self.training.state.get("epoch", 0)) + 1
            self.training.failure = f"non-finite loss ({float(loss)}) at epoch {epoch}, step {batch + 1}"
            return False
        return True

    def commit(self, model, epoch: int, logs: dict) -> None:
        """End epoch ``epoch`` (0-based) with Keras' ``logs`` (the epoch's mean loss terms)."""
        number = epoch + 1
        row = {"epoch": number, **{k: float(logs[k]) for k in LOSS_TERMS if k in logs}}
        if SKIPPED_STEPS in logs:
            row[SKIPPED_STEPS] = int(round(float(logs[SKIPPED_STEPS])))
        if not all(_finite(row.get(k)) for k in LOSS_TERMS):
            self.training.failure = f"non-finite loss at the end of epoch {number}"
            model.stop_training = True
            return
        self.training.model = model
        self.images_seen += self.images_per_epoch
        self.training.state["images_seen"] = self.images_seen
        if not self.chief:  # every worker holds the same weights: the chief alone writes them
            self.training.state.update(epoch=number)
            return
        current = Epoch(number, row, logs)
        for hook in self.hooks:
            hook.end_epoch(self.training, current)
