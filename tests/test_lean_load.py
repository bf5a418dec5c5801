"""Loading large dense kernels in place gives the weights Keras's own loading gives, and leaves them
variables whose reads do not copy them."""

import keras
import numpy as np
import pytest

from keras_frcnn.training import lean_load
from keras_frcnn.training.runs import load_model
from model_fixtures import saved_tiny_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return saved_tiny_model(path, seed=0), path


def _dense_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.Dense)]


def test_every_dense_layer_loads_in_place_with_the_same_values(saved, monkeypatch):
    model, path = saved
    monkeypatch.setattr(lean_load, "LARGE_BYTES", 1)  # every dense kernel counts as large
    monkeypatch.setattr(lean_load, "SLICE_BYTES", 1000)  # and is read in many slices

    def keras_loading(layer, store):
        raise AssertionError(f"{layer.name} went through Keras's own loading")

    original = keras.layers.Dense.load_own_variables
    monkeypatch.setattr(keras.layers.Dense, "load_own_variables", keras_loading)
    loaded = load_model(str(path))
    monkeypatch.setattr(keras.layers.Dense, "load_own_variables", original)
    expected, found = _dense_layers(model), _dense_layers(loaded)
    assert len(found) >= 4 and [layer.name for layer in found] == [layer.name for layer in expected]
    assert max(layer.kernel.shape[0] for layer in found) > 1000 // 4  # at least one kernel took several slices
    for want, got in zip(expected, found):
        for a, b in zip(want.weights, got.weights):
            np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=f"{got.name}/{b.name}")
        assert "load_own_variables" not in vars(got)  # the override ends with the load


def test_small_kernels_load_as_keras_loads_them(saved, monkeypatch):
    model, path = saved
    calls = []
    original = keras.layers.Dense.load_own_variables

    def counting(layer, store):
        calls.append(layer.name)
        return original(layer, store)

    monkeypatch.setattr(keras.layers.Dense, "load_own_variables", counting)
    loaded = load_model(str(path))
    assert sorted(calls) == sorted(layer.name for layer in _dense_layers(loaded))


def _bytes_held_by_a_read(variable) -> int:
    """How much more TensorFlow's CPU allocator holds while one read of ``variable`` is alive."""
    import tensorflow as tf

    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    value = variable.value.read_value()
    held = tf.config.experimental.get_memory_info("CPU:0")["current"] - before
    del value
    return held


def test_a_loaded_kernel_is_read_without_a_copy(saved, monkeypatch):
    import tensorflow as tf

    try:
        tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        pytest.skip("this TensorFlow keeps no CPU allocator statistics (oneDNN off)")
    model, path = saved
    monkeypatch.setattr(lean_load, "LARGE_BYTES", 1)
    kernel = max((layer.kernel for layer in _dense_layers(load_model(str(path)))), key=lambda k: np.prod(k.shape))
    assert np.prod(kernel.shape) * 4 > 256 * 2**10  # the allocator counts allocations of this size
    assert _bytes_held_by_a_read(kernel) == 0
    # The measure sees a copy: a variable written by a scatter (as this loading did until 2026-12-07) is
    # copied by every read from then on.
    kernel.value.scatter_update(tf.IndexedSlices(tf.zeros([1, kernel.shape[1]]), tf.constant([0])))
    assert _bytes_held_by_a_read(kernel) >= np.prod(kernel.shape) * 4
