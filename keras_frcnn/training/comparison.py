"""Optimizer comparison studies: every chosen optimizer for every chosen backbone on the same
data, split, seed, schedule and augmentation, then one table and the paper's figures.

A study is a folder::

    STUDY/
      study.json          the data flags the study was started with (a rerun must match them)
      split.json          the train/validation split, made once and used by every run
      progress.json       per run: training wall-clock spent, budget share, cut by the budget, failure
      <network>_<optimizer>/   a normal run folder (train_frcnn.py --resume, test_frcnn.py and
                               measure_map.py accept it) plus metrics.json: the evaluate() dict of
                               its best.keras on the evaluation set, and the settings it was made with
      comparison.csv / comparison.md / comparison.json    one row per run
      comparison_map.png          VOC mAP per optimizer, one group of bars per backbone (Fig. 3/6)
      comparison_loss.png         loss per epoch of every run, one panel per backbone (Fig. 4/7)
      best_run_per_class_precision.png   per-class AP and precision of the best run (Fig. 5/8)

Rerunning the same command resumes unfinished runs and skips finished ones (their metrics are
reused while best.keras and the evaluation set are unchanged). Every file is written atomically.

A wall-clock budget (``budget_minutes``) is split evenly across the runs: each run trains once,
with its share as :func:`~keras_frcnn.training.loop.train`'s own time budget (validation included),
which stops it after the last epoch that fits; so a run may stop before ``num_epochs``: it is
then "cut by the budget" (rerun without the budget, or with a larger one, to continue it).
Because the share is the run's budget, the learning-rate schedule (``--lr-drop-at``, a fraction
of the budget) of a study stopped and resumed with a larger budget is the one an uninterrupted
study with that budget would follow. Evaluation time is not counted against the budget.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.atomic import write_json, write_text
from keras_frcnn.config import Config
from keras_frcnn.errors import OptionError, UserError
from keras_frcnn.training.runs import RunFolder
from keras_frcnn.training.hooks import epochs_within_budget
from keras_frcnn.training.loop import TrainingDiverged

PAPER_OPTIMIZERS = ("adadelta", "adamax", "rmsprop", "adagrad")
"""The four optimizers the paper compares, in its order."""

PAPER_NETWORKS = ("vgg16", "resnet50")

TABLE_COLUMNS = ("backbone", "optimizer", "hyperparameters", "voc_mAP", "coco_AP", "best_epoch", "epochs_trained",
                 "num_epochs", "train_time_s", "cut_by_budget", "status", "run")
"""The columns of ``comparison.csv`` (``train_time_s``: the sum of the run's history.csv ``seconds``,
i.e. the epochs' training and validation time)."""

_MARKDOWN_HEADINGS = {
    "backbone": "backbone", "optimizer": "optimizer", "hyperparameters": "hyper-parameters", "voc_mAP": "VOC mAP",
    "coco_AP": "COCO AP", "best_epoch": "best epoch", "epochs_trained": "epochs trained",
    "train_time_s": "train time (s)", "cut_by_budget": "cut by budget", "status": "status",
}
_SHORT_NAMES = {"learning_rate": "lr", "epsilon": "eps", "initial_accumulator_value": "init_acc"}
_IGNORED_OPTIONS = ("num_epochs", "verbose")  # may differ between the runs' sessions
EVAL_IOU = 0.5
EVAL_SCORE_THRESHOLD = 0.5

FILES = {
    "study": "study.json", "split": "split.json", "progress": "progress.json", "csv": "comparison.csv",
    "markdown": "comparison.md", "json": "comparison.json", "map_plot": "comparison_map.png",
    "loss_plot": "comparison_loss.png", "best_per_class_precision": "best_run_per_class_precision.png",
}


# ----------------------------------------------------------------------------- the plan
@dataclass
class RunSpec:
    """One run of the study: a backbone, an optimizer (with the paper's hyper-parameters), the
    model config and the training options shared by the whole study."""

    network: str
    optimizer: str
    config: Config
    options: "TrainOptions"  # noqa: F821  (keras_frcnn.training.loop, imported lazily)
    folder: str

    @property
    def name(self) -> str:
        return run_name(self.network, self.optimizer)

    @property
    def run(self) -> RunFolder:
        return RunFolder(self.folder)

    @property
    def settings(self) -> dict:
        from keras_frcnn.training.optimizers import optimizer_settings

        return optimizer_settings(self.optimizer, self.options.learning_rate)

    @property
    def metrics_path(self) -> str:
        return self.run.path("metrics.json")


@dataclass
class RunStatus:
    """Where a run stands: ``new``, ``resume``, ``done`` (num_epochs reached), ``cut`` (the
    budget share is spent) or ``failed`` (training stopped on an error at this epoch)."""

    kind: str
    epoch: int  # committed epochs
    num_epochs: int

    def describe(self) -> str:
        if self.kind == "resume":
            return f"resume ({self.epoch}/{self.num_epochs} epochs done)"
        if self.kind == "cut":
            return f"cut (budget spent after {self.epoch}/{self.num_epochs} epochs)"
        if self.kind == "failed":
            return f"failed at epoch {self.epoch + 1} (skipped; --retry-failed to try again)"
        return self.kind


def eval_set_info(name: str, path: str | None, records: Sequence[ImageRecord]) -> dict:
    """What a run's metrics were computed on (``name``: validation or test); part of the key
    under which ``RUN/metrics.json`` is reused."""
    import hashlib

    digest = hashlib.sha1("\n".join(r.path for r in records).encode("utf-8")).hexdigest()
    return {"name": name, "path": None if path is None else os.path.abspath(path), "images": len(records),
            "boxes": int(sum(r.num_boxes for r in records)), "images_sha1": digest}


def run_name(network: str, optimizer: str) -> str:
    return f"{network}_{optimizer}"


def hyperparameters_text(settings: Mapping) -> str:
    """``lr=1.0 rho=0.95 eps=1e-07`` from :func:`keras_frcnn.training.optimizers.optimizer_settings`."""
    parts = []
    for key, value in settings.items():
        if key == "class":
            continue
        parts.append(f"{_SHORT_NAMES.get(key, key)}={value!r}")
    return " ".join(parts)


def plan_study(folder: str, networks: Sequence[str], optimizers: Sequence[str], configs: Mapping[str, Config],
               options) -> list[RunSpec]:
    """One :class:`RunSpec` per (network, optimizer), networks outermost; ``configs`` maps each
    network to its model config, ``options`` (a :class:`~keras_frcnn.training.loop.TrainOptions`) is
    copied for each optimizer."""
    from keras_frcnn.training.optimizers import optimizer_settings

    if not networks or not optimizers:
        raise UserError("choose at least one network and one optimizer")
    options.validate()
    specs = []
    for network in networks:
        for optimizer in optimizers:
            optimizer_settings(optimizer, options.learning_rate)  # unknown names fail here
            specs.append(RunSpec(network, optimizer, configs[network],
                                 dataclasses.replace(options, optimizer=optimizer),
                                 os.path.join(folder, run_name(network, optimizer))))
    return specs


def is_divergence(error: UserError) -> bool:
    """Whether ``train()`` stopped on a non-finite loss (an outcome of the optimizer, recorded as a
    failed run) rather than on bad input (which stops the study)."""
    return isinstance(error, TrainingDiverged)


SETTING_DEFAULTS = {"labels": "as-is"}
"""Data flags added after studies were first made, with the value older studies had."""


# ----------------------------------------------------------------------------- the study
class Study:
    """A study folder with its runs (see the module docstring)."""

    def __init__(self, folder: str, runs: Sequence[RunSpec], *, budget_minutes: float | None = None,
                 retry_failed: bool = False, changeable_options: Sequence[str] = (),
                 print_fn: Callable[[str], None] = print, clock: Callable[[], float] = time.perf_counter):
        if budget_minutes is not None and not budget_minutes > 0:
            raise OptionError("{0} must be positive, not {value}", "budget_minutes", value=budget_minutes)
        names = [spec.name for spec in runs]
        if len(set(names)) != len(names):
            raise UserError("a network or an optimizer is listed twice")
        self.folder = folder
        self.runs = list(runs)
        self.budget_minutes = budget_minutes
        self.retry_failed = retry_failed
        self.changeable_options = tuple(_IGNORED_OPTIONS) + tuple(changeable_options)  # may differ on a resume
        self.print = print_fn
        self.clock = clock  # wall-clock seconds (injectable for tests)
        self.progress = self._read_json(self.path("progress"), default={"runs": {}})

    def path(self, key: str) -> str:
        return os.path.join(self.folder, FILES[key])

    # -- files
    @staticmethod
    def _read_json(path: str, default=None):
        if not os.path.exists(path):
            return default
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: cannot read ({err})") from None

    def _entry(self, spec: RunSpec) -> dict:
        return self.progress["runs"].setdefault(spec.name, {"wall_seconds": 0.0})

    def _save_progress(self) -> None:
        write_json(self.path("progress"), self.progress)

    # -- budget and status
    @property
    def share_seconds(self) -> float | None:
        """Each run's share of the budget (None: no budget)."""
        if self.budget_minutes is None:
            return None
        return 60.0 * self.budget_minutes / len(self.runs)

    def _out_of_budget(self, spec: RunSpec, state: dict) -> bool:
        """True when the run's share has no room for another epoch like its last one (the rule
        :func:`~keras_frcnn.training.loop.train` stops by)."""
        if self.share_seconds is None or not state:
            return False
        history = spec.run.read_history()
        epoch_seconds = float(history["seconds"].iloc[-1]) if len(history) else 0.0
        remaining = self.share_seconds - float(state.get("train_seconds", 0.0))
        return epochs_within_budget(remaining, epoch_seconds, epochs_left=1) == 0

    def status(self, spec: RunSpec) -> RunStatus:
        state = spec.run.read_state()
        epoch = int(state["epoch"]) if state else 0
        failure = self.progress["runs"].get(spec.name, {}).get("failure")
        if epoch >= spec.options.num_epochs:
            kind = "done"
        elif failure and failure.get("epoch") == epoch and not self.retry_failed:
            kind = "failed"
        elif self._out_of_budget(spec, state):
            kind = "cut"
        else:
            kind = "resume" if epoch else "new"
        return RunStatus(kind, epoch, spec.options.num_epochs)

    def plan_lines(self) -> list[str]:
        """One line per run: network, optimizer, hyper-parameters, schedule, folder, status."""
        rows = []
        for spec in self.runs:
            o = spec.options
            rows.append((spec.network, spec.optimizer, hyperparameters_text(spec.settings),
                         f"{o.num_epochs} x {o.epoch_length}", spec.folder, self.status(spec).describe()))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        return ["  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths)) + "  " + row[5] for row in rows]

    # -- consistency of a rerun
    def check_settings(self, settings: dict) -> None:
        """The data flags must be the ones the study was started with (``study.json``)."""
        saved = self._read_json(self.path("study"))
        if saved is None:
            return
        for key, value in settings.items():
            old = saved.get("data", {}).get(key, SETTING_DEFAULTS.get(key))  # studies made before the key existed
            if old != value:
                raise UserError(f"{self.folder}: this study was started with {key} = {old!r}, not {value!r}; "
                                "rerun it with the same data flags or give another --output")

    def save_settings(self, settings: dict) -> None:
        """Write ``study.json`` (once: a rerun keeps the first)."""
        if not os.path.exists(self.path("study")):
            write_json(self.path("study"), {"data": settings})

    def check_runs(self) -> None:
        """A run folder that already trained must hold the same model config and training options."""
        for spec in self.runs:
            if not spec.run.exists():
                continue
            saved = spec.run.read_config()
            expected_model = json.loads(json.dumps(spec.config.to_dict()))
            expected_training = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(spec.options))).items()
                                 if k not in self.changeable_options}  # as JSON has it (tuples are lists)
            for section, expected in (("model", expected_model), ("training", expected_training)):
                have = saved.get(section, {})
                for key, value in expected.items():
                    if key in have and have[key] != value:
                        flag = "--set " + key if section == "model" else key
                        raise UserError(f"{spec.folder}: trained with {key} = {have[key]!r}, not {value!r} ({flag}); "
                                        "rerun with the study's flags or give another --output")

    def split(self, records: Sequence[ImageRecord], val_records: Sequence[ImageRecord] | None, val_fraction: float,
              seed: int) -> tuple[list[ImageRecord], list[ImageRecord]]:
        """The study's train/validation split: the saved ``split.json``, else ``val_records`` if
        given (``--val``), else a seeded split of ``records``. Save it with :meth:`save_split`."""
        from keras_frcnn.training.loop import apply_split, split_records

        if os.path.exists(self.path("split")):
            return apply_split(RunFolder(self.folder), list(records) + list(val_records or ()))
        if val_records is not None:
            return list(records), list(val_records)
        return split_records(records, val_fraction, seed)

    def save_split(self, train: Sequence[ImageRecord], val: Sequence[ImageRecord], seed: int) -> None:
        """Write ``split.json`` (once: every run of the study, now and on reruns, uses it)."""
        if not os.path.exists(self.path("split")):
            write_json(self.path("split"),
                       {"seed": seed, "train": [r.path for r in train], "val": [r.path for r in val]})

    # -- running
    def train_run(self, spec: RunSpec, class_map: ClassMap, train_records: Sequence[ImageRecord],
                  val_records: Sequence[ImageRecord], data_info: dict) -> RunStatus:
        """Train (or resume) one run as far as num_epochs and its budget share allow; a training
        failure (e.g. a non-finite loss) is recorded and returned as status ``failed``."""
        from keras_frcnn.training.loop import train

        entry = self._entry(spec)
        entry["budget_seconds"] = self.share_seconds
        status = self.status(spec)
        if status.kind in ("done", "failed", "cut"):
            entry["cut_by_budget"] = status.kind == "cut"
            self._save_progress()
            return status
        entry.pop("failure", None)
        options = spec.options
        if self.share_seconds is not None:
            options = dataclasses.replace(options, time_budget_minutes=self.share_seconds / 60.0)
        start = self.clock()
        failure = None
        try:
            train(spec.folder, config=spec.config, options=options, class_map=class_map, train_records=train_records,
                  val_records=val_records, data_info=data_info, resume=status.epoch > 0,
                  print_fn=lambda line: self.print(f"    {line}"))
        except UserError as err:
            if not is_divergence(err):
                raise  # bad input (weights, data...): every run would fail the same way
            failure = str(err)
        finally:  # the time is spent even if training is interrupted
            entry["wall_seconds"] += self.clock() - start
            self._save_progress()
        state = spec.run.read_state()
        epoch = int(state["epoch"]) if state else 0
        if failure is not None:
            entry.update(failure={"message": failure, "epoch": epoch}, cut_by_budget=False)
            self._save_progress()
            return RunStatus("failed", epoch, spec.options.num_epochs)
        cut = epoch < spec.options.num_epochs
        entry["cut_by_budget"] = cut
        self._save_progress()
        return RunStatus("cut" if cut else "done", epoch, spec.options.num_epochs)

    def evaluate_run(self, spec: RunSpec, records: Sequence[ImageRecord], eval_set: dict) -> dict | None:
        """The :func:`~keras_frcnn.evaluation.evaluate` dict of the run's best.keras on
        ``records``, saved as ``RUN/metrics.json`` (with a ``settings`` entry); reused while the
        model and the evaluation set are unchanged. None if the run has no best.keras."""
        run = spec.run
        if not os.path.isfile(run.best):
            return None
        state = run.read_state() or {}
        stat = os.stat(run.best)
        settings = {
            "model": os.path.basename(run.best), "model_mtime_ns": stat.st_mtime_ns, "model_bytes": stat.st_size,
            "best_epoch": state.get("best_epoch"), "epochs_trained": state.get("epoch"), **eval_set,
            "iou_threshold": EVAL_IOU, "score_threshold": EVAL_SCORE_THRESHOLD,
        }
        cached = self._read_json(spec.metrics_path)
        if cached is not None and cached.get("settings") == settings:
            return cached
        from keras_frcnn.evaluation import evaluate
        from keras_frcnn.inference.detector import predict_records
        from keras_frcnn.training.runs import load_model

        model = load_model(run.best)
        detections = predict_records(model, records)
        metrics = evaluate(records, detections, model.class_names, iou_threshold=EVAL_IOU,
                           score_threshold=EVAL_SCORE_THRESHOLD)
        metrics["settings"] = settings
        write_json(spec.metrics_path, metrics)
        return metrics

    def run_all(self, class_map: ClassMap, train_records: Sequence[ImageRecord], val_records: Sequence[ImageRecord],
                data_info: dict, eval_records: Sequence[ImageRecord], eval_set: dict) -> list[dict]:
        """Train and evaluate every run in turn; returns the table rows (plan order)."""
        import keras

        rows = []
        total = len(self.runs)
        for number, spec in enumerate(self.runs, 1):
            status = self.status(spec)
            prefix = f"[{number}/{total}] {spec.name}"
            budget = "" if self.share_seconds is None else f", budget share {self.share_seconds / 60:.1f} min"
            if status.kind not in ("done", "failed", "cut"):
                self.print(f"{prefix}: {status.describe()}: {hyperparameters_text(spec.settings)}, "
                           f"{spec.options.num_epochs} x {spec.options.epoch_length}{budget} -> {spec.folder}")
            start = self.clock()
            trained = status.kind in ("new", "resume")
            status = self.train_run(spec, class_map, train_records, val_records,
                                    {**data_info, "train_images": len(train_records), "val_images": len(val_records),
                                     "study": os.path.abspath(self.folder)})
            metrics = self.evaluate_run(spec, eval_records, eval_set)
            keras.backend.clear_session()  # free the run's graphs before the next one
            row = table_row(spec, status, metrics)
            rows.append(row)
            session = f"{self.clock() - start:.0f} s this session" if trained else "nothing to train"
            self.print(f"{prefix}: {_end_summary(row, eval_set['name'])} ({session})")
            if status.kind == "failed":
                message = self.progress["runs"][spec.name]["failure"]["message"]
                self.print(f"{prefix}: failed: {message}")
        return rows

    # -- reports
    def write_reports(self, rows: Sequence[dict], eval_set: dict, description: Mapping[str, str]) -> dict:
        """comparison.csv/.md/.json and the three plots; returns the comparison.json dict."""
        table = pd.DataFrame(list(rows), columns=list(TABLE_COLUMNS))
        write_text(self.path("csv"), table.to_csv(index=False))
        best = best_row(rows)
        plot_map_comparison(table, self.path("map_plot"), title=f"VOC mAP@0.5 on the {eval_set['name']} set")
        plot_loss_comparison({row["run"]: (row["backbone"], row["optimizer"], RunFolder(row["run"]).read_history())
                              for row in rows}, self.path("loss_plot"))
        files = {key: os.path.abspath(self.path(key)) for key in ("csv", "markdown", "json", "map_plot", "loss_plot")}
        if best is not None:
            from keras_frcnn.training.plots import plot_per_class_precision

            metrics = self._read_json(os.path.join(best["run"], "metrics.json"))
            plot_per_class_precision(metrics, self.path("best_per_class_precision"))
            files["best_per_class_precision"] = os.path.abspath(self.path("best_per_class_precision"))
        elif os.path.exists(self.path("best_per_class_precision")):
            os.unlink(self.path("best_per_class_precision"))  # no run has metrics: no stale plot
        write_text(self.path("markdown"), markdown_report(rows, best, eval_set, description))
        report = {
            "study": os.path.abspath(self.folder), "evaluation": eval_set,
            "budget_minutes": self.budget_minutes, "budget_seconds_per_run": self.share_seconds,
            "best_run": None if best is None else best["run"],
            "runs": [{**row, "paths": _run_paths(row["run"])} for row in rows],
            "files": files,
        }
        write_json(self.path("json"), report)
        return report


