"""A training run's folder: where every file lives, and loading a trained model from it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pandas as pd

from keras_frcnn.errors import UserError


@dataclass(frozen=True)
class RunFolder:
    """The files of one run (see the README's "Run folder" section)."""

    root: str

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    @property
    def config(self) -> str:
        return self.path("config.json")

    @property
    def class_map(self) -> str:
        return self.path("class_map.json")

    @property
    def split(self) -> str:
        return self.path("split.json")

    @property
    def state(self) -> str:
        return self.path("state.json")

    @property
    def history(self) -> str:
        return self.path("history.csv")

    @property
    def last(self) -> str:
        return self.path("last.keras")

    @property
    def best(self) -> str:
        return self.path("best.keras")

    @property
    def checkpoints(self) -> str:
        return self.path("checkpoints")

    @property
    def logs(self) -> str:
        return self.path("logs")

    @property
    def loss_curve(self) -> str:
        return self.path("loss_curve.png")

    def exists(self) -> bool:
        return os.path.exists(self.state)

    # -- readers: the only code that reads these files
    def read_state(self) -> dict | None:
        """The committed ``state.json`` (None: no epoch committed yet)."""
        if not self.exists():
            return None
        try:
            with open(self.state, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{self.state}: cannot read the run state ({err})") from None

    def read_config(self) -> dict:
        """``config.json``: model config, training options, optimizer, data."""
        try:
            with open(self.config, encoding="utf-8") as handle:
                return json.load(handle)
        except OSError:
            raise UserError(f"{self.config}: not found; is {self.root} a run folder?") from None
        except json.JSONDecodeError as err:
            raise UserError(f"{self.config}:{err.lineno}: invalid JSON ({err.msg})") from None

    def read_split(self) -> dict:
        """``split.json``: ``seed``, ``train`` and ``val`` image paths."""
        try:
            with open(self.split, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{self.split}: cannot read the saved split ({err})") from None

    def read_history(self, last_epoch: int | None = None) -> pd.DataFrame:
        """``history.csv`` up to ``last_epoch`` (default: the committed epoch; a row written after
        the commit point is dropped); empty when there is none."""
        if last_epoch is None:
            state = self.read_state()
            last_epoch = 0 if state is None else int(state["epoch"])
        if not os.path.exists(self.history):
            return pd.DataFrame(columns=["epoch", "loss", "seconds"])
        frame = pd.read_csv(self.history)
        return frame[frame["epoch"] <= last_epoch].reset_index(drop=True)


def resolve_model_path(path: str) -> str:
    """A ``.keras`` file, or a run folder (its ``best.keras``, else ``last.keras``)."""
    if os.path.isdir(path):
        run = RunFolder(path)
        for candidate in (run.best, run.last):
            if os.path.isfile(candidate):
                return candidate
        raise UserError(f"{path}: no best.keras or last.keras in this run folder (has training finished an epoch?)")
    if not os.path.isfile(path):
        raise UserError(f"{path}: model not found (give a .keras file or a run folder)")
    if not path.endswith(".keras"):
        raise UserError(f"{path}: not a .keras model file")
    return path


def load_model(path: str, *, with_optimizer: bool = False):
    """Load a trained :class:`~keras_frcnn.model.faster_rcnn.FasterRCNN` from a ``.keras`` file or run folder.

    Without ``with_optimizer`` (inference, export, warm starts) the optimizer and its state in the
    file are not read, and the model is built without drawing random weights first: a lean load
    (for VGG16 about 2 GB less at the peak). ``with_optimizer=True`` restores the compiled model
    with its optimizer state, to resume training.
    """
    import keras

    from keras_frcnn.model.faster_rcnn import FasterRCNN  # also registers the serialisable classes
    from keras_frcnn.training import fused_adamax  # noqa: F401  (registers the optimizer checkpoints name)
    from keras_frcnn.training.lean_load import lean_kernel_loading

    model_path = resolve_model_path(path)
    saved = _saved_config(model_path)
    _check_model_format(model_path, saved)
    try:
        if with_optimizer or saved.get("class_name") != "FasterRCNN":
            return keras.models.load_model(model_path, safe_mode=True, compile=with_optimizer)
        model = FasterRCNN.from_config({**saved["config"], "initialize": False})
        with lean_kernel_loading(model):  # fc6 without transient copies of its 392 MiB (VGG16)
            model.load_weights(model_path)
        return model
    except Exception as err:  # keras raises many types for corrupt or foreign files
        raise UserError(f"{model_path}: cannot load model ({type(err).__name__}: {str(err).splitlines()[0]})") from None


def _saved_config(model_path: str) -> dict:
    """The ``config.json`` of a ``.keras`` archive ({} when the file is not one)."""
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as archive:
            return json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}


def _check_model_format(model_path: str, saved: dict) -> None:
    """Refuse a ``.keras`` file (its ``saved`` config) of another
    :data:`~keras_frcnn.model.faster_rcnn.MODEL_FORMAT`, naming both (other files pass on to Keras,
    whose error is reported as it is)."""
    from keras_frcnn import __version__
    from keras_frcnn.model.faster_rcnn import MODEL_FORMAT

    if saved.get("class_name") != "FasterRCNN":
        return
    found = saved.get("config", {}).get("format", 1)
    if found != MODEL_FORMAT:
        made_by = "keras_frcnn 0.1" if found == 1 else "another keras_frcnn version"
        raise UserError(f"{model_path}: saved by {made_by} (model format {found}); keras_frcnn {__version__} "
                        f"reads format {MODEL_FORMAT} (the RPN and RoI heads are layers of their own since 0.2): "
                        "retrain, or load it with the version that saved it")
