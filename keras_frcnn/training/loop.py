"""Training runs: a run folder with config, class map, split, checkpoints, history, logs and plots.

One training step (:meth:`keras_frcnn.model.faster_rcnn.FasterRCNN.train_step_fn`) and two loops around it:
``model.fit`` (default strategy and MirroredStrategy) and a hand-written distributed loop
(MultiWorkerMirroredStrategy, where Keras 3's ``fit`` fails: keras-team/keras#20585). Both
start and commit epochs through the same hooks (:mod:`keras_frcnn.training.hooks`). See
:mod:`keras_frcnn.training.distribute`.

An epoch is committed in this order, each file written atomically:
``checkpoints/epoch_NNNN.keras`` -> ``history.csv`` -> ``best.keras`` (if better) -> ``state.json``
(the commit point) -> ``last.keras``. A run killed at any moment (even ``kill -9``) resumes from the
epoch ``state.json`` names, with the optimizer state, the epoch counter and the history intact,
and (the data stream and the in-graph sampling being stateless functions of the seed and the
step) continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.sources import source_of
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.atomic import write_json
from keras_frcnn.config import Config
from keras_frcnn.training.distribute import LOOPS
from keras_frcnn.errors import OptionError, UserError
from keras_frcnn.model.terms import LOSS_TERMS, SKIPPED_STEPS
from keras_frcnn.training.hooks import HISTORY_COLUMNS, EpochHooks, TrainingState, standard_hooks
from keras_frcnn.training.runs import RunFolder
from keras_frcnn.training.warm_start import warm_start

LR_SCHEDULES = ("step", "cosine")


class TrainingDiverged(UserError):
    """Training stopped on a non-finite loss (the last good checkpoint is kept)."""


@dataclass
class TrainOptions:
    """How to train (the model itself is described by :class:`~keras_frcnn.config.Config`)."""

    optimizer: str = "adamax"
    learning_rate: float | None = None  # None: the paper's value for the optimizer
    num_epochs: int = 300
    epoch_length: int = 1000  # iterations (batches) per epoch
    batch_size: int = 1
    expansion: str = "online"  # or "paper16": the paper's fixed 16x augmentation
    input_weight_path: str | None = None  # start from a trained model's weights (the same model)
    init_from: str | None = None  # start from a model or run where weights match (keras_frcnn.training.warm_start)
    deterministic: bool = False  # bit-reproducible TensorFlow kernels (slower; see README)
    verbose: int = 1  # Keras progress bar: 1 = bar with ETA, 2 = one line per epoch, 0 = silent
    # Scaling out (keras_frcnn.training.distribute). batch_size is per replica.
    distribute: str = "auto"  # auto | none | mirrored | multiworker
    virtual_devices: int = 0  # split the CPU into this many logical devices (no-GPU stand-in)
    mixed_precision: bool = False  # mixed_float16 on GPUs, mixed_bfloat16 on CPUs
    jit_compile: bool = False  # XLA for the dense parts of the step (FasterRCNN.set_dense_jit)
    loop: str = "auto"  # fit | custom | auto (fit, except the custom loop under multiworker)
    # Length and learning-rate schedule.
    time_budget_minutes: float | None = None  # stop at the last epoch that fits (wall clock, validation included)
    lr_schedule: str = "step"  # step: x lr_drop_factor at each of lr_drops; cosine: half a cosine down to 0 at the end
    lr_drops: tuple[float, ...] = ()  # fractions of training after which the rate is multiplied by lr_drop_factor
    lr_drop_factor: float = 0.1
    warmup: float = 0.0  # fraction of training over which the rate ramps up linearly (from 1% of it) first
    validate_every: int = 1  # epochs between validations (the last epoch is always validated)

    def __post_init__(self):
        self.lr_drops = tuple(float(f) for f in self.lr_drops)  # a list when read back from config.json

    def progress(self, epochs_done: float, train_seconds: float) -> float:
        """How far training is, in [0, 1]: the larger of the epochs done (fractions of one count)
        and, with a time budget, the budget spent."""
        progress = epochs_done / self.num_epochs
        if self.time_budget_minutes:
            progress = max(progress, train_seconds / (60.0 * self.time_budget_minutes))
        return min(progress, 1.0)

    def learning_rate_at(self, base_rate: float, epochs_done: float, train_seconds: float) -> float:
        """The rate after ``epochs_done`` epochs (fractions count) and ``train_seconds`` of training
        (:meth:`progress`): the warm-up ramp, then ``base_rate`` times ``lr_drop_factor`` for every
        drop passed (``step``) or times ``(1 + cos(pi * progress)) / 2`` (``cosine``)."""
        progress = self.progress(epochs_done, train_seconds)
        if self.lr_schedule == "cosine":
            rate = base_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            rate = base_rate * self.lr_drop_factor ** sum(progress >= f for f in self.lr_drops)
        if progress < self.warmup:
            rate *= 0.01 + 0.99 * progress / self.warmup
        return rate

    def validate(self) -> None:
        from keras_frcnn.training.distribute import STRATEGIES

        if self.num_epochs < 1 or self.epoch_length < 1 or self.batch_size < 1:
            raise OptionError("{0}, {1} and {2} must be at least 1", "num_epochs", "epoch_length", "batch_size")
        if self.distribute not in STRATEGIES:
            raise OptionError("{0} must be one of {choices}, not {value!r}", "distribute",
                              choices=", ".join(STRATEGIES), value=self.distribute)
        if self.loop not in LOOPS:
            raise OptionError("{0} must be one of {choices}, not {value!r}", "loop", choices=", ".join(LOOPS),
                              value=self.loop)
        if self.virtual_devices < 0:
            raise OptionError("{0} must not be negative", "virtual_devices")
        if self.time_budget_minutes is not None and not self.time_budget_minutes > 0:
            raise OptionError("{0} must be positive, not {value}", "time_budget_minutes", value=self.time_budget_minutes)
        if self.time_budget_minutes is not None and self.distribute == "multiworker":
            raise OptionError("{0} does not work with {1} multiworker (each worker's clock would decide on its own "
                              "when to stop); use {2}", "time_budget_minutes", "distribute", "num_epochs")
        if any(not 0 < f < 1 for f in self.lr_drops) or not 0 < self.lr_drop_factor <= 1:
            raise OptionError("{0} takes fractions of training in (0, 1) and {1} a value in (0, 1]", "lr_drops",
                              "lr_drop_factor")
        if self.lr_schedule not in LR_SCHEDULES:
            raise OptionError("{0} must be one of {choices}, not {value!r}", "lr_schedule",
                              choices=", ".join(LR_SCHEDULES), value=self.lr_schedule)
        if self.lr_schedule == "cosine" and self.lr_drops:
            raise OptionError("{0} cosine has no drops: leave out {1}", "lr_schedule", "lr_drops")
        if not 0 <= self.warmup < 1:
            raise OptionError("{0} takes a fraction of training in [0, 1), not {value}", "warmup", value=self.warmup)
        if self.validate_every < 1:
            raise OptionError("{0} must be at least 1", "validate_every")
        if self.input_weight_path and self.init_from:
            raise OptionError("give {0} or {1}, not both", "input_weight_path", "init_from")
        if self.loop == "fit" and self.distribute == "multiworker":
            raise OptionError("{0} fit does not run under MultiWorkerMirroredStrategy in Keras 3 "
                              "(keras-team/keras#20585); use {0} auto", "loop")


@dataclass
class TrainResult:
    run: RunFolder
    history: pd.DataFrame
    best_epoch: int | None
    best_val_map: float | None
    model: object = None  # the trained keras model (None when nothing was trained)
    epochs: int = 0  # epochs committed, resumed ones included
    iterations: int = 0  # optimizer steps taken, resumed ones included
    train_seconds: float = 0.0  # wall-clock training time, validation and resumed runs included


def split_records(records: Sequence[ImageRecord], val_fraction: float, seed: int,
                  group_of: Callable[[str], str] | None = None) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A seeded train/validation split; records with the same ``group_of(path)`` stay together
    (default: :func:`~keras_frcnn.annotations.sources.source_of`, so exported copies of one source
    image stay on one side)."""
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"the validation fraction must be in [0, 1), not {val_fraction}")
    group_of = group_of or source_of
    groups = sorted({group_of(r.path) for r in records})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = int(round(val_fraction * len(groups)))
    if val_fraction > 0 and len(groups) > 1:
        n_val = min(max(n_val, 1), len(groups) - 1)
    val_groups = {groups[i] for i in order[:n_val]}
    train = [r for r in records if group_of(r.path) not in val_groups]
    val = [r for r in records if group_of(r.path) in val_groups]
    return train, val


