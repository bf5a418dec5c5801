"""Load a model's large dense kernels from a ``.keras`` file a slice of rows at a time.

Keras reads each saved weight whole into a NumPy array and assigns it, which converts it to a
tensor first: a weight costs up to twice its size again while it loads. For VGG16's fc6 kernel
(25088 x 4096, 411 MB) that is 0.8 GB at the peak of loading a model for inference, more than
detection itself needs. :func:`sliced_kernel_loading` makes the large kernels of a model read
their HDF5 dataset in row slices (:data:`SLICE_BYTES` each) straight into the variable, so the
transient is one slice. The values loaded are the same; stores that are not HDF5 (``.npz``),
quantized layers and shapes that do not match go through Keras's own loading (and its errors).
"""

from __future__ import annotations

import contextlib
import types

SLICE_BYTES = 32 * 2**20
"""Bytes of a kernel read and assigned at once."""

LARGE_BYTES = 64 * 2**20
"""Dense kernels of at least this many bytes load in slices; smaller weights load whole."""


@contextlib.contextmanager
def sliced_kernel_loading(model):
    """Within this context, ``model.load_weights`` (or Keras's loading of ``model``) reads the dense
    layers whose kernel has at least :data:`LARGE_BYTES` in row slices."""
    import keras

    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.Dense) and layer.built and _nbytes(layer.kernel) >= LARGE_BYTES]
    for layer in layers:
        # An instance attribute, set past Keras's attribute tracking and removed afterwards.
        object.__setattr__(layer, "load_own_variables", types.MethodType(_load_dense_in_slices, layer))
    try:
        yield [layer.name for layer in layers]
    finally:
        for layer in layers:
            object.__delattr__(layer, "load_own_variables")


def _nbytes(variable) -> int:
    import numpy as np

    return int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize


def _load_dense_in_slices(layer, store) -> None:
    """``Dense.load_own_variables`` reading HDF5 datasets in row slices (Keras's own otherwise)."""
    import h5py
    import keras
    import tensorflow as tf

    variables = [layer.kernel] + ([layer.bias] if layer.bias is not None else [])
    group = getattr(store, "_h5_entry_group", None)
    plain = getattr(layer, "quantization_mode", None) is None and not getattr(layer, "lora_enabled", False)
    if not (plain and isinstance(group, h5py.Group) and len(group) == len(variables)):
        return keras.layers.Dense.load_own_variables(layer, store)
    datasets = [group[str(index)] for index in range(len(variables))]
    if any(not isinstance(d, h5py.Dataset) or "dtype" in d.attrs or tuple(d.shape) != tuple(v.shape)
           or not isinstance(v.value, tf.Variable) for d, v in zip(datasets, variables)):  # e.g. bfloat16 saved
        return keras.layers.Dense.load_own_variables(layer, store)
    for variable, dataset in zip(variables, datasets):
        target = variable.value  # the tf.Variable behind the Keras variable (no autocast while loading)
        row_bytes = max(1, dataset.nbytes // max(1, dataset.shape[0]))
        step = max(1, SLICE_BYTES // row_bytes)
        for start in range(0, dataset.shape[0], step):
            rows = dataset[start:start + step]
            # A scatter of rows writes in place; a strided-slice assign (target[a:b].assign) made
            # TensorFlow's oneDNN build keep a second copy of the whole kernel.
            target.scatter_update(tf.IndexedSlices(tf.cast(rows, target.dtype), tf.range(start, start + len(rows))))
