"""VOC metrics on hand-worked cases, the matching rule, detections CSV, confusion summary, plots."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections, read_detections_csv, write_detections_csv
from keras_frcnn.errors import UserError
from keras_frcnn.evaluation import (
    average_precision,
    confusion_summary,
    evaluate,
    evaluate_voc,
    side_confusion,
)
from keras_frcnn.evaluation.matching import NO_MATCH, EvalImage, greedy_match
from keras_frcnn.model.iou import pairwise_iou
from keras_frcnn.training.plots import plot_confusion, plot_per_class_precision

# Unit boxes on a row, 10 px wide, far enough apart never to overlap.
BOX = [[20.0 * i, 0.0, 20.0 * i + 10.0, 10.0] for i in range(6)]


def gt(path, boxes, labels, difficult=None):
    return ImageRecord(path, np.asarray(boxes, np.float32).reshape(-1, 4), tuple(labels), difficult)


def det(path, boxes, scores, labels):
    return Detections(path, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32), tuple(labels))


def voc(ground_truth, detections, classes=("a",), **kwargs):
    return evaluate_voc(ground_truth, detections, classes, **kwargs)


# --- average precision -------------------------------------------------------------------------------


def test_perfect_detection_has_ap_one():
    truth = [gt("i1.png", BOX[:2], "ab"), gt("i2.png", BOX[:1], "a")]
    found = [det("i1.png", BOX[:2], [0.9, 0.8], "ab"), det("i2.png", BOX[:1], [0.7], "a")]
    result = evaluate(truth, found, ["a", "b"])
    assert result["voc"]["mAP"] == 1.0
    assert result["voc07"]["mAP"] == 1.0
    assert result["coco"]["AP"] == pytest.approx(1.0)
    assert result["voc"]["per_class"]["a"] == {"ap": 1.0, "precision": 1.0, "recall": 1.0, "n_gt": 2, "n_det": 2}
    assert result["voc"]["missing_classes"] == []


def test_tp_duplicate_tp_gives_five_sixths():
    # Two gts; detections by score: 0.9 TP (box 0), 0.8 duplicate of box 0 -> FP, 0.7 TP (box 1).
    # recall    = 1/2, 1/2, 2/2 ; precision = 1, 1/2, 2/3
    # envelope  = 1, 2/3, 2/3   ; all-point AP = 0.5 * 1 + 0.5 * 2/3 = 5/6 = 0.8333
    # 11-point: t = 0..0.5 -> 1 (6 points), t = 0.6..1 -> 2/3 (5 points): (6 + 10/3) / 11 = 28/33
    truth = [gt("i.png", BOX[:2], "aa")]
    found = [det("i.png", [BOX[0], BOX[0], BOX[1]], [0.9, 0.8, 0.7], "aaa")]
    result = evaluate(truth, found, ["a"])
    assert result["voc"]["per_class"]["a"]["ap"] == pytest.approx(5 / 6)
    assert result["voc"]["mAP"] == pytest.approx(0.8333333)
    assert result["voc07"]["per_class"]["a"]["ap"] == pytest.approx(28 / 33)
    # At score >= 0.5: 2 TP of 3 counted detections, both gts found.
    assert result["voc"]["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert result["voc"]["per_class"]["a"]["recall"] == 1.0
    assert result["voc"]["per_class"]["a"]["n_det"] == 3


def test_duplicate_detection_is_a_false_positive():
    # One gt, found twice: TP then FP. AP stays 1 (recall 1 is reached at precision 1) but the
    # precision at the threshold is 1/2 and n_det 2.
    result = voc([gt("i.png", BOX[:1], "a")], [det("i.png", [BOX[0], BOX[0]], [0.9, 0.8], "aa")])
    assert result["per_class"]["a"]["ap"] == 1.0
    assert result["per_class"]["a"]["precision"] == 0.5
    assert result["per_class"]["a"]["n_det"] == 2


def test_missed_object_lowers_recall_and_ap():
    # 1 of 2 found: recall 1/2 at precision 1, then nothing -> all-point AP = 0.5;
    # 11-point: t = 0..0.5 reached with precision 1 (6 points), t >= 0.6 never -> 6/11.
    truth = [gt("i.png", BOX[:2], "aa")]
    found = [det("i.png", BOX[:1], [0.9], "a")]
    result = evaluate(truth, found, ["a"])
    assert result["voc"]["per_class"]["a"]["ap"] == pytest.approx(0.5)
    assert result["voc"]["per_class"]["a"]["recall"] == 0.5
    assert result["voc07"]["per_class"]["a"]["ap"] == pytest.approx(6 / 11)


def test_detections_in_image_without_ground_truth_are_false_positives():
    # "empty.png" is in the ground truth with no boxes. By score: 0.9 FP (empty.png), 0.8 TP.
    # recall 0, 1 ; precision 0, 1/2 -> envelope 1/2, 1/2 -> AP = 1 * 1/2 = 0.5
    truth = [gt("i.png", BOX[:1], "a"), gt("empty.png", [], "")]
    found = [det("empty.png", BOX[:1], [0.9], "a"), det("i.png", BOX[:1], [0.8], "a")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a listed image with no boxes is no surprise: no warning
        result = voc(truth, found)
    assert result["per_class"]["a"]["ap"] == pytest.approx(0.5)


def test_detections_for_unknown_image_are_false_positives_and_warned():
    truth = [gt("i.png", BOX[:1], "a")]
    found = [det("other.png", BOX[:1], [0.9], "a"), det("i.png", BOX[:1], [0.8], "a")]
    with pytest.warns(UserWarning, match="not in the ground truth"):
        result = voc(truth, found)
    assert result["per_class"]["a"]["ap"] == pytest.approx(0.5)  # as in the test above


def test_class_never_detected_has_ap_zero_and_counts_in_mean():
    truth = [gt("i.png", BOX[:2], "ab")]
    found = [det("i.png", BOX[:1], [0.9], "a")]
    result = voc(truth, found, ("a", "b"))
    assert result["per_class"]["b"] == {"ap": 0.0, "precision": 0.0, "recall": 0.0, "n_gt": 1, "n_det": 0}
    assert result["mAP"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert result["missing_classes"] == []


def test_class_without_ground_truth_left_out_of_mean():
    truth = [gt("i.png", BOX[:1], "a")]
    found = [det("i.png", [BOX[0], BOX[3]], [0.9, 0.95], "ac")]
    result = evaluate(truth, found, ["a", "b", "c"])
    assert result["voc"]["mAP"] == 1.0 and result["voc07"]["mAP"] == 1.0
    assert result["voc"]["missing_classes"] == ["b", "c"]
    assert result["voc"]["per_class"]["c"] == {"ap": None, "precision": 0.0, "recall": None, "n_gt": 0, "n_det": 1}
    assert result["voc"]["per_class"]["b"]["precision"] is None  # neither gt nor detections
    assert result["coco"]["per_class"]["c"] is None
    json.dumps(result, allow_nan=False)  # JSON-ready: None, never NaN


def test_report_has_exactly_the_documented_shape():
    result = evaluate([gt("i.png", BOX[:1], "a")], [det("i.png", BOX[:1], [0.9], "a")], ["a", "b"])
    assert set(result) == {"voc", "voc07", "coco"}
    assert set(result["voc"]) == {"mAP", "per_class", "missing_classes"}
    assert set(result["voc07"]) == {"mAP", "per_class"}
    assert set(result["coco"]) == {"AP", "AP50", "AP75", "per_class"}
    assert list(result["voc"]["per_class"]) == ["a", "b"]
    assert set(result["voc"]["per_class"]["a"]) == {"ap", "precision", "recall", "n_gt", "n_det"}


def test_difficult_boxes_are_ignored():
    # Box 1 is difficult. Detection 0.95 on it is neither TP nor FP; 0.9 finds box 0.
    # Counted: one TP out of n_gt = 1 -> AP 1 (were the 0.95 one an FP: AP 0.5;
    # were box 1 an ordinary gt: n_gt 2, n_det 2).
    truth = [gt("i.png", BOX[:2], "aa", difficult=[False, True])]
    found = [det("i.png", [BOX[1], BOX[0]], [0.95, 0.9], "aa")]
    result = voc(truth, found)
    assert result["per_class"]["a"] == {"ap": 1.0, "precision": 1.0, "recall": 1.0, "n_gt": 1, "n_det": 1}
    # An undetected difficult box does not lower recall.
    result = voc(truth, [det("i.png", BOX[:1], [0.9], "a")])
    assert result["per_class"]["a"]["ap"] == 1.0


def test_iou_exactly_at_threshold_matches():
    truth = [gt("i.png", [[0, 0, 10, 10]], "a")]
    half = det("i.png", [[0, 0, 10, 5]], [0.9], "a")  # IoU = 50 / 100 = 0.5 exactly
    assert voc(truth, [half])["per_class"]["a"]["ap"] == 1.0
    below = det("i.png", [[0, 0, 10, 4.9]], [0.9], "a")  # IoU 0.49
    assert voc(truth, [below])["per_class"]["a"]["ap"] == 0.0
    assert voc(truth, [half], iou_threshold=0.51)["per_class"]["a"]["ap"] == 0.0


def test_highest_iou_unmatched_rule_differs_from_devkit():
    # gt A = [0,0,10,10], B = [2,0,12,10] (same class); IoU(A, B) = 8/12.
    # d1 (0.9) = [0.5,0,10.5,10]: IoU A = 9.5/10.5 = 0.905, IoU B = 8.5/11.5 = 0.739 -> A.
    # d2 (0.8) = [0,0,10,10]:     IoU A = 1.0, IoU B = 0.667.
    # Devkit: d2's best gt is A, already taken -> FP: precision 1, 1/2 at recall 1/2 -> AP 0.5.
    # Here:   d2 takes the best UNMATCHED gt, B (0.667 >= 0.5) -> TP: AP 1.
    truth = [gt("i.png", [[0, 0, 10, 10], [2, 0, 12, 10]], "aa")]
    found = [det("i.png", [[0.5, 0, 10.5, 10], [0, 0, 10, 10]], [0.9, 0.8], "aa")]
    result = evaluate(truth, found, ["a"])
    assert result["voc"]["per_class"]["a"]["ap"] == 1.0
    assert result["voc"]["per_class"]["a"]["precision"] == 1.0


def test_score_threshold_only_changes_precision_recall_columns():
    truth = [gt("i.png", BOX[:2], "aa")]
    found = [det("i.png", BOX[:2], [0.9, 0.3], "aa")]
    low = voc(truth, found, score_threshold=0.2)["per_class"]["a"]
    high = voc(truth, found, score_threshold=0.5)["per_class"]["a"]
    assert low["ap"] == high["ap"] == 1.0
    assert (low["recall"], low["n_det"]) == (1.0, 2)
    assert (high["recall"], high["n_det"]) == (0.5, 1)


def test_paths_are_normalised_and_classes_are_checked():
    assert voc([gt("./d/i.png", BOX[:1], "a")], [det("d/i.png", BOX[:1], [0.9], "a")])["mAP"] == 1.0
    with pytest.raises(UserError, match="'z' is not one of the evaluated classes"):
        voc([gt("i.png", BOX[:1], "a")], [det("i.png", BOX[:1], [0.9], "z")])
    with pytest.raises(UserError, match="listed twice"):
        voc([gt("i.png", BOX[:1], "a"), gt("i.png", BOX[:1], "a")], [])
    with pytest.raises(UserError, match="no ground-truth boxes"):
        evaluate([gt("i.png", [], "")], [], ["a"])
    with pytest.raises(UserError, match="iou_threshold"):
        voc([gt("i.png", BOX[:1], "a")], [], iou_threshold=1.5)


def test_average_precision_function():
    assert average_precision([], []) == 0.0
    assert average_precision([], [], eleven_point=True) == 0.0
    # The thresholds are np.arange(0.0, 1.1, 0.1), as py-faster-rcnn, detectron2 and mmdetection use:
    # 0.30000000000000004, 0.6000000000000001 and 0.7000000000000001 lie above the tenths, so a recall
    # of exactly 3/10 reaches t = 0, 0.1, 0.2 only (3/11, not 4/11), and 3/5 reaches t <= 0.5 (6/11).
    assert average_precision([0.1, 0.2, 0.3], [1.0, 1.0, 1.0], eleven_point=True) == pytest.approx(3 / 11)
    assert average_precision([0.6], [1.0], eleven_point=True) == pytest.approx(6 / 11)
    assert average_precision([0.8], [0.5], eleven_point=True) == pytest.approx(9 * 0.5 / 11)


def _eleven_point_reference(recall, precision) -> float:
    """The 11-point rule as the reference tools loop over it (each threshold of np.arange(0, 1.1, 0.1))."""
    recall, precision = np.asarray(recall), np.asarray(precision)
    return sum(precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in np.arange(0.0, 1.1, 0.1)) / 11


def test_eleven_point_ap_equals_the_reference_tools_rule_with_few_boxes():
    rng = np.random.default_rng(0)
    for n_gt in (3, 5, 7, 10):
        for _ in range(50):
            hits = rng.random(12) < 0.6
            recall = np.cumsum(hits)[: n_gt * 2] / n_gt
            recall = np.minimum(recall, 1.0)
            precision = np.cumsum(hits)[: n_gt * 2] / np.arange(1, len(recall) + 1)
            assert average_precision(recall, precision, eleven_point=True) == pytest.approx(
                _eleven_point_reference(recall, precision), abs=1e-12)


def _reference_match(image: EvalImage, threshold: float) -> np.ndarray:
    """Plain loop version of the rule: descending score, best unmatched same-class gt."""
    iou = pairwise_iou(image.det_boxes, image.gt_boxes)
    used = set()
    match = np.full(len(image.det_scores), NO_MATCH)
    for d in sorted(range(len(image.det_scores)), key=lambda i: (-image.det_scores[i], i)):
        best, best_iou = NO_MATCH, -1.0
        for g in range(len(image.gt_classes)):
            if g in used or image.gt_classes[g] != image.det_classes[d] or iou[d, g] < threshold:
                continue
            if iou[d, g] > best_iou:
                best, best_iou = g, iou[d, g]
        match[d] = best
        if best != NO_MATCH and not image.gt_difficult[best]:
            used.add(best)
    return match


def test_vectorised_matching_equals_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_gt, n_det = rng.integers(0, 8), rng.integers(0, 12)
        xy = rng.uniform(0, 20, (n_gt, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(5, 15, (n_gt, 2))], 1).astype(np.float32)
        source = gt_boxes[rng.integers(0, max(n_gt, 1), n_det)] if n_gt else np.zeros((n_det, 4), np.float32)
        det_boxes = (source + rng.normal(0, 2, (n_det, 4))).astype(np.float32)
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        image = EvalImage(
            "x", gt_boxes, rng.integers(0, 2, n_gt), rng.random(n_gt) < 0.2,
            det_boxes, rng.integers(0, 2, n_det), rng.random(n_det).astype(np.float32),
        )
        np.testing.assert_array_equal(greedy_match(image, 0.3), _reference_match(image, 0.3))


# --- detections CSV ----------------------------------------------------------------------------------


def test_detections_csv_round_trip(tmp_path):
    found = [
        det("img, with comma.png", [[1.5, 2.25, 30.125, 40.0], [0.1, 0.2, 0.3, 0.4]], [0.987, 0.1], ["1-l", "X-?"]),
        det("nothing.png", [], [], []),
        det("c.png", [[5, 6, 7, 8]], [0.5], ["Y"]),
    ]
    out = tmp_path / "detections.csv"
    write_detections_csv(out, found)
    lines = out.read_text().splitlines()
    assert lines[0] == "filepath,x1,y1,x2,y2,class_name,score"
    assert "nothing.png,,,,,," in lines
    back = read_detections_csv(out)
    assert [d.path for d in back] == [d.path for d in found]
    for a, b in zip(found, back):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.labels == b.labels
    assert len(back[1]) == 0
    assert os.listdir(tmp_path) == ["detections.csv"]


@pytest.mark.parametrize(
    "row, problem",
    [
        ("a.png,1,2,3,4,1-l", "expected 7 fields"),
        ("a.png,1,two,3,4,1-l,0.9", "y1 is not a number"),
        ("a.png,1,2,3,4,,0.9", "missing value for class_name"),
        ("a.png,5,2,3,4,1-l,0.9", "inverted box"),
        ("a.png,1,2,3,4,1-l,nan", "score is not finite"),
        (",1,2,3,4,1-l,0.9", "empty filepath"),
    ],
)
def test_detections_csv_bad_rows(tmp_path, row, problem):
    path = tmp_path / "bad.csv"
    path.write_text("filepath,x1,y1,x2,y2,class_name,score\na.png,1,2,3,4,1-l,0.9\n" + row + "\n")
    with pytest.raises(UserError) as info:
        read_detections_csv(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert problem in str(info.value)


def test_detections_csv_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read detections"):
        read_detections_csv(tmp_path / "absent.csv")


# --- confusion ---------------------------------------------------------------------------------------


def _confusion_case():
    classes = ["1-l", "1-r", "2-l", "5-l", "5-?"]
    truth = [gt("i.png", BOX[:5], ["1-l", "1-r", "2-l", "5-l", "1-l"])]
    found = [det("i.png",
                 [BOX[0], BOX[1], BOX[3], BOX[4], BOX[5], BOX[2]],
                 [0.9, 0.8, 0.9, 0.7, 0.6, 0.2],
                 ["1-r", "1-r", "5-?", "2-l", "1-l", "2-l"])]
    # box 0 (1-l) -> 1-r: left/right swap; box 1 (1-r) -> 1-r correct; box 3 (5-l) -> 5-?;
    # box 4 (1-l) -> 2-l: other chromosome; BOX[5] matches nothing: background (predicted 1-l);
    # box 2 (2-l) only has a detection below the score threshold: missed.
    return truth, found, classes


def test_confusion_counts_left_right_swaps():
    truth, found, classes = _confusion_case()
    summary = confusion_summary(truth, found, classes, iou_threshold=0.5, score_threshold=0.5)
    m = summary.matrix
    assert m.shape == (6, 6)
    assert m.at["1-l", "1-r"] == 1 and m.at["1-r", "1-r"] == 1
    assert m.at["5-l", "5-?"] == 1 and m.at["1-l", "2-l"] == 1
    assert m.at["background", "1-l"] == 1 and m.at["2-l", "missed"] == 1
    assert int(m.to_numpy().sum()) == 6
    assert m.loc[classes].sum(axis=1).tolist() == [2, 1, 1, 1, 0]  # each gt counted once
    assert summary.top_confusions == [("1-l", "1-r", 1), ("1-l", "2-l", 1), ("5-l", "5-?", 1)]
    sides = side_confusion(m)
    assert (sides.correct, sides.left_right, sides.side_unknown, sides.other_chromosome) == (1, 1, 1, 1)
    assert sides.fraction_same_chromosome == pytest.approx(2 / 3)


def test_confusion_matches_each_gt_once():
    # Two detections of one box with different labels: the better-scored one is the match, the
    # other a false detection (background), not a second confusion.
    truth = [gt("i.png", BOX[:1], ["1-l"])]
    found = [det("i.png", [BOX[0], BOX[0]], [0.9, 0.8], ["1-l", "1-r"])]
    m = confusion_summary(truth, found, ["1-l", "1-r"]).matrix
    assert m.at["1-l", "1-l"] == 1 and m.at["1-l", "1-r"] == 0 and m.at["background", "1-r"] == 1


# --- plots -------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plots_written_atomically(tmp_path):
    truth, found, classes = _confusion_case()
    metrics = evaluate(truth, found, classes)
    out = tmp_path / "plots" / "per_class.png"
    plot_per_class_precision(metrics, out)
    plot_per_class_precision(metrics, out)  # overwriting is fine
    plot_confusion(confusion_summary(truth, found, classes).matrix, tmp_path / "plots" / "confusion.png")
    for name in ("per_class.png", "confusion.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    assert sorted(os.listdir(tmp_path / "plots")) == ["confusion.png", "per_class.png"]


def test_plot_failure_leaves_no_file(tmp_path, monkeypatch):
    def broken_savefig(figure, path, **kwargs):  # writes half a PNG, then fails
        with open(path, "wb") as handle:
            handle.write(PNG_SIGNATURE)
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_confusion(pd.DataFrame([[1, 0], [0, 2]], index=["a", "b"], columns=["a", "b"]), tmp_path / "c.png")
    assert os.listdir(tmp_path) == []


def test_confusion_leaves_difficult_boxes_out():
    # Box 0 is difficult and detected (as 1-r), box 1 is difficult and not detected: neither is
    # counted, not as a confusion, not as missed; box 2 is found correctly.
    truth = [gt("i.png", BOX[:3], ["1-l", "1-l", "1-r"], difficult=[True, True, False])]
    found = [det("i.png", [BOX[0], BOX[2]], [0.9, 0.9], ["1-r", "1-r"])]
    m = confusion_summary(truth, found, ["1-l", "1-r"]).matrix
    assert m.at["1-r", "1-r"] == 1 and int(m.to_numpy().sum()) == 1
