"""Flags and input handling shared by the command-line programs (test, measure, train).

Flags (each ``add_*_argument(parser)`` adds one, with the same name and meaning everywhere):

- ``-p/--path``: the input (:func:`add_path_argument`);
- ``-o/--parser simple|pascal_voc|labelme|coco``: the annotation format, ``simple`` being the
  keras-frcnn CSV ``filepath,x1,y1,x2,y2,class_name``; default: told from the path
  (:func:`add_parser_argument`, :func:`annotation_format`);
- ``--classes FILE``: a class list (:func:`add_classes_argument`);
- ``--labels as-is|paper49``: the label scheme (:func:`add_labels_argument`, :func:`in_label_scheme`);
- ``--model``: a run folder or ``.keras`` file (:func:`add_model_argument`);
- ``--output``, ``--batch-size``.

Inputs: :func:`read_dataset` reads ground truth in any supported format;
:func:`image_records` turns ``-p`` (an image folder, one image or an annotation file) into the
images to run a model on; :func:`predict_in_chunks` runs the model on them.

Parse with :class:`ArgumentParser` and run ``main`` through :func:`keras_frcnn.errors.run_cli`:
a bad flag or input is then one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Iterator, Mapping, Sequence, TextIO

import cv2
import numpy as np

from keras_frcnn.annotations import SCHEMES, AnnotationSet, check_annotations, read_annotations
from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.images import ImageReadError, load_image, read_image_size
from keras_frcnn.annotations.label_schemes import paper49_detections
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.cli.args import ArgumentParser, positive_float, positive_int, probability  # noqa: F401  (part of this module's API)
from keras_frcnn.cli.tensorflow_start import start_tensorflow
from keras_frcnn.errors import UserError
from keras_frcnn.inference.karyotype import chromosome_indices
from keras_frcnn.progress import format_duration, time_left

PARSER_FORMATS: Mapping[str, str] = MappingProxyType(
    {"simple": "csv", "pascal_voc": "pascal_voc", "labelme": "labelme", "coco": "coco", "yolo": "yolo"}
)
"""``-o/--parser`` names (as in the keras-frcnn family) -> :data:`keras_frcnn.annotations.FORMATS`."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""Files taken as images when ``-p`` is a folder or a single file."""

# Leading bytes of the formats TensorFlow's decoder (the model's input pipeline) reads.
_TF_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8")


def warn(message: str, stream: TextIO | None = None) -> None:
    """Print ``warning: message`` on stderr."""
    print(f"warning: {message}", file=stream or sys.stderr)


# ----------------------------------------------------------------------------- flags
def add_path_argument(parser: argparse.ArgumentParser, help: str, *, required: bool = True) -> None:
    """``-p/--path`` (``args.path``)."""
    parser.add_argument("-p", "--path", required=required, metavar="PATH", help=help)


def add_parser_argument(parser: argparse.ArgumentParser) -> None:
    """``-o/--parser`` (``args.parser``: a key of :data:`PARSER_FORMATS` or None = from the path);
    turn it into a format with :func:`annotation_format`."""
    parser.add_argument(
        "-o", "--parser", choices=tuple(PARSER_FORMATS), default=None,
        help="annotation format: simple (CSV filepath,x1,y1,x2,y2,class_name), pascal_voc, labelme, coco "
        "or yolo (default: told from the path)",
    )