def _run_paths(folder: str) -> dict:
    run = RunFolder(folder)
    paths = {"folder": run.root, "best_model": run.best, "metrics": run.path("metrics.json"), "history": run.history,
             "config": run.config, "loss_curve": run.loss_curve}
    return {key: os.path.abspath(path) for key, path in paths.items()}


def table_row(spec: RunSpec, status: RunStatus, metrics: dict | None) -> dict:
    """The comparison table's row of a run: the numbers of its metrics.json, state.json and history.csv."""
    state = spec.run.read_state() or {}
    history = spec.run.read_history()
    if status.kind == "failed":
        text = "failed"
    elif status.kind == "cut":
        text = "cut by budget"
    else:
        text = "done" if status.epoch >= spec.options.num_epochs else "unfinished"
    voc = None if metrics is None else metrics["voc"]["mAP"]
    coco = None if metrics is None else metrics["coco"]["AP"]
    return {
        "backbone": spec.network, "optimizer": spec.optimizer, "hyperparameters": hyperparameters_text(spec.settings),
        "voc_mAP": None if voc is None else float(voc), "coco_AP": None if coco is None else float(coco),
        "best_epoch": state.get("best_epoch"), "epochs_trained": int(state.get("epoch", 0)),
        "num_epochs": spec.options.num_epochs,
        "train_time_s": round(float(history["seconds"].sum()), 2) if len(history) else 0.0,
        "cut_by_budget": status.kind == "cut",
        "status": text, "run": spec.folder,
    }


