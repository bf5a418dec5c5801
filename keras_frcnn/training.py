"""Training runs: a run folder with config, class map, split, checkpoints, history, logs and plots.

An epoch is committed in this order, each file written atomically:
``checkpoints/epoch_NNNN.keras`` -> ``history.csv`` -> ``best.keras`` (if better) -> ``state.json``
(the commit point) -> ``last.keras``. A run killed at any moment (even ``kill -9``) resumes from the
epoch ``state.json`` names, with the optimizer state, the epoch counter and the history intact,
and (the data stream and the in-graph sampling being stateless functions of the seed and the
step) continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.atomic import link_or_copy, write_json, write_text
from keras_frcnn.config import Config
from keras_frcnn.errors import UserError
from keras_frcnn.runs import RunFolder

LOSS_COLUMNS = ("loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg")
HISTORY_COLUMNS = ("epoch",) + LOSS_COLUMNS + ("val_mAP", "val_coco_AP", "learning_rate", "seconds")


@dataclass
class TrainOptions:
    """How to train (the model itself is described by :class:`~keras_frcnn.config.Config`)."""

    optimizer: str = "adamax"
    learning_rate: float | None = None  # None: the paper's value for the optimizer
    num_epochs: int = 300
    epoch_length: int = 1000  # iterations (batches) per epoch
    batch_size: int = 1
    expansion: str = "online"  # or "paper16": the paper's fixed 16x augmentation
    input_weight_path: str | None = None  # start from a trained model's weights
    deterministic: bool = False  # bit-reproducible TensorFlow kernels (slower; see README)
    verbose: int = 1  # Keras progress bar: 1 = bar with ETA, 2 = one line per epoch, 0 = silent

    def validate(self) -> None:
        if self.num_epochs < 1 or self.epoch_length < 1 or self.batch_size < 1:
            raise UserError("--num_epochs, --epoch_length and --batch-size must be at least 1")


@dataclass
class TrainResult:
    run: RunFolder
    history: pd.DataFrame
    best_epoch: int | None
    best_val_map: float | None


def split_records(records: Sequence[ImageRecord], val_fraction: float, seed: int,
                  group_of: Callable[[str], str] | None = None) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A seeded train/validation split; records with the same ``group_of(path)`` stay together."""
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"the validation fraction must be in [0, 1), not {val_fraction}")
    groups = sorted({(group_of or str)(r.path) for r in records})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = int(round(val_fraction * len(groups)))
    if val_fraction > 0 and len(groups) > 1:
        n_val = min(max(n_val, 1), len(groups) - 1)
    val_groups = {groups[i] for i in order[:n_val]}
    train = [r for r in records if (group_of or str)(r.path) not in val_groups]
    val = [r for r in records if (group_of or str)(r.path) in val_groups]
    return train, val


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


