"""inference.Detector: the model's detections, with the convolution kernels as graph constants on request."""

import keras
import numpy as np
import pytest

from keras_frcnn.inference.detector import Detector, KernelSnapshot, predict_records
from keras_frcnn.model.faster_rcnn import build_model
from model_fixtures import batch, scene, tiny_config, two_scenes


@pytest.fixture()
def model():
    keras.utils.set_random_seed(0)
    return build_model(tiny_config())


@pytest.fixture(scope="module")
def inputs():
    data = batch(two_scenes())
    return {"images": data["images"], "image_shape": data["image_shape"]}


def test_constant_kernels_give_the_models_own_detections(model, inputs):
    expected = model.predict_on_batch(inputs)
    found = Detector(model, constant_weights=True).predict_on_batch(inputs)
    assert expected["valid"].sum() > 0
    for key in expected:
        np.testing.assert_allclose(found[key], expected[key], rtol=1e-5, atol=1e-4, err_msg=key)


def test_every_convolution_reads_its_kernel_as_a_constant(model, inputs):
    detector = Detector(model, constant_weights=True)
    graph = detector._call.get_concrete_function(
        {key: keras.ops.convert_to_tensor(value) for key, value in inputs.items()}).graph
    convolutions = [op for op in graph.get_operations() if op.type == "Conv2D"]
    assert len(convolutions) == len(KernelSnapshot(model).kernels) == 7  # 4 backbone + 3 RPN
    assert {op.inputs[1].op.type for op in convolutions} == {"Const"}
    plain = Detector(model)._call.get_concrete_function(
        {key: keras.ops.convert_to_tensor(value) for key, value in inputs.items()}).graph
    assert "Const" not in {op.inputs[1].op.type for op in plain.get_operations() if op.type == "Conv2D"}


def test_the_constants_are_a_snapshot(model, inputs):
    frozen = Detector(model, constant_weights=True)
    live = Detector(model)
    before = frozen.predict_on_batch(inputs)["scores"]
    first_layer = model.features.layers[1]
    first_layer.kernel.assign(np.zeros(first_layer.kernel.shape, np.float32))
    np.testing.assert_array_equal(frozen.predict_on_batch(inputs)["scores"], before)
    assert not np.allclose(live.predict_on_batch(inputs)["scores"], before)


def test_a_detector_stands_in_for_the_model(model, tmp_path):
    import cv2

    from keras_frcnn.annotations.records import ImageRecord

    path = tmp_path / "one.png"
    cv2.imwrite(str(path), scene([(10, 12, 30, 52, 0)], seed=3).astype(np.uint8))
    record = ImageRecord(str(path), np.zeros((0, 4), np.float32), ())
    (expected,) = predict_records(model, [record])
    (found,) = predict_records(Detector(model, constant_weights=True), [record])
    assert found.labels == expected.labels and len(found.labels) > 0
    np.testing.assert_allclose(found.boxes, expected.boxes, atol=1e-3)


def test_detect_on_arrays_matches_the_model(model):
    image = scene([(10, 12, 30, 52, 0), (50, 20, 90, 40, 1)], seed=4).astype(np.uint8)
    (expected,) = model.detect(image)
    (found,) = Detector(model, constant_weights=True).detect(image)
    assert found["class_names"] == expected["class_names"] and len(found["class_names"]) > 0
    np.testing.assert_allclose(found["scores"], expected["scores"], rtol=1e-5, atol=1e-6)


def test_auto_makes_only_small_kernels_constant(model, inputs, monkeypatch):
    from keras_frcnn.inference import detector as detector_module

    kernel_bytes = detector_module.convolution_kernel_bytes(model)
    assert kernel_bytes == sum(value.nbytes for value in KernelSnapshot(model).values) > 0
    assert Detector(model, constant_weights="auto").snapshot is not None  # the tiny backbone: a few kB
    monkeypatch.setattr(detector_module, "CONSTANT_KERNELS_MAX_BYTES", kernel_bytes - 1)
    lean = Detector(model, constant_weights="auto")
    assert lean.snapshot is None
    np.testing.assert_allclose(lean.predict_on_batch(inputs)["scores"], model.predict_on_batch(inputs)["scores"],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        Detector(model, constant_weights="yes")
