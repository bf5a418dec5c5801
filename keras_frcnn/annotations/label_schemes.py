"""Label schemes: the chromosome classes as annotated (``as-is``) or the paper's 49 labels (``paper49``).

The paper names the two members of a pair by their place in the karyogram: the *left* member is
the one whose box centre has the smaller x. :func:`to_paper49` derives those labels from a
24-class karyogram (``1``..``22``, ``X``, ``Y``), image by image:

- two copies of a chromosome: the smaller centre x is ``N-l``, the other ``N-r``;
- one copy (a single X, or a lost homologue): ``N-l``, as the paper's Table 1 counts a single X;
- ``Y`` stays ``Y`` (it has no side), however many there are;
- three or more copies (a trisomy): the leftmost is ``N-l``, the rightmost ``N-r``; a copy between
  them cannot be told left or right, so it becomes ``N-?`` where the 49 labels have that
  exception (``5-?``, ``X-?``), and otherwise keeps the label of the nearer end (by centre x) and
  is marked *difficult*: it still trains the detector as a chromosome of its class, and the
  metrics neither reward nor punish detecting it (the Pascal VOC rule for difficult boxes);
- labels already in the 49 scheme (or other names) are left as they are.

Detections of a 24-class model get their sides the same way (:func:`paper49_detections`): the
rule above among the detections that count as chromosomes (those a draft karyotype counts), and
every other detection the side of the nearest counted one of its class.

Only karyograms have a left and a right; a metaphase spread has no sides (use ``as-is``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from keras_frcnn.annotations.classes import chromosome_labels, chromosome_of
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.errors import UserError

SCHEMES = ("as-is", "paper49")
"""``--labels`` values: the labels as annotated, or the paper's 49 labels derived by position."""


@dataclass(frozen=True)
class SchemeReport:
    """What :func:`to_paper49` did: boxes relabelled, and the images with three or more copies of a
    chromosome (their extra copies are ``N-?`` or difficult)."""

    relabelled_boxes: int = 0
    images_with_extra_copies: int = 0
    extra_copies: int = 0

    def note(self) -> str | None:
        """The check summary's line about extra copies, or None when there were none."""
        if not self.images_with_extra_copies:
            return None
        return (f"paper49: {self.images_with_extra_copies} images have 3 or more copies of a chromosome; "
                f"{self.extra_copies} middle copies cannot be told left or right (N-? where the 49 labels "
                "have it, else difficult)")


def check_scheme(name: str) -> str:
    """``name`` if it is a scheme, else a :class:`UserError` listing them."""
    if name not in SCHEMES:
        raise UserError(f"unknown label scheme {name!r} (choose from {', '.join(SCHEMES)})")
    return name


def to_paper49(records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], SchemeReport]:
    """Each record with its 24-class chromosome labels turned into the paper's 49 (module docstring)."""
    out, relabelled, touched, extra = [], 0, 0, 0
    for record in records:
        labels, difficult, counts = paper49_labels(record.boxes, record.labels)
        relabelled += sum(1 for old, new in zip(record.labels, labels) if old != new)
        touched += counts > 0
        extra += counts
        out.append(replace(record, labels=labels, difficult=record.difficult | difficult))
    return out, SchemeReport(relabelled, touched, extra)


def paper49_labels(boxes: np.ndarray, labels: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray, int]:
    """The 49-scheme labels of one image's boxes, which boxes become difficult, and how many middle
    copies (of a chromosome present three or more times) there were."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    new = list(labels)
    difficult = np.zeros(len(new), bool)
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    groups: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        if label != "Y" and chromosome_of(label) == label:  # a 24-class label with a side to find
            groups.setdefault(label, []).append(index)
    sided = set(chromosome_labels())
    middle_copies = 0
    for chromosome, members in groups.items():
        order = sorted(members, key=lambda i: (centres[i], i))
        new[order[0]] = f"{chromosome}-l"
        if len(order) >= 2:
            new[order[-1]] = f"{chromosome}-r"
        left, right = centres[order[0]], centres[order[-1]]
        for index in order[1:-1]:
            middle_copies += 1
            if f"{chromosome}-?" in sided:
                new[index] = f"{chromosome}-?"
            else:
                new[index] = f"{chromosome}-l" if centres[index] - left <= right - centres[index] else f"{chromosome}-r"
                difficult[index] = True
    return tuple(new), difficult, middle_copies


def paper49_detections(detections: Detections, counted: np.ndarray) -> Detections:
    """A 24-class model's detections of one karyogram in the 49 scheme: the position rule among the
    ``counted`` detections (indices: the chromosomes, e.g. :func:`keras_frcnn.inference.karyotype.chromosome_indices`);
    every other detection takes the label of the nearest counted one of its class (by box centre x),
    or ``N-l`` when its class has none."""
    counted = np.asarray(counted, np.int64).reshape(-1)
    labels = list(detections.labels)
    sided, _, _ = paper49_labels(detections.boxes[counted], [labels[i] for i in counted])
    centres = (detections.boxes[:, 0] + detections.boxes[:, 2]) / 2
    for index, label in zip(counted, sided):
        labels[index] = label
    is_counted = np.zeros(len(labels), bool)
    is_counted[counted] = True
    for index in np.flatnonzero(~is_counted):
        label = labels[index]
        if label == "Y" or chromosome_of(label) != label:
            continue
        same = [i for i in counted if chromosome_of(labels[i]) == label]
        if same:
            nearest = min(same, key=lambda i: abs(centres[i] - centres[index]))
            labels[index] = labels[nearest]
        else:
            labels[index] = f"{label}-l"
    return Detections(detections.path, detections.boxes, detections.scores, labels)