class _EpochCommitter:
    """Validation mAP, checkpoints, history, plots and the state file at the end of each epoch."""

    def __init__(self, run: RunFolder, val_records: Sequence[ImageRecord], history: list[dict],
                 state: dict, print_fn: Callable[[str], None]):
        import keras

        self.run = run
        self.val_records = list(val_records)
        self.rows = history
        self.state = state
        self.print = print_fn
        self.failure: str | None = None
        committer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                committer.epoch_start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    committer.failure = f"non-finite loss ({float(loss)}) at epoch {committer.current_epoch + 1}, step {batch + 1}"
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                if committer.failure is None:
                    committer.commit(self.model, epoch, logs if logs is not None else {})

        self.callback = Callback()
        self.current_epoch = 0
        self.epoch_start = time.perf_counter()

    def commit(self, model, epoch: int, logs: dict) -> None:
        from keras_frcnn.plots import plot_loss_curve

        number = epoch + 1
        row = {"epoch": number, **{k: float(logs[k]) for k in LOSS_COLUMNS if k in logs}}
        if not all(_finite(row.get(k)) for k in LOSS_COLUMNS):
            self.failure = f"non-finite loss at the end of epoch {number}"
            model.stop_training = True
            return
        row.update(self._validate(model))
        logs.update({k: row[k] for k in ("val_mAP", "val_coco_AP") if row[k] is not None})
        row["learning_rate"] = float(np.asarray(model.optimizer.learning_rate))
        row["seconds"] = round(time.perf_counter() - self.epoch_start, 2)
        self.rows.append(row)

        os.makedirs(self.run.checkpoints, exist_ok=True)
        checkpoint = os.path.join(self.run.checkpoints, f"epoch_{number:04d}.keras")
        from keras_frcnn.atomic import atomic_path

        with atomic_path(checkpoint) as temp:
            model.save(temp)
        history = pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS))
        write_text(self.run.history, history.to_csv(index=False))
        score = row["val_mAP"] if row["val_mAP"] is not None else -row["loss"]
        if self.state.get("best_score") is None or score > self.state["best_score"]:
            link_or_copy(checkpoint, self.run.best)
            self.state.update(best_score=score, best_epoch=number, best_val_mAP=row["val_mAP"])
        self.state.update(epoch=number, checkpoint=os.path.relpath(checkpoint, self.run.root),
                          iterations=int(np.asarray(model.optimizer.iterations)))
        write_json(self.run.state, self.state)  # the commit point
        link_or_copy(checkpoint, self.run.last)
        for name in os.listdir(self.run.checkpoints):
            if name.endswith(".keras") and name != os.path.basename(checkpoint):
                os.unlink(os.path.join(self.run.checkpoints, name))
        plot_loss_curve(history, self.run.loss_curve)
        self.current_epoch = number
        val = "" if row["val_mAP"] is None else f"  val mAP {row['val_mAP']:.4f}  val COCO AP {row['val_coco_AP']:.4f}"
        terms = "  ".join(f"{k} {row[k]:.4f}" for k in LOSS_COLUMNS)
        best = " (best)" if self.state["best_epoch"] == number else ""
        self.print(f"epoch {number}: {terms}{val}  {row['seconds']:.0f}s{best}")

    def _validate(self, model) -> dict:
        if not self.val_records:
            return {"val_mAP": None, "val_coco_AP": None}
        from keras_frcnn.evaluation import evaluate
        from keras_frcnn.inference import predict_records

        detections = predict_records(model, self.val_records)
        metrics = evaluate(self.val_records, detections, model.class_names)
        voc = metrics["voc"]["mAP"]
        return {"val_mAP": None if voc is None else float(voc), "val_coco_AP": float(metrics["coco"]["AP"])}


def _read_history(run: RunFolder, last_epoch: int) -> list[dict]:
    """History rows up to the committed epoch (a row written after the commit point is dropped)."""
    if not os.path.exists(run.history):
        return []
    frame = pd.read_csv(run.history)
    frame = frame[frame["epoch"] <= last_epoch]
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _write_run_files(run: RunFolder, config: Config, options: TrainOptions, class_map: ClassMap,
                     train_records, val_records, data_info: dict) -> None:
    from keras_frcnn.optimizers import optimizer_settings

    import keras
    import tensorflow as tf

    os.makedirs(run.root, exist_ok=True)
    settings = optimizer_settings(options.optimizer, options.learning_rate)
    write_json(run.config, {
        "model": config.to_dict(),
        "training": dataclasses.asdict(options),
        "optimizer": {"name": options.optimizer.lower(), **settings},
        "data": data_info,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    })
    class_map.save(run.class_map)
    write_json(run.split, {"seed": config.seed, "train": [r.path for r in train_records],
                           "val": [r.path for r in val_records]})


