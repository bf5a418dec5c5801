"""``measure_map.py``: evaluate detections against ground truth (VOC mAP, VOC07 mAP, COCO AP),
per class, with a confusion summary.

The detections come from ``--model`` (run on the ground truth's images first; they are also
written to ``OUTPUT/detections.csv``) or from a ``--detections`` CSV
(``filepath,x1,y1,x2,y2,class_name,score``, as ``test_frcnn.py`` writes it). A detection's
image is matched to a ground-truth image by path: as written (relative to the current folder),
relative to the detections file's folder, or, failing both, by a file name found once in each.

Outputs in ``--output``: ``metrics.json`` (the :func:`keras_frcnn.evaluation.evaluate` dict plus
``settings``, ``confusion`` and ``unmatched_images``), ``per_class_precision.png``,
``confusion.png``, ``confusion.csv``, ``report.html`` (with ``report_images/``: a self-contained
page to review the metrics and every image in a browser, :mod:`keras_frcnn.inference.review_page`);
``--json FILE`` writes exactly the evaluate() dict.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import Counter
from typing import Sequence

from keras_frcnn.annotations.classes import ClassMap, chromosome_classes, chromosome_labels
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.atomic import write_json, write_text
from keras_frcnn.cli import common
from keras_frcnn.inference.detections import Detections, read_detections_csv, write_detections_csv
from keras_frcnn.errors import UserError, run_cli
from keras_frcnn.evaluation import ConfusionSummary, SideConfusion, confusion_summary, evaluate, side_confusion
from keras_frcnn.evaluation.confusion import BACKGROUND, MISSED

PROG = "measure_map.py"


def build_parser() -> common.ArgumentParser:
    parser = common.ArgumentParser(
        prog=PROG,
        description="Measure detections against ground truth: per-class AP, precision and recall, VOC and "
        "COCO means, and which classes are taken for which. Give --model or --detections.",
    )
    common.add_path_argument(parser, "ground truth: an annotation file or folder in any supported format")
    common.add_parser_argument(parser)
    common.add_classes_argument(parser)
    common.add_labels_argument(parser, "the ground truth, and the detections of a 24-class model (by position "
                               "among the chromosomes scoring >= 0.3)")
    common.add_model_argument(parser, required=False)
    parser.add_argument("--detections", metavar="CSV",
                        help="detections file (filepath,x1,y1,x2,y2,class_name,score), e.g. test_frcnn.py's")
    common.add_output_argument(parser, "measure_output")
    common.add_batch_size_argument(parser)
    common.add_proposals_argument(parser)
    parser.add_argument("--iou", type=common.probability, default=0.5, metavar="T",
                        help="IoU for a detection to match a box (VOC and confusion; default: 0.5)")
    parser.add_argument("--score-threshold", type=common.probability, default=0.5, metavar="P",
                        help="score for the precision/recall columns and the confusion summary (default: 0.5)")
    parser.add_argument("--json", metavar="FILE", help="also write the metrics (voc, voc07, coco) to FILE")
    return parser


# ----------------------------------------------------------------------------- matching paths
def align_paths(
    detections: Sequence[Detections], records: Sequence[ImageRecord], detections_file: str | None
) -> tuple[list[Detections], list[Detections], int]:
    """Rename each detection's image to the ground-truth path it names (see the module
    docstring). Returns ``(all detections, those matching no ground-truth image, how many were
    matched by file name alone)``."""
    truth = {_key(r.path): r.path for r in records}
    by_name: dict[str, list[str]] = {}
    for path in truth.values():
        by_name.setdefault(os.path.basename(path), []).append(path)
    det_names = Counter(os.path.basename(d.path) for d in detections)
    base = os.path.dirname(os.path.abspath(detections_file)) if detections_file else None
    aligned: list[Detections] = []
    unmatched: list[Detections] = []
    by_file_name = 0
    for det in detections:
        candidates = [det.path]
        if base is not None and not os.path.isabs(det.path):
            candidates.append(os.path.join(base, det.path))
        path = next((truth[_key(c)] for c in candidates if _key(c) in truth), None)
        if path is None:
            name = os.path.basename(det.path)
            if len(by_name.get(name, ())) == 1 and det_names[name] == 1:
                path = by_name[name][0]
                by_file_name += 1
        if path is None:
            unmatched.append(det)
            aligned.append(det)
        else:
            aligned.append(Detections(path, det.boxes, det.scores, det.labels))
    return aligned, unmatched, by_file_name


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def evaluation_classes(
    ground_truth: ClassMap, detections: Sequence[Detections], model_classes: Sequence[str] = (),
    classes_file: str | None = None,
) -> tuple[str, ...]:
    """The classes to report: the ``--classes`` list if given, else every label of the ground
    truth, the model and the detections (karyotype order, then others by name)."""
    if classes_file:
        return ground_truth.names
    labels = set(ground_truth.names) | set(model_classes) | {label for d in detections for label in d.labels}
    return ClassMap.from_labels(labels).names


# ----------------------------------------------------------------------------- text output
def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_metrics(metrics: dict, score_threshold: float) -> list[str]:
    """The per-class table, the means and the classes left out of them."""
    per_class = metrics["voc"]["per_class"]
    width = max([len("class"), *(len(name) for name in per_class)])
    at = f"@{score_threshold:g}"
    lines = [f"{'class':<{width}}  {'AP':>6}  {'P' + at:>7}  {'R' + at:>7}  {'n_gt':>6}  {'n_det' + at:>9}"]
    for name, row in per_class.items():
        lines.append(
            f"{name:<{width}}  {_number(row['ap']):>6}  {_number(row['precision']):>7}  {_number(row['recall']):>7}"
            f"  {row['n_gt']:>6}  {row['n_det']:>9}"
        )
    coco = metrics["coco"]
    lines.append(
        f"mean: VOC mAP {_number(metrics['voc']['mAP'])}  VOC07 mAP {_number(metrics['voc07']['mAP'])}  "
        f"COCO AP {_number(coco['AP'])}  AP50 {_number(coco['AP50'])}  AP75 {_number(coco['AP75'])}"
    )
    missing = metrics["voc"]["missing_classes"]
    lines.append(f"left out of the mean (no ground truth): {', '.join(missing) if missing else 'none'}")
    return lines


def format_confusion(summary: ConfusionSummary, sides: SideConfusion, iou: float, score_threshold: float) -> list[str]:
    """Counts of the confusion matrix, its top confusions and how they split by chromosome and side."""
    matrix = summary.matrix
    classes = [name for name in matrix.columns if name != MISSED]
    missed = int(matrix.loc[classes, MISSED].sum())
    background = int(matrix.loc[BACKGROUND, classes].sum())
    lines = [
        f"confusion (IoU >= {iou:g}, score >= {score_threshold:g}): {sides.correct} correct, "
        f"{sides.confused} confused, {missed} missed, {background} on background",
    ]
    if summary.top_confusions:
        lines.append("top confusions (ground truth -> predicted: count):")
        lines += [f"  {gt} -> {predicted}: {count}" for gt, predicted, count in summary.top_confusions]
    if sides.confused:
        share = sides.fraction_same_chromosome or 0.0
        lines.append(
            f"side: {sides.left_right} of {sides.confused} confusions swap N-l and N-r, {sides.side_unknown} involve "
            f"a side-unknown N-?, {sides.other_chromosome} take another chromosome "
            f"({100 * share:.0f}% stay within the chromosome)"
        )
    else:
        lines.append("side: no confusions")
    return lines


# ----------------------------------------------------------------------------- the command
def _detections_from_model(
    args, records: Sequence[ImageRecord]
) -> tuple[list[Detections], tuple[str, ...], list[float], dict[str, str]]:
    """The model's detections, its classes, the seconds per image and what the report says of the model."""
    from keras_frcnn.inference.review_page import describe_model

    model = common.load_model(args.model, args.proposals)
    print(f"running {args.model} on {len(records)} image(s)...")
    detections: list[Detections] = []
    seconds: list[float] = []
    for _, chunk, chunk_seconds in common.predict_in_chunks(model, records, args.batch_size):
        detections += chunk
        seconds += chunk_seconds
        print(f"  {len(detections)}/{len(records)} images, {sum(seconds) / len(seconds):.3f} s per image")
    path = os.path.join(args.output, "detections.csv")
    write_detections_csv(path, detections)
    print(f"wrote {path}")
    info = describe_model(args.model, network=model.frcnn_config.network, class_names=model.class_names)
    return detections, tuple(model.class_names), seconds, info


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.model is None) == (args.detections is None):
        raise UserError("give either --model or --detections (exactly one)")
    if args.proposals is not None and args.model is None:
        raise UserError("--proposals applies to --model (the detections of --detections are already made)")
    if args.model is not None:
        common.check_model_path(args.model)
    else:
        detections = read_detections_csv(args.detections)  # bad columns: an error before the slow part
    # The images are only opened when the model needs them.
    truth = common.read_dataset(args.path, args.parser, args.classes, check_images=args.model is not None,
                                labels=args.labels)
    common.print_warnings(truth.warnings)
    records = truth.records
    print(f"ground truth: {args.path}: {len(records)} images, {truth.num_boxes} boxes, {len(truth.class_map)} classes")

    model_classes: tuple[str, ...] = ()
    seconds: list[float] | None = None
    if args.model is not None:
        detections, model_classes, seconds, model_info = _detections_from_model(args, records)
        unmatched: list[Detections] = []
    else:
        from keras_frcnn.inference.review_page import describe_model

        model_info = describe_model(detections_file=args.detections)
        detections, unmatched, by_name = align_paths(detections, records, args.detections)
        count = sum(len(d) for d in detections)
        print(f"detections: {args.detections}: {len(detections)} images, {count} detections")
        if by_name:
            print(f"note: {by_name} detection image(s) matched to the ground truth by file name only")
        if unmatched:
            boxes = sum(len(d) for d in unmatched)
            common.warn(
                f"{len(unmatched)} of {len(detections)} image(s) in {args.detections} match no ground-truth image "
                f"(e.g. {unmatched[0].path}); their {boxes} detection(s) count as false positives"
            )
    detections = [common.in_label_scheme(d, args.labels) for d in detections]
    if args.labels == "paper49" and set(model_classes) <= set(chromosome_classes()):
        model_classes = chromosome_labels()  # the 24-class model's detections now carry the 49 labels
    names = evaluation_classes(truth.class_map, detections, model_classes, args.classes)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*not in the ground truth")  # warned about above
        metrics = evaluate(records, detections, names, iou_threshold=args.iou, score_threshold=args.score_threshold)
        confusion = confusion_summary(records, detections, names, args.iou, args.score_threshold)
    sides = side_confusion(confusion.matrix)

    print("\n".join(format_metrics(metrics, args.score_threshold)))
    print("\n".join(format_confusion(confusion, sides, args.iou, args.score_threshold)))
    _write_outputs(args, metrics, confusion, sides, unmatched,
                   page={"records": records, "detections": detections, "class_names": names,
                         "model_info": model_info, "seconds": seconds})
    return 0


