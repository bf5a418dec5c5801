"""Load a model's large dense kernels from a ``.keras`` file without transient copies.

Keras reads each saved weight whole into a NumPy array and assigns it, which converts it to a
tensor and copies it into the variable: while it loads, a weight costs up to three times its size.
For VGG16's fc6 kernel (25088 x 4096, 392 MiB) that is more, at the peak of loading a model for
inference, than detection itself needs. Writing the kernel in slices (a scatter) avoids the copies
but puts the variable into TensorFlow's copy-on-read mode for good, after which every read of it
copies it (0.5 GiB more at each VGG16 detection's peak, measured).

:func:`lean_kernel_loading` makes the large kernels of a model load in place instead: the variable
first gives up its buffer, then adopts the array read from the HDF5 file as its new value (no
copy: TensorFlow takes over the array's memory), so a kernel costs its size once, during loading and
after. The values loaded are the same; stores that are not HDF5 (``.npz``), quantized layers,
distributed variables and shapes that do not match go through Keras's own loading (and its errors).
"""

from __future__ import annotations

import contextlib
import types

LARGE_BYTES = 64 * 2**20
"""Dense kernels of at least this many bytes load in place; smaller weights load as Keras loads them."""

SLICE_BYTES = 32 * 2**20
"""Bytes of a kernel read from the file at once."""

ALIGNMENT = 64
"""Bytes to which TensorFlow wants a NumPy array's data aligned to use it without a copy
(``EIGEN_MAX_ALIGN_BYTES`` on AVX-512)."""


@contextlib.contextmanager
def lean_kernel_loading(model):
    """Within this context, ``model.load_weights`` (or Keras's loading of ``model``) loads the dense
    layers whose kernel has at least :data:`LARGE_BYTES` in place; yields their names."""
    import keras

    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.Dense) and layer.built and _nbytes(layer.kernel) >= LARGE_BYTES]
    for layer in layers:
        # An instance attribute, set past Keras's attribute tracking and removed afterwards.
        object.__setattr__(layer, "load_own_variables", types.MethodType(_load_dense_in_place, layer))
    try:
        yield [layer.name for layer in layers]
    finally:
        for layer in layers:
            object.__delattr__(layer, "load_own_variables")


def _nbytes(variable) -> int:
    import numpy as np

    return int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize


def _load_dense_in_place(layer, store) -> None:
    """``Dense.load_own_variables`` adopting the HDF5 datasets' arrays (Keras's own otherwise)."""
    import h5py
    import keras
    from tensorflow.python.ops.resource_variable_ops import ResourceVariable

    variables = [layer.kernel] + ([layer.bias] if layer.bias is not None else [])
    group = getattr(store, "_h5_entry_group", None)
    plain = getattr(layer, "quantization_mode", None) is None and not getattr(layer, "lora_enabled", False)
    if not (plain and isinstance(group, h5py.Group) and len(group) == len(variables)):
        return keras.layers.Dense.load_own_variables(layer, store)
    datasets = [group[str(index)] for index in range(len(variables))]
    if any(not isinstance(d, h5py.Dataset) or "dtype" in d.attrs or tuple(d.shape) != tuple(v.shape)
           or type(v.value) is not ResourceVariable for d, v in zip(datasets, variables)):  # e.g. bfloat16 saved
        return keras.layers.Dense.load_own_variables(layer, store)
    for variable, dataset in zip(variables, datasets):
        _adopt(variable.value, dataset)


def _adopt(target, dataset) -> None:
    """Make the array read from ``dataset`` the buffer of the ``tf.Variable`` ``target`` (same shape)."""
    import numpy as np
    import tensorflow as tf

    # Give up the old buffer first (an assign of another shape replaces it), so old and new never coexist.
    tf.raw_ops.AssignVariableOp(resource=target.handle, value=tf.zeros([0], target.dtype), validate_shape=False)
    array = _aligned_empty(dataset.shape, target.dtype.as_numpy_dtype)
    # In row slices: read whole from a .keras archive, a kernel took a second transient copy (measured).
    rows = max(1, SLICE_BYTES // max(1, dataset.nbytes // max(1, dataset.shape[0])))
    for start in range(0, dataset.shape[0], rows):
        part = np.s_[start:start + rows]
        dataset.read_direct(array, source_sel=part, dest_sel=part)  # converts the dtype if it differs
    # A tensor made from a NumPy array aligned for TensorFlow shares its memory, and an assign of
    # another shape adopts the value's buffer rather than copying it into the old one.
    tf.raw_ops.AssignVariableOp(resource=target.handle, value=array, validate_shape=False)


def _aligned_empty(shape, dtype, alignment: int = ALIGNMENT):
    """An uninitialised C-ordered array whose data start at a multiple of ``alignment`` bytes."""
    import numpy as np

    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)