def read_run_config(run: RunFolder) -> dict:
    """The run's ``config.json`` (model config, training options, optimizer, data)."""
    try:
        with open(run.config, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError:
        raise UserError(f"{run.config}: not found; is {run.root} a run folder?") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{run.config}:{err.lineno}: invalid JSON ({err.msg})") from None


def apply_split(run: RunFolder, records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The saved train/validation split applied to freshly read records."""
    try:
        with open(run.split, encoding="utf-8") as handle:
            split = json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{run.split}: cannot read the saved split ({err})") from None
    by_path = {r.path: r for r in records}
    missing = [p for p in split["train"] + split["val"] if p not in by_path]
    if missing:
        raise UserError(f"{run.split}: {len(missing)} image(s) of the saved split are no longer in the data, e.g. {missing[0]}")
    return [by_path[p] for p in split["train"]], [by_path[p] for p in split["val"]]


def train(run_dir: str, *, config: Config, options: TrainOptions, class_map: ClassMap,
          train_records: Sequence[ImageRecord], val_records: Sequence[ImageRecord] = (),
          data_info: dict | None = None, resume: bool = False,
          print_fn: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume) the run in ``run_dir``; returns the history and the best epoch.

    On resume ``config``, ``class_map`` and the split must be the run's own (the CLI reads them
    from the folder); ``options.num_epochs`` may be raised to train longer.
    """
    import keras

    from keras_frcnn.data.pipeline import make_dataset
    from keras_frcnn.model import build_model
    from keras_frcnn.optimizers import build_optimizer
    from keras_frcnn.runs import load_model

    options.validate()
    if options.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    run = RunFolder(run_dir)
    if not train_records:
        raise UserError("no training images")
    if resume:
        if not run.exists():
            raise UserError(f"{run_dir}: nothing to resume (no state.json: no epoch was completed)")
        with open(run.state, encoding="utf-8") as handle:
            state = json.load(handle)
        model = load_model(run.path(state["checkpoint"]))
        history = _read_history(run, state["epoch"])
        initial_epoch = int(state["epoch"])
        print_fn(f"resuming {run_dir} after epoch {initial_epoch} (step {state['iterations']})")
    else:
        if run.exists():
            raise UserError(f"{run_dir}: already holds a run (state.json); use --resume or another --output")
        _write_run_files(run, config, options, class_map, train_records, val_records, data_info or {})
        keras.utils.set_random_seed(config.seed)
        model = build_model(config)
        if options.input_weight_path:
            _load_initial_weights(model, options.input_weight_path)
        model.compile(optimizer=build_optimizer(options.optimizer, options.learning_rate))
        state, history, initial_epoch = {}, [], 0

    if initial_epoch >= options.num_epochs:
        print_fn(f"{run_dir}: already trained for {initial_epoch} epochs (--num_epochs {options.num_epochs})")
        return _result(run, history, state)

    consumed = initial_epoch * options.epoch_length * options.batch_size
    dataset = make_dataset(train_records, class_map, model.frcnn_config, training=True, batch_size=options.batch_size,
                           seed=model.frcnn_config.seed, expansion=options.expansion, skip=consumed)
    committer = _EpochCommitter(run, val_records, history, state, print_fn)
    committer.current_epoch = initial_epoch
    callbacks = [committer.callback,
                 keras.callbacks.TensorBoard(log_dir=run.logs, write_graph=False, update_freq="epoch")]
    model.fit(dataset, epochs=options.num_epochs, initial_epoch=initial_epoch, steps_per_epoch=options.epoch_length,
              callbacks=callbacks, verbose=options.verbose, shuffle=False)
    if committer.failure:
        kept = f"the last good checkpoint (epoch {state['epoch']}) is kept" if state.get("epoch") else "no epoch was completed"
        raise UserError(f"{committer.failure}: training stopped; {kept} in {run_dir}. "
                        "Try a lower --lr or another --optimizer.")
    return _result(run, history, state)


def _result(run: RunFolder, history: list[dict], state: dict) -> TrainResult:
    return TrainResult(run, pd.DataFrame(history, columns=list(HISTORY_COLUMNS)), state.get("best_epoch"),
                       state.get("best_val_mAP"))


def _load_initial_weights(model, path: str) -> None:
    """Start from a trained model's weights (a ``.keras`` model or ``.weights.h5`` file)."""
    from keras_frcnn.runs import load_model

    if not os.path.isfile(path):
        raise UserError(f"{path}: input weights file not found")
    try:
        if path.endswith(".keras"):
            model.set_weights(load_model(path).get_weights())
        else:
            model.load_weights(path)
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"{path}: cannot load weights into this model ({str(err).splitlines()[0]})") from None
