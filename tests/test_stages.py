"""The detection stages on their own: the RPN and the RoI heads as layers, and swappable decoders."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.decoders import LabelAssignment, PerClassNMS, decoder_for
from keras_frcnn.errors import UserError
from keras_frcnn.model.faster_rcnn import build_model
from keras_frcnn.model.roi_heads import RoIHeads
from keras_frcnn.model.rpn import RegionProposalNetwork
from model_fixtures import tiny_config


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model(tiny_config())


def test_the_rpn_runs_alone_on_a_feature_map_and_round_trips_through_its_config():
    keras.utils.set_random_seed(1)
    config = tiny_config()
    rpn = RegionProposalNetwork(config, stride=16, feature_channels=32)
    features = tf.random.uniform([2, 5, 7, 32])
    logits, deltas = rpn(features)
    assert logits.shape == (2, 5 * 7 * 9) and deltas.shape == (2, 5 * 7 * 9, 4)  # 3 scales x 3 ratios
    anchors = rpn.anchors(features)
    first_cell = anchors[:9].numpy()
    np.testing.assert_allclose((first_cell[:, :2] + first_cell[:, 2:]) / 2, 8.0, atol=1e-4)  # centred on cell (0, 0)
    boxes, valid = rpn.proposals(logits, deltas, anchors, tf.constant([[80, 112], [64, 64]]))
    assert boxes.shape == (2, config.post_nms_top_n_test, 4) and valid.shape == (2, config.post_nms_top_n_test)
    second = boxes[1][valid[1]].numpy()
    assert second.size and second[:, 2].max() <= 64 and second[:, 3].max() <= 64  # clipped to its own image

    copy = RegionProposalNetwork.from_config(rpn.get_config())
    copy.set_weights(rpn.get_weights())
    np.testing.assert_allclose(copy(features)[0].numpy(), logits.numpy(), rtol=1e-6)
    assert [w.path for w in copy.weights] == ["rpn_conv/kernel", "rpn_conv/bias", "rpn_objectness/kernel",
                                              "rpn_objectness/bias", "rpn_box_deltas/kernel", "rpn_box_deltas/bias"]


def test_the_rpn_targets_and_loss_terms_of_a_box_its_anchors_fit():
    config = tiny_config(anchor_scales=(32.0,), anchor_ratios=(1.0,), rpn_batch_size=8)
    rpn = RegionProposalNetwork(config, stride=16, feature_channels=32)
    features = tf.zeros([1, 4, 4, 32])
    anchors = rpn.anchors(features)  # one 32 x 32 anchor per cell, centred at 8, 24, 40, 56
    gt = tf.constant([[[8.0, 8.0, 40.0, 40.0]]])  # the anchor of cell (1, 1); its neighbours reach IoU 1/3 (ignored)
    labels, deltas = rpn.targets(anchors, gt, tf.constant([[True]]), tf.constant([[64, 64]]), tf.constant([[0, 1]]))
    positive = np.flatnonzero(labels[0].numpy() == 1)
    assert list(positive) == [5] and np.allclose(deltas[0, 5].numpy(), 0.0)  # row 1, column 1: the same box
    logits = tf.where(tf.range(16) == 5, 10.0, -10.0)[None]  # a confident, right objectness everywhere
    cls, reg = rpn.loss_terms(logits, tf.zeros([1, 16, 4]), labels, deltas, features)
    assert cls.numpy() < 1e-3 and reg.numpy() == pytest.approx(0.0, abs=1e-7)


def test_the_roi_heads_run_alone_and_round_trip_through_their_config(model):
    heads = model.roi_heads
    features = tf.random.uniform([1, 8, 8, 32])
    rois = tf.constant([[[0.0, 0.0, 64.0, 64.0], [32.0, 16.0, 96.0, 48.0]]])
    logits, deltas = heads(features, rois, tf.constant([[128, 128]]))
    assert logits.shape == (1, 2, 4) and deltas.shape == (1, 2, 3, 4)

    copy = RoIHeads.from_config(heads.get_config())
    copy.set_weights(heads.get_weights())
    np.testing.assert_allclose(copy(features, rois, tf.constant([[128, 128]]))[0].numpy(), logits.numpy(), rtol=1e-5)


def test_decode_divides_boxes_by_the_scale_and_keeps_the_per_class_nms_order(model):
    heads = model.roi_heads
    rois = tf.constant([[[10.0, 10.0, 50.0, 50.0], [12.0, 10.0, 50.0, 52.0], [70.0, 70.0, 90.0, 120.0]]])
    logits = tf.constant([[[0.0, 5.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 6.0]]])
    found = heads.detect(rois, tf.constant([[True, True, True]]), logits, tf.zeros([1, 3, 3, 4]),
                         tf.constant([[128, 128]]), tf.constant([0.5]))
    valid = found["valid"][0].numpy()
    classes, boxes = found["classes"][0].numpy()[valid], found["boxes"][0].numpy()[valid]
    # Class a: the two overlapping RoIs (IoU 0.91 > 0.3) leave the surer one; class c keeps its one box.
    # Background-only rows score below 0.05 and are dropped.
    assert list(classes) == [2, 0]
    np.testing.assert_allclose(boxes, [[140, 140, 180, 240], [20, 20, 100, 100]], atol=1e-3)


def test_a_decoder_swap_takes_effect_at_the_next_predict(model):
    inputs = {"images": np.full((1, 128, 128, 3), 128, np.float32)}
    model.set_decoder(PerClassNMS(iou_threshold=0.3, score_threshold=0.0, max_detections=7))
    first = model.predict_on_batch(inputs)
    assert first["boxes"].shape == (1, 7, 4) and "class_scores" not in first
    model.set_decoder(LabelAssignment([1, 1, 1], iou_threshold=0.3, score_threshold=0.0, max_detections=3))
    second = model.predict_on_batch(inputs)
    assert second["class_scores"].shape == (1, 3, 3)
    labels = model.detect(inputs["images"][0])[0]["classes"]
    assert len(labels) == len(set(labels)) <= 3  # each label at most once
    model.set_label_assignment("none")
    assert isinstance(model.decoder, PerClassNMS) and model.decoder.max_detections == 20


def test_decoder_for_reads_the_config():
    assert isinstance(decoder_for(tiny_config()), PerClassNMS)
    karyotype = decoder_for(tiny_config(class_names=("1", "2", "X", "Y"), label_assignment="karyotype"))
    assert list(karyotype.capacities) == [2, 2, 2, 1] and karyotype.extra_copy_score == 0.9
    optimal = decoder_for(tiny_config(label_assignment="optimal", nms_iou=0.4))
    assert list(optimal.capacities) == [1, 1, 1] and optimal.extra_copy_score is None and optimal.iou_threshold == 0.4
    with pytest.raises(UserError, match="label_assignment must be"):
        tiny_config(label_assignment="greedy")


def test_a_model_saved_before_the_stages_were_layers_is_refused_naming_its_format(model, tmp_path):
    import json
    import zipfile

    from keras_frcnn.training.runs import load_model

    current = tmp_path / "current.keras"
    model.save(current)
    assert load_model(str(current)).get_config()["format"] == 2
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(current) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                saved = json.loads(data)
                del saved["config"]["format"]  # as keras_frcnn 0.1 wrote it
                data = json.dumps(saved).encode()
            target.writestr(item, data)
    with pytest.raises(UserError, match=r"old.keras: saved by keras_frcnn 0.1 \(model format 1\); keras_frcnn .* reads format 2"):
        load_model(str(old))
