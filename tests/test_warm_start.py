"""``--init-from``: weights copied where path and shape match; class outputs re-initialised for other classes."""

from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import saved_tiny_model, tiny_config

from keras_frcnn.errors import UserError
from keras_frcnn.model.faster_rcnn import build_model
from keras_frcnn.training.warm_start import CLASS_OUTPUTS, warm_start


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A saved 3-class tiny model."""
    path = tmp_path_factory.mktemp("source") / "source.keras"
    model = saved_tiny_model(path, seed=1)
    return str(path), {w.path: np.asarray(w.numpy()) for w in model.weights}


def fresh(**changes):
    import keras

    keras.utils.set_random_seed(2)
    model = build_model(tiny_config(**changes))
    return model, {w.path: np.asarray(w.numpy()) for w in model.weights}


def test_other_classes_load_every_shared_layer_and_reinitialise_the_class_outputs(source):
    path, source_weights = source
    model, before = fresh(class_names=("p", "q"))
    report = warm_start(model, path)
    for weight in model.weights:
        now = np.asarray(weight.numpy())
        if weight.path.split("/")[0] in CLASS_OUTPUTS:
            np.testing.assert_array_equal(now, before[weight.path])  # left as freshly initialised
            assert weight.path in report.skipped and weight.path not in report.loaded
        else:
            np.testing.assert_array_equal(now, source_weights[weight.path])
            assert weight.path in report.loaded
    assert len(report.skipped) == 4 and "class-dependent (3 source classes, 2 here" in report.skipped["class_logits/kernel"]
    assert report.lines()[0].startswith(f"initialised from {path}: {len(model.weights) - 4} weights of ")


def test_the_same_classes_in_another_order_are_not_the_same_class_list(source):
    path, _ = source
    model, _ = fresh(class_names=("c", "b", "a"))
    assert "class_logits/kernel" in warm_start(model, path).skipped


def test_the_same_classes_load_everything_and_other_shapes_are_reported(source):
    path, source_weights = source
    model, _ = fresh()
    report = warm_start(model, path)
    assert not report.skipped and len(report.loaded) == len(model.weights)
    wider, before = fresh(anchor_ratios=(0.5, 1.0, 2.0, 3.0))  # 12 anchors instead of 9
    report = warm_start(wider, path)
    assert report.skipped["rpn_objectness/kernel"] == "shape (1, 1, 32, 9) in the source, (1, 1, 32, 12) here"
    np.testing.assert_array_equal(np.asarray(wider.rpn.objectness.kernel.numpy()),
                                  before["rpn_objectness/kernel"])


def test_a_missing_source_is_a_clear_error(tmp_path):
    model, _ = fresh()
    with pytest.raises(UserError, match="model not found"):
        warm_start(model, str(tmp_path / "nothing.keras"))
