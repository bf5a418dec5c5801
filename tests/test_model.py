"""The Faster R-CNN model: training step, gradients, graph purity, batching, save/load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.model.backbones import backbone_stride, build_backbone, output_stride
from keras_frcnn.config import Config
from keras_frcnn.errors import UserError
from keras_frcnn.model.faster_rcnn import FasterRCNN, build_model
from model_fixtures import batch, scene, tiny_config, two_scenes

PYTHON_CALLBACK_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"}


@pytest.fixture(scope="module")
def data():
    return batch(two_scenes())


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model(tiny_config(), keras.optimizers.Adam(1e-3))


def test_loss_terms_are_reported_and_finite(model, data):
    history = model.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg", "skipped_steps"}
    assert history.history["skipped_steps"] == [0.0]
    values = {k: v[-1] for k, v in history.history.items()}
    assert all(np.isfinite(v) for v in values.values())
    parts = values["rpn_cls"] + values["rpn_reg"] + values["head_cls"] + values["head_reg"]
    assert values["loss"] == pytest.approx(parts, rel=1e-5)


def test_gradients_reach_every_trainable_weight(model, data):
    with tf.GradientTape() as tape:
        loss = model.compute_frcnn_losses(data, training=True)["loss"]
    gradients = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, gradients) if g is None]
    zero = [v.path for v, g in zip(model.trainable_variables, gradients) if g is not None and not np.any(g.numpy())]
    assert not missing and not zero, (missing, zero)
    assert len(model.trainable_variables) == 2 * (4 + 2 + 3 + 2)  # backbone, head fc, RPN, outputs


def _graph_op_types(concrete) -> set[str]:
    graph_def = concrete.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types |= {node.op for node in function.node_def}
    return types


def test_training_step_graph_has_no_python_callbacks(model, data):
    spec = {k: tf.TensorSpec((None,) + v.shape[1:], tf.as_dtype(v.dtype)) for k, v in data.items()}
    concrete = tf.function(model.train_step).get_concrete_function(spec)
    types = _graph_op_types(concrete)
    assert "NonMaxSuppressionV5" in types or any(t.startswith("NonMaxSuppression") for t in types)
    assert not types & PYTHON_CALLBACK_OPS


def test_inference_graph_has_no_python_callbacks(model, data):
    inputs = {"images": data["images"], "image_shape": data["image_shape"]}
    spec = {k: tf.TensorSpec((None,) + v.shape[1:], tf.as_dtype(v.dtype)) for k, v in inputs.items()}
    concrete = tf.function(lambda x: model(x)).get_concrete_function(spec)
    assert not _graph_op_types(concrete) & PYTHON_CALLBACK_OPS


def test_batch_of_images_with_different_sizes(model):
    small = [(8, 8, 40, 30, 0)]
    large = [(20, 30, 60, 90, 1), (70, 10, 120, 40, 2)]
    images = np.zeros((2, 128, 160, 3), np.float32)
    images[0, :64, :96] = scene(small, height=64, width=96)
    images[1] = scene(large, height=128, width=160)
    boxes = np.zeros((2, 8, 4), np.float32)
    labels = np.full((2, 8), -1, np.int32)
    boxes[0, 0], labels[0, 0] = small[0][:4], 0
    boxes[1, :2], labels[1, :2] = [o[:4] for o in large], [1, 2]
    data = {"images": images, "image_shape": np.array([[64, 96], [128, 160]], np.int32), "boxes": boxes, "labels": labels}
    terms = model.compute_frcnn_losses(data, training=True)
    assert np.isfinite(terms["loss"].numpy())
    out = model.predict_on_batch({"images": images, "image_shape": data["image_shape"]})
    first = out["boxes"][0][out["valid"][0]]
    assert np.all(first[:, 2] <= 96 + 1e-3) and np.all(first[:, 3] <= 64 + 1e-3)  # clipped to the valid image


def test_image_without_objects_trains(model):
    data = batch([(scene([]), [])])
    terms = model.compute_frcnn_losses(data, training=True)
    assert np.isfinite(terms["loss"].numpy())
    assert terms["rpn_reg"].numpy() == 0.0 and terms["head_reg"].numpy() == 0.0


def test_save_and_load_give_identical_detections(model, data, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, FasterRCNN)
    assert loaded.frcnn_config == model.frcnn_config
    inputs = {"images": data["images"], "image_shape": data["image_shape"]}
    model.make_predict_function(force=True)  # trace both models for the same input shapes
    expected, actual = model.predict_on_batch(inputs), loaded.predict_on_batch(inputs)
    for key in expected:
        np.testing.assert_array_equal(expected[key], actual[key])
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())


def test_detect_returns_names_in_original_coordinates(model):
    image = scene([(10, 12, 30, 52, 0)], height=64, width=64)[..., 0].astype(np.uint8)  # grey, half size
    (result,) = model.detect(image)
    assert set(result) == {"boxes", "scores", "classes", "class_names"}
    assert len(result["class_names"]) == len(result["boxes"])
    assert all(name in ("a", "b", "c") for name in result["class_names"])
    if len(result["boxes"]):
        assert result["boxes"].max() <= 64 + 1e-3  # mapped back from the 128 px model input


@pytest.mark.parametrize("network, channels, head_dims", [("vgg16", 512, 64), ("resnet50", 1024, 2048)])
def test_backbones_have_stride_16(network, channels, head_dims):
    backbone = build_backbone(Config(class_names=("a",), network=network, head_units=64))
    features = backbone.features(np.zeros((1, 96, 160, 3), np.float32))
    assert features.shape == (1, 6, 10, channels)
    pooled = np.zeros((2, backbone.pooled_size, backbone.pooled_size, channels), np.float32)
    assert backbone.head(pooled).shape == (2, head_dims)


def test_frozen_blocks_and_batchnorm():
    backbone = build_backbone(Config(class_names=("a",), network="resnet50", freeze_blocks=2, freeze_batchnorm=True))
    frozen = {layer.name for layer in backbone.features.layers if not layer.trainable}
    assert "conv1_conv" in frozen and "conv2_block1_1_conv" in frozen and "conv3_block1_1_conv" not in frozen
    assert all(not layer.trainable for layer in backbone.features.layers if isinstance(layer, keras.layers.BatchNormalization))


def test_weights_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="weights file not found"):
        build_backbone(Config(class_names=("a",), network="vgg16", weights=str(tmp_path / "missing.h5")))
    with pytest.raises(UserError, match="at least 4 blocks"):
        build_backbone(Config(class_names=("a",), network="tiny", tiny_filters=(8, 8)))


def test_lean_load_skips_the_optimizer_and_gives_the_same_weights_and_detections(model, data, tmp_path):
    from keras_frcnn.training.runs import load_model

    path = tmp_path / "model.keras"
    model.save(path)  # with the optimizer's state (fit ran above or runs now)
    full = load_model(str(path), with_optimizer=True)
    lean = load_model(str(path))
    assert full.optimizer is not None and full.optimizer.variables
    assert getattr(lean, "optimizer", None) is None
    for a, b in zip(model.get_weights(), lean.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    inputs = {"images": data["images"], "image_shape": data["image_shape"]}
    expected, actual = full.predict_on_batch(inputs), lean.predict_on_batch(inputs)
    for key in expected:
        np.testing.assert_array_equal(expected[key], actual[key])


def test_an_uninitialised_model_leaves_its_fc_kernels_unwritten_until_loaded():
    from keras_frcnn.model.backbones import Unwritten

    head = FasterRCNN(tiny_config(), initialize=False).roi_heads.head
    assert all(isinstance(head.get_layer(name).kernel_initializer, Unwritten) for name in ("fc6", "fc7"))
    config = tiny_config()
    assert head.get_layer("fc6").kernel.shape == (config.pool_size ** 2 * config.tiny_filters[-1], config.head_units)
    assert Unwritten()((3, 5), "bfloat16").shape == (3, 5) and Unwritten()((3, 5), "bfloat16").dtype == "bfloat16"
    drawn = FasterRCNN(tiny_config()).roi_heads.head.get_layer("fc6")
    assert not isinstance(drawn.kernel_initializer, Unwritten) and np.std(drawn.kernel.numpy()) > 0


def test_tiny_backbone_loads_its_weights_file_or_refuses_with_a_clear_error(tmp_path):
    filters = (4, 8, 8, 16)
    keras.utils.set_random_seed(1)
    source = build_backbone(Config(class_names=("a",), network="tiny", tiny_filters=filters))
    path = str(tmp_path / "tiny.weights.h5")
    source.features.save_weights(path)
    keras.utils.set_random_seed(2)  # another random start: only the file can make the two equal
    loaded = build_backbone(Config(class_names=("a",), network="tiny", tiny_filters=filters, weights=path))
    for a, b in zip(source.features.get_weights(), loaded.features.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = build_backbone(Config(class_names=("a",), network="tiny", tiny_filters=filters))
    assert not np.array_equal(fresh.features.get_weights()[0], source.features.get_weights()[0])

    def tiny(weights, tiny_filters=filters):
        return build_backbone(Config(class_names=("a",), network="tiny", tiny_filters=tiny_filters, weights=weights))

    with pytest.raises(UserError, match="no ImageNet weights"):
        tiny("imagenet")
    with pytest.raises(UserError, match="missing.weights.h5: backbone weights file not found"):
        tiny(str(tmp_path / "missing.weights.h5"))
    other = tmp_path / "other.h5"
    other.write_bytes(b"not weights")
    with pytest.raises(UserError, match="loads a .weights.h5 file"):
        tiny(str(other))
    with pytest.raises(UserError, match="not the weights of this tiny backbone") as error:
        tiny(path, tiny_filters=(8, 8, 16, 32))  # other filter counts: the shapes differ
    assert "\n" not in str(error.value)


def test_roi_box_features_reach_the_class_head_train_and_survive_save_and_load(data, tmp_path):
    keras.utils.set_random_seed(0)
    geometric = build_model(tiny_config(roi_box_features="size_position"), keras.optimizers.Adam(1e-3))
    assert geometric.roi_heads.class_logits.kernel.shape == (64 + 128, 4)  # fc7 units + the box-feature embedding
    with tf.GradientTape() as tape:
        loss = geometric.compute_frcnn_losses(data, training=True)["loss"]
    gradients = dict(zip([v.path for v in geometric.trainable_variables],
                         tape.gradient(loss, geometric.trainable_variables)))
    assert np.any(gradients["roi_geometry/kernel"].numpy())
    geometric.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    path = tmp_path / "geometric.keras"
    geometric.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    inputs = {"images": data["images"], "image_shape": data["image_shape"]}
    expected, actual = geometric.predict_on_batch(inputs), loaded.predict_on_batch(inputs)
    for key in expected:
        np.testing.assert_array_equal(expected[key], actual[key])
    with pytest.raises(UserError, match="roi_box_features must be one of none, size, size_position"):
        tiny_config(roi_box_features="position")


def test_the_stride_is_measured_from_the_backbone():
    image = keras.Input((None, None, 3))
    x = image
    for _ in range(3):  # three 2x2 poolings: stride 8
        x = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(4, 3, padding="same")(x))
    assert output_stride(keras.Model(image, x)) == 8
    assert backbone_stride(Config(network="tiny", class_names=("a",))) == 16
    model = build_model(tiny_config())
    assert model.stride == 16
    # configs saved when the stride was a config key still load (16), others are refused
    saved = {**model.frcnn_config.to_dict(), "feature_stride": 16}
    assert Config.from_dict(saved) == model.frcnn_config
    with pytest.raises(UserError, match="feature_stride 8"):
        Config.from_dict({**saved, "feature_stride": 8})


def test_tiny_backbone_at_stride_8_trains(data):
    """tiny_stride 8 leaves out the fourth pooling: twice the feature rows and columns; it trains."""
    config = tiny_config(tiny_stride=8)
    assert backbone_stride(config) == 8 and backbone_stride(tiny_config()) == 16
    keras.utils.set_random_seed(0)
    model = build_model(config, keras.optimizers.Adam(1e-3))
    assert model.stride == 8
    assert tuple(model.features(np.zeros((1, 128, 96, 3), np.float32)).shape[1:3]) == (16, 12)
    history = model.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    with pytest.raises(UserError, match="tiny_stride must be 8 or 16, not 4"):
        tiny_config(tiny_stride=4)


def test_set_test_proposals_changes_how_many_proposals_inference_keeps(data):
    keras.utils.set_random_seed(0)
    model = build_model(tiny_config(score_threshold=0.0))
    inputs = {"images": data["images"], "image_shape": data["image_shape"]}
    features, logits, deltas = model._backbone_and_rpn(inputs["images"], False)
    anchors = model.rpn.anchors(features)
    before = model.frcnn_config.pre_nms_top_n_test
    model.set_test_proposals(3)
    assert (model.frcnn_config.post_nms_top_n_test, model.rpn.frcnn_config.post_nms_top_n_test) == (3, 3)
    assert model.rpn.frcnn_config.pre_nms_top_n_test == max(before, 18)
    boxes, valid = model.rpn.proposals(logits, deltas, anchors, inputs["image_shape"])
    assert boxes.shape[1] == 3 and valid.numpy().all()
    # per-class NMS of 3 proposals: at most 3 detections of each class
    detections = model.predict_on_batch(inputs)
    for image_classes, image_valid in zip(detections["classes"], detections["valid"]):
        assert np.bincount(image_classes[image_valid]).max() <= 3
    with pytest.raises(ValueError, match="at least 1"):
        model.set_test_proposals(0)