def _write_outputs(args, metrics: dict, confusion: ConfusionSummary, sides: SideConfusion,
                   unmatched: Sequence[Detections], page: dict | None = None) -> None:
    """The files of ``--output`` (and ``--json``); ``page``: what ``report.html`` shows (``records``,
    ``detections``, ``class_names``, ``model_info``, ``seconds`` per image or None); without it no page."""
    from keras_frcnn.training.plots import plot_confusion, plot_per_class_precision

    out = args.output
    report = {
        **metrics,
        "settings": {
            "ground_truth": args.path, "model": args.model, "detections": args.detections,
            "iou_threshold": args.iou, "score_threshold": args.score_threshold,
        },
        "confusion": {
            "top": [{"ground_truth": gt, "predicted": p, "count": n} for gt, p, n in confusion.top_confusions],
            "side": sides.as_dict(),
        },
        "unmatched_images": [d.path for d in unmatched],
    }
    paths = [os.path.join(out, name) for name in
             ("metrics.json", "per_class_precision.png", "confusion.png", "confusion.csv")]
    write_json(paths[0], report)
    plot_per_class_precision(metrics, paths[1])
    plot_confusion(confusion.matrix, paths[2])
    write_text(paths[3], confusion.matrix.to_csv())
    if page is not None:
        from keras_frcnn.inference.review_page import write_review_page

        paths.append(write_review_page(
            out, images=page["records"], detections=page["detections"], ground_truth=page["records"],
            metrics=metrics, confusion=confusion.matrix, class_names=page["class_names"],
            model_info=page["model_info"], run_info={"Ground truth": args.path},
            seconds_per_image=page["seconds"], program=PROG, score_threshold=args.score_threshold,
            iou_threshold=args.iou, eval_score_threshold=args.score_threshold,
        ))
    if args.json and os.path.abspath(args.json) != os.path.abspath(paths[0]):  # metrics.json holds them already
        write_json(args.json, metrics)
        paths.append(args.json)
    print(f"wrote {', '.join(paths)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``measure_map.py``: bad input is one line on stderr and exit status 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