def _write_run_files(run: RunFolder, config: Config, options: TrainOptions, class_map: ClassMap,
                     train_records, val_records, data_info: dict) -> None:
    from keras_frcnn.training.optimizers import optimizer_settings

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


def apply_split(run: RunFolder, records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The saved train/validation split applied to freshly read records."""
    split = run.read_split()
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
    from the folder); ``options.num_epochs`` may be raised to train longer. Under
    ``options.distribute`` the model and optimizer live in the strategy's scope, a step takes
    ``options.batch_size`` images per replica, and only the chief writes to ``run_dir`` (which,
    for a multi-worker resume, every worker must be able to read: shared storage).
    """
    from keras_frcnn.training.distribute import describe, dtype_policy, is_chief, make_strategy, mixed_precision_policy

    options.validate()
    strategy = make_strategy(options.distribute, options.virtual_devices)  # before any other TF op

    import keras

    from keras_frcnn.data.pipeline import make_dataset
    from keras_frcnn.model.faster_rcnn import build_model
    from keras_frcnn.training.optimizers import build_optimizer, optimizer_settings
    from keras_frcnn.training.runs import load_model

    chief = is_chief(strategy)
    if options.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    run = RunFolder(run_dir)
    if not train_records:
        raise UserError("no training images")
    policy = mixed_precision_policy(options.mixed_precision)
    if resume:
        if not run.exists():
            shared = " (with --distribute multiworker every worker must see the chief's run folder)" if not chief else ""
            raise UserError(f"{run_dir}: nothing to resume (no state.json: no epoch was completed){shared}")
        state = run.read_state()
        with dtype_policy(policy), strategy.scope():
            model = load_model(run.path(state["checkpoint"]), with_optimizer=True)
        history = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                   for row in run.read_history(int(state["epoch"])).to_dict("records")]
        initial_epoch = int(state["epoch"])
        print_fn(f"resuming {run_dir} after epoch {initial_epoch} (step {state['iterations']})")
    else:
        if run.exists():
            raise UserError(f"{run_dir}: already holds a run (state.json); use --resume or another --output")
        if chief:
            _write_run_files(run, config, options, class_map, train_records, val_records, data_info or {})
        keras.utils.set_random_seed(config.seed)
        with dtype_policy(policy), strategy.scope():
            model = build_model(config)
            for line in model.initial_weights_report:
                print_fn(line)
            if options.input_weight_path:
                _load_initial_weights(model, options.input_weight_path)
            if options.init_from:
                for line in warm_start(model, options.init_from).lines():
                    print_fn(line)
            model.compile(optimizer=build_optimizer(options.optimizer, options.learning_rate))
        state, history, initial_epoch = {}, [], 0
    if options.jit_compile:
        model.set_dense_jit(True)
    replicas = strategy.num_replicas_in_sync
    global_batch = options.batch_size * replicas
    if replicas > 1 or policy != "float32" or options.jit_compile:
        xla = ", XLA for the dense parts" if options.jit_compile else ""
        print_fn(f"{describe(strategy)}, global batch {global_batch} ({options.batch_size} per replica), "
                 f"{policy}{xla}")

    if initial_epoch >= options.num_epochs:
        print_fn(f"{run_dir}: already trained for {initial_epoch} epochs (--num_epochs {options.num_epochs})")
        return _result(run, history, state, model)

    consumed = int(state.get("images_seen", initial_epoch * options.epoch_length * options.batch_size))
    dataset = make_dataset(train_records, class_map, model.frcnn_config, training=True, batch_size=global_batch,
                           seed=model.frcnn_config.seed, expansion=options.expansion, skip=consumed)
    base_rate = optimizer_settings(options.optimizer, options.learning_rate)["learning_rate"]
    training = TrainingState(run, options, state, history, print_fn, model=model)
    hooks = EpochHooks(training, standard_hooks(val_records, base_rate), chief=chief,
                       images_per_epoch=global_batch * options.epoch_length, images_seen=consumed)
    if _use_fit(options, strategy):
        callbacks = [hooks.callback,
                     keras.callbacks.TensorBoard(log_dir=run.logs, write_graph=False, update_freq="epoch")]
        model.fit(dataset, epochs=options.num_epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=options.epoch_length, callbacks=callbacks, verbose=options.verbose, shuffle=False)
    else:
        _distributed_loop(model, strategy, dataset, options, hooks, initial_epoch, run, chief)
    if hooks.failure:
        kept = f"the last good checkpoint (epoch {state['epoch']}) is kept" if state.get("epoch") else "no epoch was completed"
        raise TrainingDiverged(f"{hooks.failure}: training stopped; {kept} in {run_dir}. "
                        "Try a lower --lr or another --optimizer.")
    return _result(run, history, state, model)


