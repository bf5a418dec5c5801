"""``report.html``: one self-contained page to review the detections and draft karyotypes of a
run in a browser (``test_frcnn.py`` and ``measure_map.py`` write it beside their other outputs).

:func:`write_review_page` writes, into one folder, ``report.html`` and the pictures it shows,
linked relatively: ``report_images/<name>.jpg`` (each image, downscaled to at most ``max_side``
pixels) and ``report_images/thumbs/<name>.jpg``. The folder can be moved, zipped or opened from
``file://``: no server, nothing fetched from the network (inline CSS and script, system fonts).

The page has:

- a summary: the model (:func:`describe_model`: network, classes, training data and date, read
  from the run folder's ``config.json`` when there is one), the number of images, the time per
  image and, with ground truth, VOC mAP, COCO AP, AP50 and AP75;
- a thumbnail index, then one section per image: the image with its detections drawn as an SVG
  overlay (sharp at any zoom; label and score in each box's ``<title>``, shown on hover), boxes
  scoring below ``low_confidence`` dashed (as ``test_frcnn.py --low-confidence``), one score
  slider for the page that hides and shows boxes live, and beside the image the count and the
  draft karyotype (:class:`~keras_frcnn.inference.karyotype.KaryotypeSummary`);
- with ground truth: the per-class table (sortable by clicking a column header), the confusion
  matrix as a heat map and, per image, the outcome of every detection by the confusion matrix's
  own class-agnostic matching (:func:`keras_frcnn.evaluation.matching.greedy_match`, IoU >=
  ``iou_threshold``, score >= ``eval_score_threshold``): correct, wrong label, or false
  (matches no chromosome), and the missed chromosomes (ground truth no detection matched), each
  in its own colour. Summed over the images these are the counts of ``confusion.csv``.

Large folders stay quick. Everything is computed here (matching, karyotypes, label placement,
colours); the HTML holds each section's frame (header, picture, count and draft karyotype) and
one JSON block with the boxes and details of every image, which the page's small script turns
into SVG and HTML when the section comes near the screen (and for all sections before printing:
``reviewPage.drawAll()``). The slider counts from that data, so its numbers are exact for
sections not drawn yet. Pictures and thumbnails load only when near the screen, and the browser
lays out a section only when it is (``content-visibility: auto``). ``benchmarks/bench_report.py``
times a 500-image page (well under two seconds to open).
"""

from __future__ import annotations

import datetime
import html
import json
import os
import re
import string
import urllib.parse
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Sequence

import cv2
import numpy as np

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.images import load_image
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.atomic import atomic_path, write_text
from keras_frcnn.inference.detections import Detections
from keras_frcnn.errors import UserError
from keras_frcnn.inference.karyotype import CHROMOSOMES, KaryotypeSummary, summarise_detections, summarise_karyotype
from keras_frcnn.inference.report import distinct_file_names, label_colour

REPORT_NAME = "report.html"
IMAGES_DIR = "report_images"
THUMBS_DIR = f"{IMAGES_DIR}/thumbs"

# Outcome of a detection against the ground truth (the CSS class of its box is "o-" + the code).
CORRECT, WRONG, FALSE, BELOW, IGNORED = "c", "w", "f", "b", "i"
OUTCOME_NAMES = {CORRECT: "correct", WRONG: "wrong label", FALSE: "false detection",
                 BELOW: "below the evaluation score", IGNORED: "on a difficult box (ignored)"}
COLOURS = {"correct": "#1a9850", "wrong": "#f46d0e", "false": "#d7191c", "missed": "#c51bce", "grey": "#8a8f98"}


# ----------------------------------------------------------------------------- the model
def describe_model(
    model_path: str | os.PathLike | None = None,
    *,
    network: str | None = None,
    class_names: Sequence[str] | None = None,
    detections_file: str | os.PathLike | None = None,
) -> dict[str, str]:
    """What the summary says about where the detections come from, as ``{label: text}``.

    ``model_path`` is a run folder or a ``.keras`` file: the run's ``config.json`` (in the folder,
    beside the file, or above its ``checkpoints/``) gives the network, the classes, the training
    data and options, its ``state.json`` the epochs and the best validation mAP; the model file's
    date is the training date. A bare ``.keras`` file (or an unreadable run) falls back on
    ``network`` and ``class_names`` (from the loaded model). ``detections_file``: the detections
    came from a file, not a model. Never fails: what cannot be read is left out.
    """
    info: dict[str, str] = {}
    if model_path is not None:
        model_path = os.fspath(model_path)
        info["Model"] = model_path
        resolved = _resolve_model(model_path)
        run_dir = _run_folder(model_path, resolved)
        config = _read_json(os.path.join(run_dir, "config.json")) if run_dir else {}
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        network = model.get("network") or network
        classes = model.get("class_names") or class_names
        if network:
            info["Network"] = str(network)
        if classes:
            classes = [str(c) for c in classes]
            shown = ", ".join(classes) if len(classes) <= 6 else f"{', '.join(classes[:3])}, ..., {classes[-1]}"
            info["Classes"] = f"{len(classes)} ({shown})"
        data = config.get("data") if isinstance(config.get("data"), dict) else {}
        if data.get("path"):
            text = str(data["path"])
            if data.get("val"):
                text += f" + validation {data['val']}"
            counts = [f"{data[k]} {w}" for k, w in (("train_images", "training"), ("val_images", "validation"))
                      if isinstance(data.get(k), int)]
            if counts:
                text += f" ({' + '.join(counts)} images)"
            info["Training data"] = text
        training = config.get("training") if isinstance(config.get("training"), dict) else {}
        state = _read_json(os.path.join(run_dir, "state.json")) if run_dir else {}
        parts = []
        if training.get("optimizer"):
            parts.append(str(training["optimizer"]))
        if isinstance(state.get("epoch"), int):
            parts.append(f"{state['epoch']} epoch{'s' if state['epoch'] != 1 else ''}")
        if isinstance(state.get("best_val_mAP"), (int, float)):
            parts.append(f"best validation mAP {state['best_val_mAP']:.3f} (epoch {state.get('best_epoch', '?')})")
        if parts:
            info["Training"] = ", ".join(parts)
        if resolved and os.path.isfile(resolved):
            stamp = datetime.datetime.fromtimestamp(os.path.getmtime(resolved))
            info["Trained"] = f"{stamp:%Y-%m-%d %H:%M} ({os.path.basename(resolved)})"
        if not config:
            info["Run folder"] = "none (a bare model file: no training record)"
    if detections_file is not None:
        info["Detections"] = f"{os.fspath(detections_file)} (read from a file, no model run)"
    return info


def _resolve_model(path: str) -> str | None:
    from keras_frcnn.training.runs import resolve_model_path

    try:
        return resolve_model_path(path)
    except UserError:
        return None


def _run_folder(model_path: str, resolved: str | None) -> str | None:
    """The run folder holding ``config.json``: the folder given, the model file's folder, or the one above
    ``checkpoints/``."""
    candidates = [model_path] if os.path.isdir(model_path) else []
    if resolved:
        folder = os.path.dirname(os.path.abspath(resolved))
        candidates += [folder, os.path.dirname(folder)]
    return next((c for c in candidates if os.path.isfile(os.path.join(c, "config.json"))), None)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class ImageOutcome:
    """The outcome of one image's detections against its ground truth.

    ``status[k]``: :data:`CORRECT`, :data:`WRONG`, :data:`FALSE`, :data:`BELOW` (scores below the
    evaluation threshold are not matched) or :data:`IGNORED`; ``truth[k]``: the label of the
    ground-truth box detection ``k`` matched (None if none); ``missed``: indices of the
    (non-difficult) ground-truth boxes no detection matched.
    """

    status: tuple[str, ...]
    truth: tuple[str | None, ...]
    missed: tuple[int, ...]


