"""Evaluation plots, drawn with matplotlib's Agg canvas (no pyplot, no window) and written
atomically: a temporary file in the target folder, then ``os.replace``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from keras_frcnn.atomic import atomic_path


def save_figure_atomically(figure: Figure, out_png: str | os.PathLike, *, dpi: int = 120) -> None:
    """Write ``figure`` as a PNG; a reader never sees a partial file, a failure leaves none."""
    FigureCanvasAgg(figure)  # attaches the Agg canvas to the figure
    with atomic_path(out_png) as temp_path:
        figure.savefig(temp_path, format="png", dpi=dpi)


def _value(number: float | None) -> float:
    return np.nan if number is None else float(number)


def plot_per_class_precision(metrics_dict: dict, out_png: str | os.PathLike) -> None:
    """Bars per class (class order) of VOC AP and precision at the score threshold, from the
    dict of :func:`keras_frcnn.evaluation.evaluate` (or its ``"voc"`` part). Classes without
    ground truth are marked "no gt"."""
    voc = metrics_dict.get("voc", metrics_dict)
    per_class = voc["per_class"]
    names = list(per_class)
    ap = np.array([_value(per_class[n]["ap"]) for n in names])
    precision = np.array([_value(per_class[n]["precision"]) for n in names])
    x = np.arange(len(names))
    figure = Figure(figsize=(max(6.0, 0.28 * len(names) + 1.5), 4.0), layout="constrained")
    axes = figure.add_subplot()
    width = 0.4
    axes.bar(x - width / 2, np.nan_to_num(ap), width, label="AP (VOC, all-point)", color="tab:blue")
    axes.bar(x + width / 2, np.nan_to_num(precision), width, label="precision at threshold", color="tab:orange")
    for i in np.flatnonzero(np.isnan(ap)):
        axes.text(i, 0.02, "no gt", rotation=90, ha="center", va="bottom", fontsize=6, color="grey")
    axes.set_xticks(x, names, rotation=90, fontsize=7)
    axes.set_xlim(-0.6, len(names) - 0.4)
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("AP / precision")
    mean_ap = voc.get("mAP")
    axes.set_title("Per-class AP and precision" + ("" if mean_ap is None else f" (mAP {mean_ap:.3f})"))
    axes.legend(loc="lower right", fontsize=7)
    axes.grid(axis="y", alpha=0.3)
    save_figure_atomically(figure, out_png)


def plot_confusion(matrix: pd.DataFrame, out_png: str | os.PathLike) -> None:
    """The confusion matrix of :func:`keras_frcnn.evaluation.confusion_summary` as a heat map
    (colour on a log scale, non-zero counts written in the cells)."""
    counts = matrix.to_numpy(dtype=np.float64)
    rows, cols = counts.shape
    size = max(4.0, 0.22 * max(rows, cols) + 2.0)
    figure = Figure(figsize=(size, size), layout="constrained")
    axes = figure.add_subplot()
    shown = np.log10(1.0 + counts)
    mesh = axes.pcolormesh(
        np.arange(cols + 1) - 0.5, np.arange(rows + 1) - 0.5, shown,
        cmap="Blues", norm=Normalize(0.0, max(shown.max(), 1.0)),
    )
    axes.set_xlim(-0.5, cols - 0.5)
    axes.set_ylim(rows - 0.5, -0.5)  # first class at the top
    axes.set_xticks(np.arange(cols), [str(c) for c in matrix.columns], rotation=90, fontsize=6)
    axes.set_yticks(np.arange(rows), [str(r) for r in matrix.index], fontsize=6)
    axes.set_xlabel(matrix.columns.name or "predicted")
    axes.set_ylabel(matrix.index.name or "ground truth")
    threshold = shown.max() / 2.0
    for r, c in zip(*np.nonzero(counts)):
        axes.text(c, r, f"{int(counts[r, c])}", ha="center", va="center", fontsize=5,
                  color="white" if shown[r, c] > threshold else "black")
    figure.colorbar(mesh, ax=axes, label="log10(1 + count)", shrink=0.6)
    axes.set_title("Confusion (ground truth -> predicted)")
    save_figure_atomically(figure, out_png)


def plot_loss_curve(history: pd.DataFrame, out_png: str | os.PathLike) -> None:
    """Loss per epoch (the paper's Fig. 4/7): the total and the four terms of Eq. 1, and the
    validation mAP on a second axis when present."""
    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    epochs = history["epoch"].to_numpy()
    for column, style in (("loss", "-"), ("rpn_cls", "--"), ("rpn_reg", "--"), ("head_cls", ":"), ("head_reg", ":")):
        if column in history:
            axes.plot(epochs, history[column].to_numpy(), style, marker="o" if len(epochs) < 30 else None,
                      label=column, linewidth=2.0 if column == "loss" else 1.2)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    if "val_mAP" in history and history["val_mAP"].notna().any():
        right = axes.twinx()
        right.plot(epochs, history["val_mAP"].to_numpy(), "k-", marker="s", markersize=3, label="val mAP")
        right.set_ylabel("validation mAP (VOC)")
        right.set_ylim(0, 1)
        right.legend(loc="upper right")
    axes.legend(loc="upper left" if "val_mAP" in history else "best", fontsize=8)
    axes.set_title("Training loss per epoch")
    figure.tight_layout()
    save_figure_atomically(figure, out_png)