def _use_fit(options: TrainOptions, strategy) -> bool:
    """``model.fit`` for the default strategy and MirroredStrategy, the custom loop for
    MultiWorkerMirroredStrategy (where Keras 3's ``fit`` fails) or when ``options.loop`` says so."""
    from keras_frcnn.training.distribute import is_multi_worker

    if options.loop == "auto":
        return not is_multi_worker(strategy)
    return options.loop == "fit"


def _distributed_loop(model, strategy, dataset, options: TrainOptions, hooks: EpochHooks,
                      initial_epoch: int, run: RunFolder, chief: bool) -> None:
    """The epochs of ``fit`` written out: ``strategy.run`` of the model's own step on each replica's
    part of the global batch, ``strategy.reduce`` of the loss terms, the shared epoch hooks.

    Every worker runs it in lockstep (the steps all-reduce the gradients); each worker's loss
    terms are the global batch's, so all stop together on a non-finite loss.
    """
    import keras
    import tensorflow as tf

    from keras_frcnn.training.distribute import is_multi_worker

    if is_multi_worker(strategy):
        data_options = tf.data.Options()
        # Each worker takes its replicas' share of every global batch (the pipeline has no files
        # to shard by): worker w's images are the ones one device would see at places w*B...
        data_options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(data_options)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def train_step(iterator):
        terms = strategy.run(model.train_step_fn, args=(next(iterator),))
        reduced = {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, terms[name], axis=None) for name in LOSS_TERMS}
        # a step counts once, however many replicas skipped a gradient in it (ReduceOp has no MAX)
        reduced[SKIPPED_STEPS] = tf.minimum(strategy.reduce(tf.distribute.ReduceOp.SUM, terms[SKIPPED_STEPS],
                                                            axis=None), 1.0)
        return reduced

    writer = tf.summary.create_file_writer(os.path.join(run.logs, "train")) if chief else None
    show_bar = chief and options.verbose == 1
    for epoch in range(initial_epoch, options.num_epochs):
        hooks.begin_epoch(model)
        if show_bar:
            print(f"Epoch {epoch + 1}/{options.num_epochs}")
        bar = keras.utils.Progbar(options.epoch_length, stateful_metrics=LOSS_TERMS) if show_bar else None
        totals = dict.fromkeys(LOSS_TERMS, 0.0)
        skipped = 0.0
        for batch in range(options.epoch_length):
            hooks.begin_step(batch)
            values = {name: float(value) for name, value in train_step(iterator).items()}
            if not hooks.check_step(values["loss"], batch):
                return
            for name in LOSS_TERMS:
                totals[name] += values[name]
            skipped += values[SKIPPED_STEPS]
            if bar is not None:
                bar.update(batch + 1, [(name, totals[name] / (batch + 1)) for name in LOSS_TERMS])
        logs = {name: totals[name] / options.epoch_length for name in LOSS_TERMS}
        logs[SKIPPED_STEPS] = skipped
        hooks.commit(model, epoch, logs)
        if hooks.stopped:
            return
        if writer is not None:
            with writer.as_default():
                for name, value in logs.items():
                    tf.summary.scalar(f"epoch_{name}", value, step=epoch)
            writer.flush()


def _result(run: RunFolder, history: list[dict], state: dict, model=None) -> TrainResult:
    return TrainResult(run, pd.DataFrame(history, columns=list(HISTORY_COLUMNS)), state.get("best_epoch"),
                       state.get("best_val_mAP"), model, epochs=int(state.get("epoch", 0)),
                       iterations=int(state.get("iterations", 0)), train_seconds=float(state.get("train_seconds", 0.0)))


def _load_initial_weights(model, path: str) -> None:
    """Start from a trained model's weights (a ``.keras`` model or ``.weights.h5`` file)."""
    from keras_frcnn.training.runs import load_model

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