def image_outcomes(
    ground_truth: Sequence[ImageRecord],
    detections: Sequence[Detections],
    class_names: Sequence[str] = (),
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> dict[str, ImageOutcome]:
    """Per image (key: ``os.path.normpath`` of its path), the outcome of each detection by the
    confusion matrix's matching (:func:`keras_frcnn.evaluation.confusion_summary`): detections
    scoring >= ``score_threshold``, class-agnostic, highest-IoU unmatched box at IoU >=
    ``iou_threshold``."""
    from keras_frcnn.evaluation.matching import NO_MATCH, greedy_match, prepare_images

    names = _class_list(class_names, ground_truth, detections)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # detections of images without ground truth: the caller warns
        images = prepare_images(ground_truth, detections, names)
    outcomes: dict[str, ImageOutcome] = {}
    for image in images:
        above = image.det_scores >= score_threshold
        match = greedy_match(image, iou_threshold, class_aware=False, det_mask=above)
        status, truth = [], []
        for k, gt in enumerate(match.tolist()):
            if gt == NO_MATCH:
                status.append(FALSE if above[k] else BELOW)
                truth.append(None)
                continue
            truth.append(names[image.gt_classes[gt]])
            if image.gt_difficult[gt]:
                status.append(IGNORED)
            else:
                status.append(CORRECT if image.gt_classes[gt] == image.det_classes[k] else WRONG)
        found = np.zeros(len(image.gt_classes), dtype=bool)
        found[match[match != NO_MATCH]] = True
        missed = np.flatnonzero(~found & ~image.gt_difficult)
        outcomes[_key(image.path)] = ImageOutcome(tuple(status), tuple(truth), tuple(int(i) for i in missed))
    return outcomes


def _class_list(class_names: Sequence[str], ground_truth: Sequence[ImageRecord],
                detections: Sequence[Detections]) -> tuple[str, ...]:
    """``class_names`` and then any other label of the ground truth or detections (karyotype order)."""
    names = list(dict.fromkeys(str(n) for n in class_names))
    seen = set(names)
    labels = {label for r in ground_truth for label in r.labels} | {label for d in detections for label in d.labels}
    names += [n for n in ClassMap.from_labels(labels - seen).names] if labels - seen else []
    return tuple(names) or ("object",)


def _key(path: str) -> str:
    return os.path.normpath(path)


# ----------------------------------------------------------------------------- pictures
def picture_names(paths: Sequence[str]) -> list[str]:
    """A distinct, URL-safe ``<name>.jpg`` per image path (``_2``, ``_3``... for repeats)."""
    stems = [re.sub(r"[^\w.-]+", "_", os.path.splitext(os.path.basename(path))[0]).strip("._") or "image"
             for path in paths]
    return distinct_file_names(stems, ".jpg")


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _save_jpeg(path: str, image: np.ndarray, quality: int = 90) -> None:
    """An RGB image as JPEG, atomically (one channel when it is grey, as karyograms are)."""
    grey = image.ndim == 3 and np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(
        image[:, :, 0], image[:, :, 2])
    pixels = image[:, :, 0] if grey else np.ascontiguousarray(image[:, :, ::-1])
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UserError(f"{path}: cannot encode the image as JPEG")
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            handle.write(encoded.tobytes())


def _write_pictures(folder: str, record: ImageRecord, name: str, max_side: int,
                    thumb_side: int) -> tuple[int, int] | None:
    """Write the picture and thumbnail of one image; its ``(width, height)``, or None if it cannot be read."""
    try:
        image = load_image(record)
    except (UserError, OSError, ValueError, cv2.error):
        return None
    height, width = image.shape[:2]
    _save_jpeg(os.path.join(folder, IMAGES_DIR, name), _fit(image, max_side))
    _save_jpeg(os.path.join(folder, THUMBS_DIR, name), _fit(image, thumb_side), quality=85)
    return int(width), int(height)


# ----------------------------------------------------------------------------- formatting
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _score_text(score: float) -> str:
    """The shortest text that reads back as the same float32 (as in detections.csv)."""
    return np.format_float_positional(np.float32(score), unique=True, trim="-")


def _coord(value: float) -> str:
    text = f"{float(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _metric(value, digits: int = 3) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


def _url(relative: str) -> str:
    return urllib.parse.quote(relative)


def _ink(colour: tuple[int, int, int]) -> str:
    """Black or white text on ``colour`` (as the annotated images)."""
    return "#000" if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 140 else "#fff"


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _expected_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Copies expected of each chromosome given the sex chromosomes found (as the karyotype module)."""
    expected = dict.fromkeys(CHROMOSOMES, 2)
    expected["X"], expected["Y"] = (1, 1) if counts.get("Y") else (2, 0)
    return expected


def _tag_size(label: str, font: float) -> tuple[float, float]:
    """Width and height of a box's label tag (a monospace font: 0.62 em a character)."""
    return 0.62 * font * len(label) + 0.5 * font, 1.25 * font


def _place_tags(boxes: np.ndarray, labels: Sequence[str], font: float, width: int,
                height: int) -> list[tuple[float, float]]:
    """Where each box's label tag goes (its top-left corner): above the box, ending at its right
    edge or starting at its left one, else below it, else inside its top; boxes taken from left
    to right, each tag where it overlaps the tags already placed least (so the two homologues of a
    karyogram pair, side by side, get their labels side by side)."""
    n = len(labels)
    placed = np.zeros((n, 4))  # left, top, right, bottom of the tags placed so far
    corners: list[tuple[float, float]] = [(0.0, 0.0)] * n
    order = np.lexsort((boxes[:, 1], boxes[:, 0])) if n else []
    for count, k in enumerate(order):
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        w, h = _tag_size(labels[k], font)
        lefts = np.clip(np.array([x2 - w, x1, x2 - w, x1, x1]), 0.0, max(width - w, 0.0))
        tops = np.clip(np.array([y1 - h, y1 - h, y2, y2, y1]), 0.0, max(height - h, 0.0))
        other = placed[:count]
        across = np.minimum(lefts[:, None] + w, other[:, 2]) - np.maximum(lefts[:, None], other[:, 0])
        down = np.minimum(tops[:, None] + h, other[:, 3]) - np.maximum(tops[:, None], other[:, 1])
        overlap = (np.clip(across, 0, None) * np.clip(down, 0, None)).sum(axis=1)
        free = np.flatnonzero(overlap == 0.0)
        best = int(free[0]) if len(free) else int(np.argmin(overlap))
        placed[count] = (lefts[best], tops[best], lefts[best] + w, tops[best] + h)
        corners[k] = (float(lefts[best]), float(tops[best]))
    return corners


def _numbers(values) -> list[float]:
    """Coordinates rounded to 0.1 pixel (JSON numbers)."""
    return [round(float(v), 1) for v in values]


# ----------------------------------------------------------------------------- one image
@dataclass
class _Entry:
    index: int
    record: ImageRecord
    detections: Detections
    karyotype: KaryotypeSummary
    name: str
    truth: ImageRecord | None = None
    truth_karyotype: KaryotypeSummary | None = None
    outcome: ImageOutcome | None = None
    size: tuple[int, int] | None = None  # of the picture written; None: not readable
    in_ground_truth: bool = True
    karyogram: str | None = None  # its karyogram picture, relative to the page

    @property
    def anchor(self) -> str:
        return f"i{self.index + 1}"

    def extent(self) -> tuple[int, int]:
        """The image size, or (unreadable image) one that holds every box."""
        if self.size:
            return self.size
        if self.record.width and self.record.height:
            return int(self.record.width), int(self.record.height)
        boxes = [self.detections.boxes] + ([self.truth.boxes] if self.truth is not None else [])
        stacked = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        if not len(stacked):
            return 320, 240
        return max(32, int(np.ceil(stacked[:, 2].max())) + 8), max(32, int(np.ceil(stacked[:, 3].max())) + 8)


class _Page:
    """The settings every part of the page is drawn with."""

    def __init__(self, *, class_names, score_threshold, low_confidence, karyotype_score, iou_threshold,
                 eval_score_threshold, has_truth):
        self.class_names = tuple(class_names)
        self.score_threshold = float(score_threshold)
        self.low_confidence = float(low_confidence)
        self.karyotype_score = float(karyotype_score)
        self.iou_threshold = float(iou_threshold)
        self.eval_score_threshold = float(eval_score_threshold)
        self.has_truth = has_truth
        self.labels: dict[str, int] = {}  # label -> its index in the page's label list
        self.colour_rules: list[str] = []

    def label_id(self, label: str) -> int:
        """The label's index in the page's label list (its colour: CSS class ``k<index>``)."""
        index = self.labels.get(label)
        if index is None:
            index = self.labels[label] = len(self.labels)
            colour = label_colour(label, self.class_names)
            self.colour_rules.append(f".k{index}{{--c:{_hex(colour)};--t:{_ink(colour)}}}")
        return index

    def script_data(self, images: list[dict]) -> dict:
        """Everything the page's script needs: settings, the label list and each image's data."""
        return {"labels": list(self.labels), "chromosomes": list(CHROMOSOMES), "low": self.low_confidence,
                "eval": self.eval_score_threshold, "iou": self.iou_threshold, "images": images}

    # -- the SVG overlay
    def overlay(self, entry: _Entry) -> tuple[str, dict, int]:
        """The (empty) SVG element of one image, the boxes the page's script draws into it, and how
        many detections are shown at the initial threshold.

        The boxes: ``{"f": font size, "s": [score], "b": [[x1, y1, x2, y2, label, outcome, tag x,
        tag y, truth label]], "m": [[x1, y1, x2, y2, label, tag x, tag y]]}`` -- detections in
        drawing order (lowest score first, so the surest end on top), labels as indices into the
        page's label list, the outcome code ("" without ground truth), the truth label the
        detection matched (-1: none); ``m``: the missed ground-truth boxes.
        """
        width, height = entry.extent()
        font = max(3.0, round(min(width, height) / 52.0, 1))
        det = entry.detections
        outcome = entry.outcome
        missed = list(outcome.missed) if outcome is not None and entry.truth is not None else []
        all_boxes = np.concatenate([det.boxes, entry.truth.boxes[missed] if missed else np.zeros((0, 4), np.float32)])
        all_labels = list(det.labels) + [entry.truth.labels[i] for i in missed]
        tags = _place_tags(all_boxes, all_labels, font, width, height)
        svg = (f'<svg class="ov" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
               f'data-i="{entry.index + 1}" style="font-size:{_coord(font)}px" role="img" '
               f'aria-label="{len(det)} detections"></svg>')
        scores, boxes, missed_boxes = [], [], []
        for k in np.argsort(det.scores, kind="stable").tolist():
            status = outcome.status[k] if outcome is not None else ""
            truth = outcome.truth[k] if outcome is not None else None
            scores.append(float(_score_text(det.scores[k])))
            boxes.append([*_numbers(det.boxes[k]), self.label_id(det.labels[k]), status, *_numbers(tags[k]),
                          -1 if truth is None else self.label_id(truth)])
        for j, i in enumerate(missed):
            missed_boxes.append([*_numbers(entry.truth.boxes[i]), self.label_id(entry.truth.labels[i]),
                                 *_numbers(tags[len(det) + j])])
        shown = sum(score >= self.score_threshold for score in scores)
        return svg, {"f": font, "s": scores, "b": boxes, "m": missed_boxes}, shown

    # -- the panel beside the image
    def panel(self, entry: _Entry, shown: int) -> tuple[str, str]:
        """The panel beside the image: its count and draft karyotype, and the markup of its details
        (drawn into ``.more`` by the page's script)."""
        k = entry.karyotype
        det = entry.detections
        uncertain = int(np.count_nonzero(det.scores < self.low_confidence))
        out = ['<div class="side">',
               f'<p class="count"><b>{k.total}</b> chromosome{"s" if k.total != 1 else ""} counted'
               f'<span class="muted"> (of 46)</span></p>',
               f'<p class="muted small">{len(det)} detection{"s" if len(det) != 1 else ""}, '
               f'<span class="shown" id="n{entry.index + 1}">{shown}</span> shown at the slider; '
               f"{uncertain} uncertain</p>"]
        status = "needs review" if k.needs_review else "no review items"
        out.append(f'<div class="iscn"><span class="lbl">Draft karyotype</span><code>{_iscn_html(k.iscn_draft)}</code>'
                   f'<span class="pill {"warn" if k.needs_review else "ok"}">{_esc(status)}</span></div>'
                   '<div class="more"></div>')
        if entry.karyogram:
            src = _url(entry.karyogram)
            out.append(f'<figure class="karyogram"><a href="{src}" target="_blank"><img src="{src}" loading="lazy" '
                       f'decoding="async" alt="karyogram"></a><figcaption>Karyogram (open it full size)</figcaption>'
                       "</figure>")
        out.append("</div>")
        static = "".join(out)
        out = []
        facts = [("Sex chromosomes", k.sex_chromosomes or "none found"), ("Gains", ", ".join(k.gains) or "none"),
                 ("Losses", ", ".join(k.losses) or "none")]
        if entry.truth_karyotype is not None:
            facts.append(("Ground truth", f"{entry.truth_karyotype.iscn_draft} ({entry.truth.num_boxes} boxes)"))
        out.append('<dl class="facts">' + "".join(f"<dt>{_esc(a)}</dt><dd>{_esc(b)}</dd>" for a, b in facts) + "</dl>")
        out.append('<div class="counts" aria-label="count per chromosome"></div>')
        if entry.outcome is not None:
            out.append(self._outcome_block(entry))
        if k.review_items:
            items = [f"<li>{_esc(item)}</li>" for item in k.review_items]
            head, rest = items[:5], items[5:]
            block = f'<div class="review"><span class="lbl">To review</span><ul>{"".join(head)}</ul>'
            if rest:
                block += f'<details><summary>{len(rest)} more</summary><ul>{"".join(rest)}</ul></details>'
            out.append(block + "</div>")
        return static, "".join(out)

    def _outcome_block(self, entry: _Entry) -> str:
        outcome, det = entry.outcome, entry.detections
        n = {s: outcome.status.count(s) for s in (CORRECT, WRONG, FALSE)}
        summary = (f'<span class="sw o-c"></span>{n[CORRECT]} correct <span class="sw o-w"></span>{n[WRONG]} wrong '
                   f'label <span class="sw o-f"></span>{n[FALSE]} false <span class="sw m"></span>'
                   f"{len(outcome.missed)} missed")
        lines = []
        for k, status in enumerate(outcome.status):
            if status == WRONG:
                lines.append(f"{det.labels[k]} for {outcome.truth[k]} ({float(det.scores[k]):.2f})")
            elif status == FALSE:
                lines.append(f"false {det.labels[k]} ({float(det.scores[k]):.2f})")
        lines += [f"missed {entry.truth.labels[i]}" for i in outcome.missed]
        detail = ""
        if lines:
            items = "".join(f"<li>{_esc(line)}</li>" for line in lines)
            detail = f"<details{' open' if len(lines) <= 6 else ''}><summary>{len(lines)} to check</summary>" \
                     f"<ul>{items}</ul></details>"
        note = ("" if entry.in_ground_truth
                else '<p class="warn small">not in the ground truth: every detection is false</p>')
        return (f'<div class="outcome"><span class="lbl">Against the ground truth</span><p>{summary}</p>{note}'
                f"{detail}</div>")

    # -- one section
    def section(self, entry: _Entry) -> tuple[str, str, dict]:
        """The image's section, its thumbnail in the index, and what the page's script draws into the
        section when it comes near the screen: the boxes (:meth:`overlay`), the details of the panel
        (``side``: markup) and the count per chromosome (``k``: counted, expected, in the ground truth)."""
        width, height = entry.extent()
        svg, boxes, shown = self.overlay(entry)
        side, details = self.panel(entry, shown)
        path = entry.record.path
        name = os.path.basename(path) or path
        review = " data-review" if entry.karyotype.needs_review else ""
        if entry.size is not None:
            src = _url(f"{IMAGES_DIR}/{entry.name}")
            picture = (f'<img src="{src}" loading="lazy" decoding="async" width="{width}" height="{height}" '
                       f'alt="{_esc(name)}">')
            link = f' <a class="small" href="{src}" target="_blank">open image</a>'
            thumb = f'<img data-src="{_url(f"{THUMBS_DIR}/{entry.name}")}" decoding="async" alt="">'
        else:
            picture = f'<div class="missing">image not available:<br>{_esc(path)}</div>'
            link = ""
            thumb = '<span class="missing">no image</span>'
        k = entry.karyotype
        flags = []
        if entry.outcome is not None:
            wrong = entry.outcome.status.count(WRONG) + entry.outcome.status.count(FALSE)
            if entry.outcome.missed:
                flags.append(f"{len(entry.outcome.missed)} missed")
            if wrong:
                flags.append(f"{wrong} wrong/false")
        flag = f'<span class="bad">{_esc(", ".join(flags))}</span>' if flags else ""
        pill = ('<span class="pill warn">needs review</span>' if k.needs_review
                else '<span class="pill ok">no review items</span>')
        section = (
            f'<section class="img" id="{entry.anchor}" data-n="{entry.index + 1}"{review}>'
            f'<div class="head"><h3><span class="num">{entry.index + 1}</span>{_esc(name)}</h3>{pill}{flag}'
            f'<span class="path" title="{_esc(path)}">{_esc(path)}</span>{link}'
            '<a class="up small" href="#index">index</a></div>'
            f'<div class="body"><div class="fig" style="--ar:{width}/{height}">{picture}{svg}</div>'
            f"{side}</div></section>"
        )
        thumbnail = (
            f'<a class="th" href="#{entry.anchor}"{review} title="{_esc(path)}"><span class="ti">{thumb}</span>'
            f'<span class="tn">{entry.index + 1}. {_esc(name)}</span>'
            f'<span class="tk">{_esc(_shorten(k.iscn_draft, 24))}</span>{flag}</a>'
        )
        k = entry.karyotype
        truth = entry.truth_karyotype
        expected = _expected_counts(k.counts)
        counts = {"n": [k.counts[c] for c in CHROMOSOMES], "e": [expected[c] for c in CHROMOSOMES],
                  "t": [truth.counts[c] for c in CHROMOSOMES] if truth is not None else None}
        return section, thumbnail, {**boxes, "side": details, "k": counts}


def _iscn_html(text: str) -> str:
    """An ISCN string that wraps only after its commas (never inside ``-X``); copied, it is unchanged."""
    if len(text) <= 24:
        return _esc(text)
    return ",<wbr>".join(f'<span class="nw">{_esc(part)}</span>' for part in text.split(","))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------- tables
def _per_class_table(metrics: Mapping) -> str:
    voc = metrics.get("voc", {}).get("per_class", {})
    coco = metrics.get("coco", {}).get("per_class", {}) or {}
    columns = [("class", "Class", "text"), ("ap", "AP", "num"), ("coco", "COCO AP", "num"),
               ("precision", "Precision", "num"), ("recall", "Recall", "num"), ("n_gt", "n truth", "num"),
               ("n_det", "n detected", "num")]
    head = "".join(f'<th data-type="{kind}" data-k="{key}" tabindex="0" scope="col">{label}</th>'
                   for key, label, kind in columns)
    rows = []
    for order, (name, row) in enumerate(voc.items()):
        values = {"ap": row.get("ap"), "coco": coco.get(name), "precision": row.get("precision"),
                  "recall": row.get("recall"), "n_gt": row.get("n_gt"), "n_det": row.get("n_det")}
        cells = [f'<td data-v="{order}">{_esc(name)}</td>']
        for key, _, _ in columns[1:]:
            value = values[key]
            if value is None:
                cells.append('<td data-v="">—</td>')
            elif key in ("n_gt", "n_det"):
                cells.append(f'<td data-v="{int(value)}">{int(value)}</td>')
            else:
                bar = f'<span class="mbar" style="width:{100 * float(value):.0f}%"></span>'
                cells.append(f'<td data-v="{float(value):.6f}">{bar}<span>{float(value):.3f}</span></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table class="sortable metrics" id="per-class"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _confusion_table(matrix) -> str:
    """The confusion matrix (pandas DataFrame: rows ground truth + background, columns predicted +
    missed) as an HTML table shaded by the share of its row."""
    index = [str(i) for i in matrix.index]
    columns = [str(c) for c in matrix.columns]
    values = np.asarray(matrix.values, dtype=np.int64)
    head = "".join(f'<th scope="col"><span>{_esc(c)}</span></th>' for c in columns)
    body = []
    for r, row_name in enumerate(index):
        total = int(values[r].sum())
        cells = []
        for c, column in enumerate(columns):
            count = int(values[r, c])
            if count == 0:
                cells.append("<td></td>")
                continue
            share = count / max(total, 1)
            alpha = 0.18 + 0.82 * share
            if row_name == column:
                colour = f"rgba(26,152,80,{alpha:.2f})"
            elif column == "missed" or r == len(index) - 1:
                colour = f"rgba(197,27,206,{alpha:.2f})" if column == "missed" else f"rgba(215,25,28,{alpha:.2f})"
            else:
                colour = f"rgba(244,109,14,{alpha:.2f})"
            ink = "#fff" if alpha > 0.6 else "#111"
            tip = f"ground truth {row_name} → {column}: {count} ({100 * share:.0f}% of the row)"
            cells.append(f'<td style="background:{colour};color:{ink}" title="{_esc(tip)}">{count}</td>')
        body.append(f'<tr><th scope="row">{_esc(row_name)}</th>{"".join(cells)}</tr>')
    return (f'<table class="cm" id="confusion-matrix"><thead><tr><th class="corner">truth ↓ predicted →</th>{head}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table>')


# ----------------------------------------------------------------------------- the page
def write_review_page(
    folder: str | os.PathLike,
    *,
    images: Sequence[ImageRecord | str] | None = None,
    detections: Sequence[Detections],
    karyotypes: Sequence[KaryotypeSummary] | None = None,
    metrics: Mapping | None = None,
    ground_truth: Sequence[ImageRecord] | None = None,
    confusion=None,
    class_names: Sequence[str] = (),
    model_info: Mapping[str, str] | None = None,
    run_info: Mapping[str, str] | None = None,
    seconds_per_image: float | Sequence[float] | None = None,
    karyograms: Sequence[str | None] | None = None,
    program: str = "",
    title: str = "Chromosome review",
    score_threshold: float = 0.0,
    low_confidence: float = 0.5,
    karyotype_score: float = 0.3,
    iou_threshold: float = 0.5,
    eval_score_threshold: float = 0.5,
    max_side: int = 2048,
    thumb_side: int = 240,
    workers: int = 2,
) -> str:
    """Write ``folder/report.html`` and its pictures; return the page's path.

    ``images``: the images (records, or paths), in page order (default: the ground truth's);
    ``detections``: found in them, paired by path (a detection image not among ``images`` is
    added at the end); ``karyotypes``: one per image, in the same order (default: computed by
    :func:`~keras_frcnn.inference.karyotype.summarise_detections` at ``karyotype_score`` and
    ``low_confidence``). ``ground_truth``: records with boxes, paired by path; with it each
    detection gets its outcome (:func:`image_outcomes` at ``iou_threshold`` and
    ``eval_score_threshold``), and ``confusion`` (the confusion matrix DataFrame) and ``metrics``
    (the :func:`keras_frcnn.evaluation.evaluate` dict) are computed when not given.
    ``karyograms``: one picture path (or None) per image, shown beside it (``karyotype_frcnn.py``'s
    ``karyogram.png``; inside ``folder``, linked relatively).
    ``class_names`` fixes the box colours (those of the annotated images). ``model_info`` (see
    :func:`describe_model`) and ``run_info`` are listed in the summary. ``score_threshold`` is
    the slider's starting value; boxes scoring below ``low_confidence`` are drawn dashed.
    """
    folder = os.fspath(folder)
    detections = list(detections)
    if images is None:
        images = list(ground_truth or ()) or [ImageRecord(d.path, np.zeros((0, 4), np.float32), ()) for d in detections]
    records = [r if isinstance(r, ImageRecord) else ImageRecord(os.fspath(r), np.zeros((0, 4), np.float32), ())
               for r in images]
    if karyotypes is not None and len(karyotypes) != len(records):
        raise ValueError(f"{len(karyotypes)} karyotypes for {len(records)} images")
    if karyograms is not None and len(karyograms) != len(records):
        raise ValueError(f"{len(karyograms)} karyograms for {len(records)} images")
    paired = _pair(records, detections)
    extra = paired.pop(None, [])
    page_records = records + [ImageRecord(d.path, np.zeros((0, 4), np.float32), ()) for d in extra]
    page_detections = [paired[i] for i in range(len(records))] + extra

    truth_by_key: dict[str, ImageRecord] = {}
    outcomes: dict[str, ImageOutcome] = {}
    names = tuple(class_names)
    if ground_truth is not None:
        ground_truth = list(ground_truth)
        truth_by_key = {_key(r.path): r for r in ground_truth}
        names = _class_list(class_names, ground_truth, page_detections)
        outcomes = image_outcomes(ground_truth, page_detections, names, iou_threshold=iou_threshold,
                                  score_threshold=eval_score_threshold)
        if confusion is None:
            from keras_frcnn.evaluation import confusion_summary

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                confusion = confusion_summary(ground_truth, page_detections, names, iou_threshold,
                                              eval_score_threshold).matrix
        if metrics is None and any(r.num_boxes for r in ground_truth):
            from keras_frcnn.evaluation import evaluate

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                metrics = evaluate(ground_truth, page_detections, names, iou_threshold=iou_threshold,
                                   score_threshold=eval_score_threshold)

    file_names = picture_names([r.path for r in page_records])
    entries: list[_Entry] = []
    for index, (record, det, name) in enumerate(zip(page_records, page_detections, file_names)):
        if karyotypes is not None and index < len(karyotypes):
            karyotype = karyotypes[index]
        else:
            karyotype = summarise_detections(det, low_confidence=low_confidence, min_score=karyotype_score)
        entry = _Entry(index, record, det, karyotype, name)
        if karyograms is not None and index < len(karyograms) and karyograms[index]:
            entry.karyogram = os.path.relpath(os.fspath(karyograms[index]), folder).replace(os.sep, "/")
        truth = truth_by_key.get(_key(record.path))
        if ground_truth is not None:
            entry.in_ground_truth = truth is not None
            entry.truth = truth if truth is not None else ImageRecord(record.path, np.zeros((0, 4), np.float32), ())
            entry.truth_karyotype = summarise_karyotype(entry.truth.labels, [1.0] * entry.truth.num_boxes,
                                                        path=record.path) if truth is not None else None
            entry.outcome = outcomes.get(_key(det.path)) or outcomes.get(_key(record.path))
            if truth is not None and entry.record.num_boxes == 0 and truth.image_bytes is not None:
                entry.record = truth
        entries.append(entry)

    def picture(entry: _Entry):
        return _write_pictures(folder, entry.record, entry.name, max_side, thumb_side)

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for entry, size in zip(entries, pool.map(picture, entries)):
            entry.size = size

    page = _Page(class_names=names or class_names, score_threshold=score_threshold, low_confidence=low_confidence,
                 karyotype_score=karyotype_score, iou_threshold=iou_threshold,
                 eval_score_threshold=eval_score_threshold, has_truth=ground_truth is not None)
    text = _render(page, entries, metrics=metrics, confusion=confusion, model_info=model_info or {},
                   run_info=run_info or {}, seconds_per_image=seconds_per_image, program=program, title=title)
    path = os.path.join(folder, REPORT_NAME)
    write_text(path, text)
    return path


def _pair(records: Sequence[ImageRecord], detections: Sequence[Detections]) -> dict:
    """``{record index: its detections}`` (empty when none) and ``{None: [detections of other images]}``."""
    if len(records) == len(detections) and all(_key(r.path) == _key(d.path) for r, d in zip(records, detections)):
        return dict(enumerate(detections))
    by_key: dict[str, int] = {}
    for index, record in enumerate(records):
        by_key.setdefault(_key(record.path), index)
    paired: dict = {}
    for det in detections:
        index = by_key.get(_key(det.path))
        if index is None or index in paired:
            paired.setdefault(None, []).append(det)
        else:
            paired[index] = det
    for index, record in enumerate(records):
        paired.setdefault(index, Detections.empty(record.path))
    return paired


def _render(page: _Page, entries: list[_Entry], *, metrics, confusion, model_info, run_info, seconds_per_image,
            program: str, title: str) -> str:
    sections, thumbs, data = [], [], []
    for entry in entries:
        section, thumb, drawn = page.section(entry)
        sections.append(section)
        thumbs.append(thumb)
        data.append(drawn)
    chunks = [thumbs[i:i + _THUMB_CHUNK] for i in range(0, len(thumbs), _THUMB_CHUNK)]
    n_det = sum(len(e.detections) for e in entries)
    n_shown = sum(int(np.count_nonzero(e.detections.scores >= page.score_threshold)) for e in entries)
    review = sum(1 for e in entries if e.karyotype.needs_review)

    tiles = [("Images", f"{len(entries)}"), ("Detections", f"{n_det}"),
             ("Need review", f"{review} of {len(entries)}")]
    if seconds_per_image is not None:
        seconds = seconds_per_image if np.isscalar(seconds_per_image) else (
            float(np.mean(seconds_per_image)) if len(seconds_per_image) else None)
        tiles.append(("Time per image", "—" if seconds is None else f"{float(seconds):.3f} s"))
    else:
        tiles.append(("Time per image", "—"))
    metric_tiles = []
    if metrics:
        coco = metrics.get("coco", {})
        metric_tiles = [("VOC mAP", metrics.get("voc", {}).get("mAP")), ("COCO AP", coco.get("AP")),
                        ("AP50", coco.get("AP50")), ("AP75", coco.get("AP75"))]
    tile_html = "".join(f'<div class="tile"><span>{_esc(a)}</span><b>{_esc(b)}</b></div>' for a, b in tiles)
    tile_html += "".join(f'<div class="tile metric"><span>{_esc(a)}</span><b>{_metric(b)}</b></div>'
                         for a, b in metric_tiles)

    settings = dict(model_info)
    settings.update(run_info)
    settings["Karyotype"] = (f"chromosomes = detections scoring >= {page.karyotype_score:g}, overlapping readings "
                             f"(IoU >= 0.5) once; uncertain (dashed) below {page.low_confidence:g}")
    if page.has_truth:
        settings["Matching"] = (f"IoU >= {page.iou_threshold:g}, detections scoring >= "
                                f"{page.eval_score_threshold:g} (as confusion.csv)")
    facts = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in settings.items())

    legend = ['<span class="lg"><svg viewBox="0 0 26 14"><rect class="lgd" x="2" y="2" width="22" height="10"/></svg>'
              f"uncertain (&lt; {page.low_confidence:g})</span>"]
    toggles = ""
    if page.has_truth:
        for code, label in (("c", "correct"), ("w", "wrong label"), ("f", "false"), ("m", "missed")):
            toggles += (f'<label class="lg"><input type="checkbox" data-hide="hide-{code}" checked>'
                        f'<span class="sw {"m" if code == "m" else "o-" + code}"></span>{label}</label>')
        toggles += ('<label>Colour <select id="colour"><option value="outcome">by outcome</option>'
                    '<option value="class">by class</option></select></label>')
    nav = ['<a href="#summary">Summary</a>', '<a href="#index">Images</a>']
    extra_sections = []
    if metrics and metrics.get("voc", {}).get("per_class"):
        nav.append('<a href="#metrics">Per class</a>')
        missing = metrics["voc"].get("missing_classes") or []
        note = f" Classes without ground truth (left out of the mean): {', '.join(missing)}." if missing else ""
        extra_sections.append(
            f'<section id="metrics" class="card heavy"><h2>Per class</h2><p class="muted small">VOC AP at IoU &gt;= '
            f"{page.iou_threshold:g}; COCO AP over IoU 0.5:0.95; precision and recall of the detections scoring "
            f"&gt;= {page.eval_score_threshold:g}. Click a column header to sort.{_esc(note)}</p>"
            f'<div class="scroll">{_per_class_table(metrics)}</div></section>')
    if confusion is not None:
        nav.append('<a href="#confusion">Confusion</a>')
        extra_sections.append(
            '<section id="confusion" class="card heavy"><h2>Confusion matrix</h2><p class="muted small">'
            "Rows: ground truth "
            "(and background: detections matching no chromosome); columns: the label given (and missed). Shade: "
            "share of the row; green = correct, orange = another label, red = false, magenta = missed.</p>"
            f'<div class="scroll">{_confusion_table(confusion)}</div></section>')

    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    by = f" by {_esc(program)}" if program else ""
    root_class = "by-outcome" if page.has_truth else ""
    return "".join([
        "<!DOCTYPE html>\n",
        f'<html lang="en" class="{root_class}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_esc(title)}</title><style>{_CSS}{''.join(page.colour_rules)}</style></head><body>",
        f'<header class="top"><h1>{_esc(title)}</h1><p class="muted">Generated {generated}{by} · '
        f"{len(entries)} image{'s' if len(entries) != 1 else ''} · every karyotype is a draft to be reviewed</p>"
        f'<nav>{" · ".join(nav)}</nav></header>',
        '<div class="bar" id="toolbar">',
        f'<label class="slider">Show boxes scoring ≥ <input type="range" id="score" min="0" max="1" step="0.01" '
        f'value="{page.score_threshold:.2f}" aria-label="score threshold"> <output id="score-value">'
        f"{page.score_threshold:.2f}</output></label>",
        f'<span class="muted" id="shown-total"><b>{n_shown}</b> of {n_det} detections shown</span>',
        '<label><input type="checkbox" id="labels" checked> labels</label>',
        '<label><input type="checkbox" id="review-only"> needs review only</label>',
        "".join(legend), toggles, "</div>",
        f'<main><section id="summary" class="card"><h2>Summary</h2><div class="tiles">{tile_html}</div>'
        f'<dl class="kv">{facts}</dl></section>',
        '<section id="index" class="card"><h2>Images</h2>',
        "".join(f'<div class="thumbs">{"".join(chunk)}</div>' for chunk in chunks), "</section>",
        "".join(extra_sections),
        f'<div id="images">{"".join(sections)}</div></main>',
        '<footer class="muted small">Draft karyotypes and labels are produced automatically and must be reviewed by '
        "a cytogeneticist. Hover a box for its label and score.</footer>",
        '<noscript><p class="card">The boxes and the karyotype details are drawn by the page\'s script: allow '
        "JavaScript for this file.</p></noscript>",
        f'<script type="application/json" id="review-data">{_script_json(page.script_data(data))}</script>',
        f"<script>{_SCRIPT}</script></body></html>\n",
    ])


_THUMB_CHUNK = 48  # thumbnails laid out together (48 fills whole rows of 2, 3, 4, 6, 8, 12 or 16 columns)


def _script_json(data: list[dict]) -> str:
    """``data`` as JSON safe inside a ``<script>`` element ("</" and "<!--" escaped)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


_CSS = string.Template("""
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--accent:#2957c4;
--correct:$correct;--wrong:$wrong;--false:$false;--missed:$missed;--grey:$grey}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:var(--bg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:0 0 10px}h3{font-size:15px;margin:0}
.muted{color:var(--muted)}.small{font-size:12px}.warn{color:#b54708}
header.top{padding:16px 24px 8px}header nav{margin-top:4px;font-size:13px}
main{padding:0 24px 24px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:14px 0}
.bar{position:sticky;top:0;z-index:10;display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;
padding:8px 24px;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line);
box-shadow:0 1px 3px rgba(16,24,40,.06);font-size:13px}
.bar label{display:inline-flex;align-items:center;gap:5px;white-space:nowrap}
.slider input{width:200px}.slider output{font-variant-numeric:tabular-nums;font-weight:600;min-width:2.4em}
.lg{display:inline-flex;align-items:center;gap:4px}.lg svg{width:26px;height:14px}
.lgd{fill:none;stroke:#444;stroke-width:1.6;stroke-dasharray:4 3}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;background:var(--c,#999);vertical-align:-1px;
margin:0 3px 0 8px}
.bar .sw{margin-left:0}
.sw.o-c{background:var(--correct)}.sw.o-w{background:var(--wrong)}.sw.o-f{background:var(--false)}.sw.m{background:var(--missed)}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:12px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:120px;background:#fbfcfd}
.tile span{display:block;font-size:12px;color:var(--muted)}.tile b{font-size:20px;font-variant-numeric:tabular-nums}
.tile.metric{background:#f3f6fd;border-color:#d5def5}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0;font-size:13px}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:anywhere}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-bottom:10px;
content-visibility:auto;contain-intrinsic-size:auto 560px}
.card.heavy{content-visibility:auto;contain-intrinsic-size:auto 900px}
a.th{display:flex;flex-direction:column;border:1px solid var(--line);border-radius:6px;padding:5px;color:var(--fg);
background:#fff;font-size:12px;line-height:1.3}
a.th:hover{border-color:var(--accent);text-decoration:none}
a.th[data-review]{border-left:3px solid #f79009}
.ti{display:flex;align-items:center;justify-content:center;height:108px;background:#eef0f3;border-radius:3px;overflow:hidden}
.ti img{max-width:100%;max-height:108px;display:block}
.tn{margin-top:4px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tk{color:var(--muted);font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:11px;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.nw{white-space:nowrap}
.bad{color:var(--false);font-size:12px}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.pill.warn{background:#fef0c7;color:#93370d}.pill.ok{background:#d1fadf;color:#05603a}
section.img{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:14px 0;
content-visibility:auto;contain-intrinsic-size:auto 640px;scroll-margin-top:52px}
.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px;margin-bottom:8px}
.head .num{display:inline-block;min-width:1.8em;color:var(--muted);font-weight:500;margin-right:6px}
.head .path{color:var(--muted);font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:40ch}
.head .up{margin-left:auto}
.body{display:grid;grid-template-columns:minmax(0,1fr) 330px;gap:18px;align-items:start}
@media (max-width:900px){.body{grid-template-columns:1fr}}
.fig{position:relative;width:min(100%,calc(82vh * var(--ar)));aspect-ratio:var(--ar);background:#eef0f3;
border-radius:4px;overflow:hidden}
.fig img{position:absolute;inset:0;width:100%;height:100%;display:block}
.fig .missing{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;text-align:center;
color:var(--muted);font-size:13px;padding:12px;overflow-wrap:anywhere}
.ti .missing{color:var(--muted)}
svg.ov{position:absolute;inset:0;width:100%;height:100%;overflow:visible;
font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace}
svg.ov g>rect{fill:transparent;stroke:var(--c);stroke-width:1.7px;vector-effect:non-scaling-stroke}
svg.ov g.u>rect{stroke-dasharray:5 3}
svg.ov g:hover>rect{stroke-width:3.2px}
svg.ov .tag rect{fill:var(--c);stroke:none;opacity:.88;pointer-events:none}
svg.ov .tag text{fill:var(--t);pointer-events:none}
svg.ov g.u .tag rect{opacity:.6}
svg.ov g.h,html.nolabels svg.ov .tag{display:none}
.by-outcome svg.ov g.o-c{--c:var(--correct);--t:#fff}
.by-outcome svg.ov g.o-w{--c:var(--wrong);--t:#000}
svg.ov g.o-f{--c:var(--false);--t:#fff}
svg.ov g.o-b,svg.ov g.o-i{--c:var(--grey);--t:#fff}
svg.ov g.m{--c:var(--missed);--t:#fff}svg.ov g.m>rect{stroke-width:2.6px}
html.hide-c g.o-c,html.hide-w g.o-w,html.hide-f g.o-f,html.hide-m g.m{display:none}
html.review-only section.img:not([data-review]),html.review-only a.th:not([data-review]){display:none}
.side{font-size:13px}.side p{margin:0 0 6px}
.karyogram{margin:10px 0 0}.karyogram img{display:block;max-width:100%;height:auto;border:1px solid #ccc}
.karyogram figcaption{font-size:12px;color:#666}
.count b{font-size:22px}
.lbl{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin-bottom:2px}
.iscn{margin:8px 0}.iscn code{display:block;font:600 16px/1.3 ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;
overflow-wrap:anywhere;margin-bottom:3px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 10px;margin:6px 0 10px}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
.counts{display:grid;grid-template-columns:repeat(8,1fr);gap:2px;margin:6px 0 10px}
.counts span{display:flex;flex-direction:column;align-items:center;border:1px solid var(--line);border-radius:3px;
padding:1px 0;background:#fbfcfd}
.counts i{font-style:normal;font-size:10px;color:var(--muted)}
.counts b{font-size:13px;font-variant-numeric:tabular-nums}
.counts .dev{background:#fef0c7;border-color:#fec84b}.counts .diff b{color:var(--false);text-decoration:underline}
.outcome,.review{margin:8px 0}.outcome p{margin:0}.outcome .sw{margin-left:0}
.side ul{margin:2px 0 0;padding-left:18px}.side li{margin:0}
details summary{cursor:pointer;color:var(--accent);font-size:12px}
.scroll{overflow:auto;max-height:70vh}
table.metrics{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
table.metrics th,table.metrics td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:right}
table.metrics th:first-child,table.metrics td:first-child{text-align:left}
table.metrics thead th{position:sticky;top:0;background:#fff;cursor:pointer;user-select:none;white-space:nowrap}
table.metrics thead th:hover{color:var(--accent)}
th[aria-sort=ascending]::after{content:" ▲";font-size:10px}th[aria-sort=descending]::after{content:" ▼";font-size:10px}
table.metrics td{position:relative}
table.metrics .mbar{position:absolute;left:0;top:3px;bottom:3px;background:#dbe4fb;z-index:0}
table.metrics td span:last-child{position:relative}
table.cm{border-collapse:collapse;font-size:11px;font-variant-numeric:tabular-nums}
table.cm td,table.cm th{border:1px solid #eef0f3;min-width:24px;height:22px;text-align:center;padding:0 2px}
table.cm thead th{vertical-align:bottom;background:#fff;position:sticky;top:0}
table.cm thead th span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;padding:3px 0}
table.cm tbody th{text-align:right;padding-right:6px;white-space:nowrap;background:#fff;position:sticky;left:0}
table.cm .corner{font-weight:400;color:var(--muted);font-size:10px;text-align:left;vertical-align:bottom}
footer{padding:8px 24px 24px}
@media print{section.img,.thumbs,.card.heavy{content-visibility:visible}.bar{position:static}.scroll{max-height:none}}
""").substitute(COLOURS)

_SCRIPT = r"""
(function(){
"use strict";
var root=document.documentElement,slider=document.getElementById("score"),
out=document.getElementById("score-value"),total=document.getElementById("shown-total"),
data=null,drawn=[],threshold=parseFloat(slider.value);
function page(){
  if(!data)data=JSON.parse(document.getElementById("review-data").textContent);
  return data;
}
function esc(text){
  return String(text).replace(/&/g,"&amp;").replace(/</g,"&lt;").replace(/>/g,"&gt;").replace(/"/g,"&quot;");
}
function r(v){return Math.round(v*10)/10;}
var OUTCOME={c:" · correct",f:" · false detection: no chromosome here",i:" · on a difficult box, ignored"};
function box(b,label,x,y,f){
  return '<rect x="'+b[0]+'" y="'+b[1]+'" width="'+r(b[2]-b[0])+'" height="'+r(b[3]-b[1])+'"/><g class="tag">'+
    '<rect x="'+x+'" y="'+y+'" width="'+r(0.62*f*label.length+0.5*f)+'" height="'+r(1.25*f)+'"/>'+
    '<text x="'+r(x+0.25*f)+'" y="'+r(y+0.95*f)+'">'+esc(label)+'</text></g>';
}
function boxes(d){
  var p=page(),labels=p.labels,parts=[];
  for(var j=0;j<d.b.length;j++){
    var b=d.b[j],s=d.s[j],label=labels[b[4]],cls="d k"+b[4],tip=label+" · score "+s.toFixed(3);
    if(s<p.low){cls+=" u";tip+=" · uncertain (< "+p.low+")";}
    if(b[5]){
      cls+=" o-"+b[5];
      tip+=b[5]==="w"?" · wrong label: truth "+labels[b[8]]:
        b[5]==="b"?" · not evaluated (score < "+p.eval+")":OUTCOME[b[5]];
    }
    if(s<threshold)cls+=" h";
    parts.push('<g class="'+cls+'" data-s="'+s+'" data-l="'+esc(label)+'"><title>'+esc(tip)+"</title>"+
      box(b,label,b[6],b[7],d.f)+"</g>");
  }
  for(var m=0;m<d.m.length;m++){
    var g=d.m[m],missed=labels[g[4]];
    parts.push('<g class="m" data-l="'+esc(missed)+'"><title>'+esc("missed: "+missed+" (ground truth; no detection "+
      "scoring >= "+p.eval+" at IoU >= "+p.iou+")")+"</title>"+box(g,missed,g[5],g[6],d.f)+"</g>");
  }
  return parts.join("");
}
function counts(k){
  var names=page().chromosomes,cells=[];
  for(var i=0;i<names.length;i++){
    var cls=[],tip="chromosome "+names[i]+": "+k.n[i]+" counted, "+k.e[i]+" expected";
    if(k.n[i]!==k.e[i])cls.push("dev");
    if(k.t){tip+=", "+k.t[i]+" in the ground truth";if(k.t[i]!==k.n[i])cls.push("diff");}
    cells.push('<span class="'+cls.join(" ")+'" title="'+esc(tip)+'"><i>'+names[i]+"</i><b>"+k.n[i]+"</b></span>");
  }
  return cells.join("");
}
function show(group){
  for(var j=0;j<group.s.length;j++){
    var v=group.s[j]>=threshold?1:0;
    if(v!==group.on[j]){group.on[j]=v;group.boxes[j].classList.toggle("h",!v);}
  }
}
function draw(section){
  if(section.hasAttribute("data-drawn"))return;
  section.setAttribute("data-drawn","");
  var d=page().images[parseInt(section.getAttribute("data-n"),10)-1],svg=section.querySelector("svg.ov"),
  more=section.querySelector(".more");
  svg.innerHTML=boxes(d);
  if(more){
    more.innerHTML=d.side;
    var grid=more.querySelector(".counts");
    if(grid)grid.innerHTML=counts(d.k);
  }
  var found=svg.querySelectorAll("g.d"),on=new Uint8Array(found.length);
  for(var j=0;j<found.length;j++)on[j]=found[j].classList.contains("h")?0:1;
  drawn.push({boxes:found,s:d.s,on:on});
}
function thumb(img){
  var src=img.getAttribute("data-src");
  if(src){img.removeAttribute("data-src");img.src=src;}
}
var sections=document.querySelectorAll("section.img"),thumbs=document.querySelectorAll("img[data-src]");
function drawAll(){
  for(var i=0;i<sections.length;i++)draw(sections[i]);
  for(var t=0;t<thumbs.length;t++)thumb(thumbs[t]);
}
if("IntersectionObserver" in window){
  var near=function(action,margin){
    return new IntersectionObserver(function(entries,observer){
      for(var i=0;i<entries.length;i++){
        if(entries[i].isIntersecting){action(entries[i].target);observer.unobserve(entries[i].target);}
      }
    },{rootMargin:margin});
  };
  var sectionObserver=near(draw,"1500px 0px"),thumbObserver=near(thumb,"300px 0px");
  for(var i=0;i<sections.length;i++)sectionObserver.observe(sections[i]);
  for(var t=0;t<thumbs.length;t++)thumbObserver.observe(thumbs[t]);
}else{drawAll();}
window.addEventListener("beforeprint",drawAll);
window.reviewPage={drawAll:drawAll};
function apply(){
  threshold=parseFloat(slider.value);
  out.textContent=threshold.toFixed(2);
  var all=page().images,shown=0,count=0;
  for(var i=0;i<all.length;i++){
    var s=all[i].s,n=0;
    for(var j=0;j<s.length;j++)if(s[j]>=threshold)n++;
    var counter=document.getElementById("n"+(i+1));
    if(counter)counter.textContent=n;
    shown+=n;count+=s.length;
  }
  for(var g=0;g<drawn.length;g++)show(drawn[g]);
  total.innerHTML="<b>"+shown+"</b> of "+count+" detections shown";
}
slider.addEventListener("input",apply);
slider.addEventListener("change",apply);
function flag(id,cls,invert){
  var box=document.getElementById(id);
  if(!box)return;
  var set=function(){root.classList.toggle(cls,invert?!box.checked:box.checked);};
  box.addEventListener("change",set);set();
}
flag("labels","nolabels",true);
flag("review-only","review-only",false);
var hides=document.querySelectorAll("input[data-hide]");
for(var h=0;h<hides.length;h++){(function(box){
  var set=function(){root.classList.toggle(box.getAttribute("data-hide"),!box.checked);};
  box.addEventListener("change",set);set();
})(hides[h]);}
var colour=document.getElementById("colour");
if(colour){colour.addEventListener("change",function(){root.classList.toggle("by-outcome",colour.value==="outcome");});}
function sortBy(table,th){
  var heads=table.tHead.rows[0].cells,col=th.cellIndex,asc=th.getAttribute("aria-sort")!=="ascending",
  num=th.getAttribute("data-type")==="num";
  for(var i=0;i<heads.length;i++)heads[i].removeAttribute("aria-sort");
  th.setAttribute("aria-sort",asc?"ascending":"descending");
  var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){
    var x=a.cells[col].getAttribute("data-v"),y=b.cells[col].getAttribute("data-v");
    if(x===""||y==="")return (x==="")-(y==="");
    var d=num||!isNaN(parseFloat(x))?parseFloat(x)-parseFloat(y):x.localeCompare(y);
    return asc?d:-d;
  });
  var frag=document.createDocumentFragment();
  for(var r=0;r<rows.length;r++)frag.appendChild(rows[r]);
  body.appendChild(frag);
}
var tables=document.querySelectorAll("table.sortable");
for(var k=0;k<tables.length;k++){(function(table){
  var heads=table.tHead.rows[0].cells;
  for(var i=0;i<heads.length;i++){(function(th){
    th.addEventListener("click",function(){sortBy(table,th);});
    th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();sortBy(table,th);}});
  })(heads[i]);}
})(tables[k]);}
})();
"""
