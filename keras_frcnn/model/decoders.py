"""Post-processing of the RoI heads: class-specific boxes and scores -> detections.

A decoder has two halves. :meth:`Decoder.decode` runs inside the model's graph on one image
(``boxes [R, C, 4]`` per class, in original image pixels, and ``scores [R, C]``, background
excluded) and returns fixed-size tensors (:meth:`Decoder.signature`); :meth:`Decoder.detections`
turns one image's rows of those outputs into ``boxes``, ``scores`` and ``classes`` on the host,
where steps such as the SciPy label assignment run. ``FasterRCNN.set_decoder`` swaps them.

- :class:`PerClassNMS`: NMS within each class (the paper's Faster R-CNN);
- :class:`LabelAssignment`: class-agnostic objects with every class's score and box, then each
  label at most as often as a karyogram or a cell holds it (:mod:`keras_frcnn.model.label_assignment`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_frcnn.model.proposals import batched_nms_per_class, object_candidates

DETECTION_KEYS = ("boxes", "scores", "classes", "valid")


class Decoder:
    """The interface: per-image graph part, output signature and host part."""

    def __init__(self, *, iou_threshold: float, score_threshold: float, max_detections: int):
        self.iou_threshold = iou_threshold
        self.score_threshold = score_threshold
        self.max_detections = max_detections

    def signature(self, num_classes: int) -> dict:
        """The ``tf.TensorSpec`` of each output of :meth:`decode` (for ``tf.map_fn``)."""
        size = self.max_detections
        return {"boxes": tf.TensorSpec([size, 4], tf.float32), "scores": tf.TensorSpec([size], tf.float32),
                "classes": tf.TensorSpec([size], tf.int32), "valid": tf.TensorSpec([size], tf.bool)}

    def decode(self, boxes: tf.Tensor, scores: tf.Tensor) -> dict:
        raise NotImplementedError

    def detections(self, outputs: dict, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``boxes [K, 4]``, ``scores [K]`` and ``classes [K]`` of image ``index`` of a batch of
        model outputs (NumPy), its valid rows only."""
        valid = np.asarray(outputs["valid"][index], bool)
        return tuple(np.asarray(outputs[key][index])[valid] for key in ("boxes", "scores", "classes"))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(iou_threshold={self.iou_threshold}, "
                f"score_threshold={self.score_threshold}, max_detections={self.max_detections})")


class PerClassNMS(Decoder):
    """Each class's boxes suppressed on their own; the best ``max_detections`` over all classes."""

    def decode(self, boxes, scores):
        found = batched_nms_per_class(boxes, scores, iou_threshold=self.iou_threshold,
                                      score_threshold=self.score_threshold, max_detections=self.max_detections)
        return dict(zip(DETECTION_KEYS, found))


class LabelAssignment(Decoder):
    """Class-agnostic NMS keeping every class's score and box per object, then, on the host, the
    labels assigned per image with at most ``capacities[c]`` objects of class ``c``.

    ``extra_copy_score``: an object moved off a class it scores at least this for becomes that
    class's one extra copy (a trisomy stays reportable); None: never.
    """

    def __init__(self, capacities, extra_copy_score: float | None = None, **thresholds):
        super().__init__(**thresholds)
        self.capacities = np.asarray(capacities, np.int64)
        self.extra_copy_score = extra_copy_score

    def signature(self, num_classes):
        size = self.max_detections
        return {**super().signature(num_classes), "class_scores": tf.TensorSpec([size, num_classes], tf.float32),
                "class_boxes": tf.TensorSpec([size, num_classes, 4], tf.float32)}

    def decode(self, boxes, scores):
        return object_candidates(boxes, scores, iou_threshold=self.iou_threshold,
                                 score_threshold=self.score_threshold, max_detections=self.max_detections)

    def detections(self, outputs, index):
        from keras_frcnn.model.label_assignment import assigned_detections

        valid = np.asarray(outputs["valid"][index], bool)
        return assigned_detections(np.asarray(outputs["class_scores"][index])[valid],
                                   np.asarray(outputs["class_boxes"][index])[valid],
                                   self.capacities, self.extra_copy_score)


def decoder_for(config) -> Decoder:
    """The decoder ``config.label_assignment`` names (``none``, ``optimal`` or ``karyotype``), with
    the config's thresholds."""
    from keras_frcnn.model.label_assignment import capacities

    thresholds = dict(iou_threshold=config.nms_iou, score_threshold=config.score_threshold,
                      max_detections=config.max_detections)
    mode = config.label_assignment
    if mode == "none":
        return PerClassNMS(**thresholds)
    extra = config.extra_copy_score if mode == "karyotype" else None
    return LabelAssignment(capacities(mode, config.class_names), extra, **thresholds)