def annotation_format(parser_name: str | None) -> str | None:
    """The :func:`read_annotations` ``format=`` of a ``--parser`` name (None: autodetect)."""
    if parser_name is None:
        return None
    try:
        return PARSER_FORMATS[parser_name]
    except KeyError:
        raise UserError(f"unknown parser {parser_name!r} (choose from {', '.join(PARSER_FORMATS)})") from None


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` (``args.quiet``): no line per image, only the summary (for logs)."""
    parser.add_argument("--quiet", action="store_true", help="no line per image, only the summary")


def time_left_suffix(start: float, done: int, total: int) -> str:
    """``", about 2 min 10 s left"`` after ``done`` of ``total`` images begun at ``start``
    (``time.perf_counter()``); empty when all are done."""
    left = time_left(time.perf_counter() - start, done, total)
    return "" if left is None or done >= total else f", about {format_duration(left)} left"


def add_classes_argument(parser: argparse.ArgumentParser) -> None:
    """``--classes FILE`` (``args.classes``): a class list; other labels are errors."""
    parser.add_argument(
        "--classes", metavar="FILE",
        help="class list (one name a line, or JSON); labels not in it are errors (default: the labels found)",
    )


def add_labels_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--labels`` (``args.labels``): the label scheme (:mod:`keras_frcnn.annotations.label_schemes`)."""
    parser.add_argument(
        "--labels", choices=SCHEMES, default="as-is",
        help=f"as-is, or paper49: 24-class karyogram labels (1..22, X, Y) become the paper's 49 (N-l, N-r by box "
        f"centre x) in {what}",
    )


def in_label_scheme(detections: Detections, scheme: str, *, min_score: float = 0.3) -> Detections:
    """``detections`` in the label scheme ``scheme``: with ``paper49``, a 24-class model's labels get
    their sides by position among the chromosomes counted at ``min_score`` (a 49-label model's pass unchanged)."""
    if scheme != "paper49":
        return detections
    return paper49_detections(detections, chromosome_indices(detections, min_score=min_score))


def add_model_argument(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model`` (``args.model``): a run folder (its best.keras, else last.keras) or a ``.keras`` file."""
    parser.add_argument(
        "--model", required=required, metavar="PATH",
        help="trained model: a run folder (uses best.keras, else last.keras) or a .keras file",
    )


def add_detection_arguments(parser: argparse.ArgumentParser, *, label_assignment: str | None) -> None:
    """How detections become counted chromosomes (``test_frcnn.py``, ``karyotype_frcnn.py``):
    ``--score-threshold --proposals --label-assignment --labels --karyotype-score --low-confidence``;
    ``label_assignment`` is the default (None: the model's own setting)."""
    parser.add_argument("--score-threshold", type=probability, default=None, metavar="P",
                        help="keep detections scoring at least P (default: the model's score_threshold)")
    add_proposals_argument(parser)
    default = "the model's setting" if label_assignment is None else label_assignment
    parser.add_argument("--label-assignment", choices=("none", "optimal", "karyotype"), default=label_assignment,
                        help="karyotype: each label at most as often as a cell holds it (24 classes: twice, Y once; "
                        "49 labels: once) plus one extra copy when the model is sure (a trisomy); optimal: each "
                        f"label at most once per image; none: per-class NMS (default: {default})")
    add_labels_argument(parser, "the detections of a 24-class model (by position among the counted "
                        "chromosomes; a 49-label model's detections are already so)")
    parser.add_argument("--karyotype-score", type=probability, default=0.3, metavar="P",
                        help="detections scoring at least P count as chromosomes; overlapping ones (IoU >= 0.5) "
                        "count once, with their best label (default: 0.3)")
    parser.add_argument("--low-confidence", type=probability, default=0.5, metavar="P",
                        help="counted chromosomes scoring below P are marked and listed for review (default: 0.5)")


def detection_setup(args: argparse.Namespace) -> tuple[list[ImageRecord], object, float]:
    """The images, the model (with ``--label-assignment`` applied when given) and the score
    threshold of a command made with :func:`add_detection_arguments`; warns when
    ``--score-threshold`` is below what the model already drops."""
    check_model_path(args.model)
    records = image_records(args.path, args.parser)
    check_images(records)
    model = load_model(args.model, args.proposals)
    if args.label_assignment is not None:
        model.set_label_assignment(args.label_assignment)
    model_threshold = float(model.frcnn_config.score_threshold)
    threshold = model_threshold if args.score_threshold is None else args.score_threshold
    if threshold < model_threshold:
        warn(f"the model already drops detections scoring below its score_threshold {model_threshold:g}; "
             f"--score-threshold {threshold:g} cannot bring them back")
    return records, model, threshold


def add_output_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--output`` (``args.output``): the folder every output is written to."""
    parser.add_argument("--output", default=default, metavar="FOLDER",
                        help=f"folder for the outputs (default: {default})")


def add_batch_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--batch-size`` (``args.batch_size``): a number or ``auto`` (:mod:`keras_frcnn.inference.batching`)."""
    from keras_frcnn.inference.batching import AUTO

    def batch_size(text: str) -> int | str:
        return AUTO if text == AUTO else positive_int(text)

    parser.add_argument("--batch-size", type=batch_size, default=AUTO, metavar="N",
                        help="images per model call, or auto (default): 2 for VGG16 on a CPU, where that is "
                             "faster, else 1")


# ----------------------------------------------------------------------------- ground truth
def read_dataset(
    path: str,
    parser_name: str | None = None,
    classes_file: str | None = None,
    *,
    check_images: bool = True,
    clip_boxes: bool = False,
    labels: str = "as-is",
) -> AnnotationSet:
    """Read and check ground truth for a command: ``path`` in any supported format,
    ``parser_name`` a ``--parser`` value (None: told from the path), ``classes_file`` a class
    list (None: the labels found), ``labels`` the label scheme. ``check_images=False`` skips opening the
    images (enough to evaluate; box-inside-image checks then only use sizes the annotation declares). Raises a
    one-line :class:`UserError` naming the first problem. Print the warnings with
    :func:`print_warnings`."""
    classes = ClassMap.from_file(classes_file) if classes_file else None
    return read_annotations(
        path, classes=classes, format=annotation_format(parser_name), check_images=check_images,
        clip_boxes=clip_boxes, labels=labels,
    )


def print_warnings(messages: Sequence[str], *, limit: int = 5, stream: TextIO | None = None) -> None:
    """The first ``limit`` warnings, then how many more there are."""
    for message in messages[:limit]:
        warn(str(message), stream)
    if len(messages) > limit:
        warn(f"... and {len(messages) - limit} more warnings", stream)


# ----------------------------------------------------------------------------- images to run on
def image_records(path: str, parser_name: str | None = None) -> list[ImageRecord]:
    """The images named by ``-p``, without boxes: every image file of a folder (sorted by name; not
    recursive), one image file, or the images of an annotation file or folder in any format
    (its ground truth is ignored, and so are problems with its boxes). Giving ``parser_name``
    forces the annotation reading. A folder without images but with annotations is read as
    annotations (LabelMe or Pascal VOC)."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file or directory")
    if parser_name is None:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
            files = [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
            if files:
                return [_image_only(file) for file in files]
            if not _has_annotations(path):
                raise UserError(
                    f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) and no annotations in this folder"
                )
        elif path.lower().endswith(IMAGE_EXTENSIONS):
            return [_image_only(path)]
    return annotation_images(path, parser_name)


def annotation_images(path: str, parser_name: str | None = None) -> list[ImageRecord]:
    """The images of an annotation file or folder, without boxes. Problems with boxes or labels
    are ignored (a note says how many); an annotation that names no image is an error."""
    report = check_annotations(path, format=annotation_format(parser_name), check_images=False)
    if not report.records:
        report.raise_for_errors()
        raise UserError(f"{path}: no images in these annotations")
    if report.errors:
        print(f"note: {len(report.errors)} problem(s) with the ground truth in {path} ignored "
              "(only its images are used)")
    return [ImageRecord(r.path, np.zeros((0, 4), np.float32), (), image_bytes=r.image_bytes) for r in report.records]


def _image_only(path: str) -> ImageRecord:
    return ImageRecord(os.path.normpath(path), np.zeros((0, 4), np.float32), ())


def _has_annotations(folder: str) -> bool:
    extensions = {os.path.splitext(name)[1].lower() for name in os.listdir(folder)}
    return bool(extensions & {".json", ".xml"}) or os.path.isdir(os.path.join(folder, "Annotations"))


def check_images(records: Sequence[ImageRecord]) -> None:
    """Decode every image once (two threads); raise one :class:`UserError` naming the first that
    cannot be read and how many more there are."""

    def error(record: ImageRecord) -> ImageReadError | None:
        try:
            read_image_size(record)
        except ImageReadError as err:
            return err
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        errors = [err for err in pool.map(error, records) if err is not None]
    if errors:
        more = f" (and {len(errors) - 1} more unreadable images)" if len(errors) > 1 else ""
        raise UserError(f"{errors[0]}{more}")


# ----------------------------------------------------------------------------- running a model
def check_model_path(path: str) -> str:
    """The ``.keras`` file ``--model`` names (cheap: call it before any slow step)."""
    from keras_frcnn.training.runs import resolve_model_path

    return resolve_model_path(path)


def load_model(path: str, proposals: int | None = None):
    """Load the model ``--model`` names (:func:`keras_frcnn.training.runs.load_model`), keeping
    ``proposals`` RPN proposals per image when given (``--proposals``)."""
    start_tensorflow()
    from keras_frcnn.training.runs import load_model as load

    model = load(path)
    if proposals is not None:
        model.set_test_proposals(proposals)
    return model


def add_proposals_argument(parser: argparse.ArgumentParser) -> None:
    """``--proposals N`` (``args.proposals``): RPN proposals per image at inference (None: the model's)."""
    parser.add_argument("--proposals", type=positive_int, default=None, metavar="N",
                        help="RPN proposals kept per image (default: the model's post_nms_top_n_test; more find "
                        "more of many small objects, such as the 46 of a metaphase spread, and run slower)")


def predict_in_chunks(
    model, records: Sequence[ImageRecord], batch_size: int | str, *, chunk_images: int = 64
) -> Iterator[tuple[int, list[Detections], list[float]]]:
    """Run ``model`` on the records' images, ``batch_size`` (or ``"auto"``:
    :func:`~keras_frcnn.inference.batching.resolve_batch_size`) per call, ``chunk_images`` at a time (rounded to whole
    batches), by :func:`keras_frcnn.inference.detector.predict_records` (images decoded and resized
    as for training, ahead of the model). Yields ``(index of the chunk's first record, its detections, seconds per image)``;
    an image's time is its batch's time shared out (the first batch includes start-up).
    Images TensorFlow cannot decode (TIFF) are decoded by OpenCV and handed over as PNG.
    The model runs with its convolution kernels as constants where they are small
    (:class:`keras_frcnn.inference.detector.Detector` with ``constant_weights="auto"``)."""
    from keras_frcnn.inference.batching import resolve_batch_size
    from keras_frcnn.inference.detector import Detector, predict_records

    detector = Detector(model, constant_weights="auto")
    batch_size = resolve_batch_size(batch_size, model.frcnn_config.network)
    chunk_images = batch_size * max(1, -(-chunk_images // batch_size))
    for start in range(0, len(records), chunk_images):
        chunk = [_tensorflow_readable(record) for record in records[start:start + chunk_images]]
        seconds: list[float] = []
        clock = {"last": time.perf_counter(), "done": 0}

        def progress(done: int) -> None:
            now = time.perf_counter()
            count = done - clock["done"]
            seconds.extend([(now - clock["last"]) / max(count, 1)] * count)
            clock.update(last=now, done=done)

        yield start, predict_records(detector, chunk, batch_size, progress), seconds


def _tensorflow_readable(record: ImageRecord) -> ImageRecord:
    """``record`` itself if TensorFlow decodes its image, else a copy carrying the image as PNG bytes."""
    if record.image_bytes is not None:
        head = record.image_bytes[:8]
    else:
        try:
            with open(record.path, "rb") as handle:
                head = handle.read(8)
        except OSError as err:
            raise ImageReadError(record.path, err.strerror or type(err).__name__) from None
    if head.startswith(_TF_SIGNATURES):
        return record
    ok, encoded = cv2.imencode(".png", load_image(record)[:, :, ::-1])
    if not ok:
        raise ImageReadError(record.path, "cannot re-encode it for the model")
    return ImageRecord(record.path, record.boxes, record.labels, record.difficult, record.width, record.height,
                       image_bytes=encoded.tobytes())
