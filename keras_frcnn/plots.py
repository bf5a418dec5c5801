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
