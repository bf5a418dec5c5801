"""A draft karyotype of one metaphase from its chromosome labels: counts, sex chromosomes,
gains/losses and a draft ISCN string, always to be reviewed by a cytogeneticist.

Labels are ``N-l``, ``N-r``, ``N-?`` (N = 1..22, X; all count for chromosome N) and ``Y``.
Gains and losses are relative to the normal diploid set given the sex chromosomes: two of each
autosome, and XY when a Y is present, XX otherwise (so 45,X has the loss ``-X`` and 47,XXY the
gain ``+X``). In the ISCN string a sex-chromosome change is expressed by the sex chromosome
complement itself (``45,X``, ``47,XXY``), autosomal gains and losses follow in ascending order
(``48,XXY,+21``); only when no sex chromosome was found are ``-X,-X`` written out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from keras_frcnn.annotations.classes import chromosome_classes, chromosome_of
from keras_frcnn.inference.detections import Detections
from keras_frcnn.model.iou import pairwise_iou

CHROMOSOMES: tuple[str, ...] = chromosome_classes()
AUTOSOMES: tuple[str, ...] = CHROMOSOMES[:22]
NORMAL_TOTAL = 46
ISCN_STATUS = "draft, needs review"


@dataclass(frozen=True)
class KaryotypeSummary:
    """The draft karyotype of one image; ``iscn_status`` is always ``"draft, needs review"``.

    ``needs_review`` is True when there are review items (low-confidence, ``?`` or unrecognised
    labels, no sex chromosome) or the karyotype is not a normal 46,XX / 46,XY.
    """

    path: str
    counts: dict[str, int]  # every chromosome "1".."22", "X", "Y", in that order
    total: int
    sex_chromosomes: str
    gains: tuple[str, ...]
    losses: tuple[str, ...]
    iscn_draft: str
    review_items: tuple[str, ...]
    needs_review: bool
    iscn_status: str = ISCN_STATUS


def _changes(chromosome: str, count: int, expected: int) -> list[str]:
    sign = "+" if count > expected else "-"
    return [f"{sign}{chromosome}"] * abs(count - expected)


def summarise_karyotype(
    labels: Sequence[str], scores: Sequence[float], *, low_confidence: float = 0.5, path: str = ""
) -> KaryotypeSummary:
    """Summarise the labels (and detection scores) found in one metaphase image."""
    labels = [str(label) for label in labels]
    scores = [float(score) for score in scores]
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    counts = dict.fromkeys(CHROMOSOMES, 0)
    review: list[str] = []
    for index, (label, score) in enumerate(zip(labels, scores)):
        chromosome = chromosome_of(label)
        problems = []
        if chromosome is None:
            problems.append("not a chromosome label, not counted")
        else:
            counts[chromosome] += 1
            if label.strip().endswith("-?"):
                problems.append("side not determined")
        if score < low_confidence:
            problems.append(f"low confidence (< {low_confidence:g})")
        if problems:
            review.append(f"{label} (#{index}, score {score:.2f}): {', '.join(problems)}")

    sex = "X" * counts["X"] + "Y" * counts["Y"]
    expected_x, expected_y = (1, 1) if counts["Y"] else (2, 0)
    sex_changes = _changes("X", counts["X"], expected_x) + _changes("Y", counts["Y"], expected_y)
    autosome_changes = [change for n in AUTOSOMES for change in _changes(n, counts[n], 2)]
    changes = sex_changes + autosome_changes
    total = sum(counts.values())
    if total == 0:  # nothing to karyotype: no list of 46 losses
        review.append("no chromosomes found")
        changes, iscn_parts = [], ["0"]
    elif sex:
        iscn_parts = [str(total), sex, *autosome_changes]
    else:
        review.append("no sex chromosome detected")
        iscn_parts = [str(total), *sex_changes, *autosome_changes]
    return KaryotypeSummary(
        path=path,
        counts=counts,
        total=total,
        sex_chromosomes=sex,
        gains=tuple(c for c in changes if c.startswith("+")),
        losses=tuple(c for c in changes if c.startswith("-")),
        iscn_draft=",".join(iscn_parts),
        review_items=tuple(review),
        needs_review=bool(review or changes or total != NORMAL_TOTAL),
    )


def chromosome_indices(detections: Detections, *, min_score: float = 0.3, overlap_iou: float = 0.5) -> np.ndarray:
    """Indices (best score first) of the detections :func:`select_chromosomes` keeps."""
    order = np.argsort(-detections.scores, kind="stable")
    order = order[detections.scores[order] >= min_score]
    iou = pairwise_iou(detections.boxes[order], detections.boxes[order])
    kept: list[int] = []
    for position in range(len(order)):
        if not any(iou[position, other] >= overlap_iou for other in kept):
            kept.append(position)
    return order[kept]


def select_chromosomes(detections: Detections, *, min_score: float = 0.3, overlap_iou: float = 0.5) -> Detections:
    """The detections that count as chromosomes: score >= ``min_score``, and where boxes of
    different labels overlap (IoU >= ``overlap_iou``: one chromosome read two ways) only the
    best-scoring one."""
    chosen = chromosome_indices(detections, min_score=min_score, overlap_iou=overlap_iou)
    return Detections(detections.path, detections.boxes[chosen], detections.scores[chosen],
                      [detections.labels[i] for i in chosen])


def summarise_detections(detections: Detections, *, low_confidence: float = 0.5, min_score: float = 0.3,
                         overlap_iou: float = 0.5) -> KaryotypeSummary:
    """:func:`summarise_karyotype` of the chromosomes :func:`select_chromosomes` finds in one image."""
    chosen = select_chromosomes(detections, min_score=min_score, overlap_iou=overlap_iou)
    return summarise_karyotype(chosen.labels, chosen.scores.tolist(), low_confidence=low_confidence,
                               path=detections.path)


def karyotype_table(summaries: Iterable[KaryotypeSummary]) -> pd.DataFrame:
    """One row per image, the columns of ``karyotype.csv``."""
    columns = [
        "filepath", "total", "sex_chromosomes", "gains", "losses", "iscn_draft", "needs_review", "review_items",
        *(f"count_{c}" for c in CHROMOSOMES),
    ]
    rows = [
        {
            "filepath": s.path,
            "total": s.total,
            "sex_chromosomes": s.sex_chromosomes,
            "gains": ",".join(s.gains),
            "losses": ",".join(s.losses),
            "iscn_draft": s.iscn_draft,
            "needs_review": s.needs_review,
            "review_items": "; ".join(s.review_items),
            **{f"count_{c}": s.counts[c] for c in CHROMOSOMES},
        }
        for s in summaries
    ]
    return pd.DataFrame(rows, columns=columns)