def best_row(rows: Sequence[dict]) -> dict | None:
    """The row with the highest VOC mAP (the first of equals); None if no run has one."""
    scored = [row for row in rows if row["voc_mAP"] is not None]
    return max(scored, key=lambda row: row["voc_mAP"]) if scored else None


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images`` (``nouns``: the plural, if not ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _end_summary(row: dict, eval_name: str) -> str:
    best = "" if row["best_epoch"] is None else f", best epoch {row['best_epoch']}"
    return (f"{row['status']}: {row['epochs_trained']}/{row['num_epochs']} epochs{best}; {eval_name} "
            f"VOC mAP {_number(row['voc_mAP'])}, COCO AP {_number(row['coco_AP'])}; "
            f"train time {row['train_time_s']:.0f} s")


def markdown_report(rows: Sequence[dict], best: dict | None, eval_set: dict, description: Mapping[str, str]) -> str:
    """``comparison.md``: what was compared, the table, the best run."""
    lines = ["# Optimizer comparison", ""]
    lines += [f"- {key}: {value}" for key, value in description.items()]
    if eval_set.get("path"):
        where = f"{eval_set['path']}, {plural(eval_set['images'], 'image')}"
    else:
        where = (f"the study's validation split, {plural(eval_set['images'], 'image')}; best.keras was chosen on it, "
                 "so give --test for an unbiased comparison")
    lines += [f"- evaluated on: {eval_set['name']} set ({where}); best.keras of each run, "
              f"IoU {EVAL_IOU}, precision at score {EVAL_SCORE_THRESHOLD}",
              "- train time: the sum of the epochs' times in the run's history.csv (training and validation)", ""]
    columns = [c for c in _MARKDOWN_HEADINGS]
    lines.append("| " + " | ".join(_MARKDOWN_HEADINGS[c] for c in columns) + " |")
    lines.append("|" + "|".join(" ---: " if c in ("voc_mAP", "coco_AP", "best_epoch", "epochs_trained", "train_time_s")
                                else " --- " for c in columns) + "|")
    for row in rows:
        cells = {
            **row, "voc_mAP": _number(row["voc_mAP"]), "coco_AP": _number(row["coco_AP"]),
            "best_epoch": "-" if row["best_epoch"] is None else str(row["best_epoch"]),
            "epochs_trained": f"{row['epochs_trained']}/{row['num_epochs']}",
            "train_time_s": f"{row['train_time_s']:.0f}", "cut_by_budget": "yes" if row["cut_by_budget"] else "no",
            "hyperparameters": f"`{row['hyperparameters']}`",
        }
        lines.append("| " + " | ".join(str(cells[c]) for c in columns) + " |")
    lines.append("")
    if best is None:
        lines.append("No run has a model to evaluate yet.")
    else:
        ties = sum(1 for row in rows if row["voc_mAP"] == best["voc_mAP"])
        tie = f" (a tie of {ties} runs: the first is named)" if ties > 1 else ""
        lines.append(f"Best run: **{best['backbone']} + {best['optimizer']}** (VOC mAP {_number(best['voc_mAP'])}), "
                     f"`{best['run']}`{tie}.")
    lines += ["", f"Figures: `{FILES['map_plot']}` (mAP per optimizer and backbone), `{FILES['loss_plot']}` "
              f"(loss curves), `{FILES['best_per_class_precision']}` (per-class precision of the best run).", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots
def _optimizer_colours(optimizers: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(optimizers)}


def plot_map_comparison(table: pd.DataFrame, out_png: str, *, title: str = "VOC mAP") -> None:
    """The paper's Fig. 3/6: a bar of VOC mAP per optimizer, one group of bars per backbone."""
    from matplotlib.figure import Figure

    from keras_frcnn.training.plots import save_figure_atomically

    backbones = list(dict.fromkeys(table["backbone"]))
    optimizers = list(dict.fromkeys(table["optimizer"]))
    colours = _optimizer_colours(optimizers)
    width = 0.8 / max(len(optimizers), 1)
    figure = Figure(figsize=(max(5.0, 1.2 + 0.45 * len(backbones) * len(optimizers) + 0.6 * len(backbones)), 4.0),
                    layout="constrained")
    axes = figure.add_subplot()
    for j, optimizer in enumerate(optimizers):
        xs, heights = [], []
        for i, backbone in enumerate(backbones):
            match = table[(table["backbone"] == backbone) & (table["optimizer"] == optimizer)]
            if match.empty:
                continue
            value = match["voc_mAP"].iloc[0]
            x = i - 0.4 + width * (j + 0.5)
            missing = value is None or pd.isna(value)
            xs.append(x)
            heights.append(0.0 if missing else float(value))
            axes.text(x, (0.0 if missing else float(value)) + 0.01, "n/a" if missing else f"{float(value):.3f}",
                      ha="center", va="bottom", fontsize=7, rotation=90 if len(optimizers) > 4 else 0)
        axes.bar(xs, heights, width * 0.92, label=optimizer, color=colours[optimizer])
    axes.set_xticks(np.arange(len(backbones)), backbones)
    axes.set_xlim(-0.6, len(backbones) - 0.4)
    axes.set_ylim(0.0, 1.08)
    axes.set_ylabel("VOC mAP@0.5")
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(title="optimizer", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside the bars
    save_figure_atomically(figure, out_png)


def plot_loss_comparison(histories: Mapping[str, tuple[str, str, pd.DataFrame]], out_png: str) -> None:
    """The paper's Fig. 4/7: total training loss per epoch of every run, the optimizers overlaid,
    one panel per backbone; ``histories`` maps a run to (backbone, optimizer, its history)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from keras_frcnn.training.plots import save_figure_atomically

    backbones = list(dict.fromkeys(backbone for backbone, _, _ in histories.values())) or ["-"]
    colours = _optimizer_colours(list(dict.fromkeys(optimizer for _, optimizer, _ in histories.values())))
    figure = Figure(figsize=(4.5 * len(backbones) + 0.5, 4.0), layout="constrained")
    panels = figure.subplots(1, len(backbones), squeeze=False, sharey=True)[0]
    positive = False
    for axes, backbone in zip(panels, backbones):
        for backbone_of, optimizer, history in histories.values():
            if backbone_of != backbone or not len(history):
                continue
            loss = history["loss"].to_numpy(dtype=float)
            positive = positive or bool(np.any(loss > 0))
            axes.plot(history["epoch"].to_numpy(), loss, "-", marker="o" if len(history) < 30 else None,
                      color=colours[optimizer], label=optimizer)
        axes.set_title(backbone)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(title="optimizer", fontsize=8)
    panels[0].set_ylabel("training loss (Eq. 1)")
    if positive:
        panels[0].set_yscale("log")
    figure.suptitle("Training loss per epoch")
    save_figure_atomically(figure, out_png)
