"""Which class is taken for which: a class-agnostic matching of detections to ground truth.

Detections with ``score >= score_threshold`` are matched, class-agnostically, by the rule of
:mod:`keras_frcnn.evaluation.matching` (descending score, highest-IoU unmatched box of ANY class
at IoU >= ``iou_threshold``), so each ground-truth box is counted once: rows (ground truth) sum
to the number of boxes of the class. Rows are the classes plus ``background`` (a detection that
matches no box, including a second detection of an already matched box); columns are the
classes plus ``missed`` (a box no detection matched). Detections matched to difficult boxes and
difficult boxes themselves are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation.matching import NO_MATCH, check_threshold, class_name_tuple, greedy_match, prepare_images
from keras_frcnn.inference.karyotype import chromosome_of

BACKGROUND = "background"
MISSED = "missed"


class ConfusionSummary(NamedTuple):
    """``matrix``: counts, index = ground truth (+ background), columns = predicted (+ missed);
    ``top_confusions``: ``(gt class, predicted class, count)`` for gt != predicted, most first."""

    matrix: pd.DataFrame
    top_confusions: list[tuple[str, str, int]]


def confusion_summary(
    ground_truth: Sequence[ImageRecord],
    detections: Sequence[Detections],
    class_names: Sequence[str] | ClassMap,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    *,
    top: int = 10,
) -> ConfusionSummary:
    """Confusion counts of a data set (see the module docstring) and its ``top`` confusions."""
    names = class_name_tuple(class_names)
    iou_threshold = check_threshold("iou_threshold", iou_threshold)
    c = len(names)
    counts = np.zeros((c + 1, c + 1), dtype=np.int64)  # last row: background, last column: missed
    for image in prepare_images(ground_truth, detections, names):
        above = image.det_scores >= score_threshold
        match = greedy_match(image, iou_threshold, class_aware=False, det_mask=above)
        matched = match != NO_MATCH
        unmatched_det = above & ~matched
        np.add.at(counts[c], image.det_classes[unmatched_det], 1)
        hit = np.flatnonzero(matched)
        hit = hit[~image.gt_difficult[match[hit]]]  # matched to a difficult box: left out
        np.add.at(counts, (image.gt_classes[match[hit]], image.det_classes[hit]), 1)
        found = np.zeros(len(image.gt_classes), dtype=bool)
        found[match[matched]] = True
        np.add.at(counts[:, c], image.gt_classes[~found & ~image.gt_difficult], 1)
    matrix = pd.DataFrame(
        counts,
        index=pd.Index([*names, BACKGROUND], name="ground truth"),
        columns=pd.Index([*names, MISSED], name="predicted"),
    )
    return ConfusionSummary(matrix, top_confusions(matrix, top))


def top_confusions(matrix: pd.DataFrame, top: int | None = 10) -> list[tuple[str, str, int]]:
    """Class-to-class confusions (ground truth != predicted, no background/missed), most frequent
    first, ties in class order."""
    classes = [name for name in matrix.columns if name != MISSED]
    pairs = [
        (gt, pred, int(matrix.at[gt, pred]))
        for gt in classes
        for pred in classes
        if gt != pred and matrix.at[gt, pred] > 0
    ]
    pairs.sort(key=lambda pair: -pair[2])  # stable: ties stay in class order
    return pairs if top is None else pairs[:top]


@dataclass(frozen=True)
class SideConfusion:
    """How confusions split: ``N-l``/``N-r`` swapped (same chromosome, other side), a side
    against ``N-?`` (same chromosome, side unknown), or another chromosome altogether."""

    correct: int
    left_right: int
    side_unknown: int
    other_chromosome: int

    @property
    def same_chromosome(self) -> int:
        return self.left_right + self.side_unknown

    @property
    def confused(self) -> int:
        return self.same_chromosome + self.other_chromosome

    @property
    def fraction_same_chromosome(self) -> float | None:
        """Share of confusions that stay within the chromosome pair (None without confusions)."""
        return self.same_chromosome / self.confused if self.confused else None

    def as_dict(self) -> dict:
        return {
            "correct": self.correct,
            "left_right": self.left_right,
            "side_unknown": self.side_unknown,
            "same_chromosome": self.same_chromosome,
            "other_chromosome": self.other_chromosome,
            "fraction_same_chromosome": self.fraction_same_chromosome,
        }


def side_confusion(matrix: pd.DataFrame) -> SideConfusion:
    """Split the class-to-class counts of a confusion matrix by chromosome and side."""
    classes = [name for name in matrix.columns if name != MISSED]
    correct = left_right = side_unknown = other = 0
    for gt in classes:
        for pred in classes:
            count = int(matrix.at[gt, pred])
            if count == 0:
                continue
            if gt == pred:
                correct += count
                continue
            gt_chromosome, pred_chromosome = chromosome_of(gt), chromosome_of(pred)
            if gt_chromosome is None or gt_chromosome != pred_chromosome:
                other += count
            elif gt.endswith("-?") or pred.endswith("-?"):
                side_unknown += count
            else:
                left_right += count
    return SideConfusion(correct, left_right, side_unknown, other)
