"""Running a trained model on images given as arrays or files (the notebook-friendly path)."""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import cv2
import numpy as np

from keras_frcnn.errors import UserError


def read_rgb(path: str) -> np.ndarray:
    """An image file as uint8 RGB (grey and RGBA become three channels)."""
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: cannot read image (missing or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def as_rgb(image) -> np.ndarray:
    """An array (H x W, H x W x 1, H x W x 3 or x 4) or a path as H x W x 3 RGB."""
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise UserError(f"expected an H x W or H x W x 3 image, got shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array[..., :3]


def detect_images(model, images, batch_size: int = 1) -> list[dict]:
    """Detections per image in original pixel coordinates, with class names."""
    single = isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))
    items: Sequence = [images] if single else list(images)
    results: list[dict] = []
    for start in range(0, len(items), batch_size):
        results.extend(_detect_batch(model, items[start:start + batch_size]))
    return results


def _detect_batch(model, images: Iterable) -> list[dict]:
    from keras_frcnn.data.pipeline import model_inputs

    cfg = model.frcnn_config
    inputs = model_inputs([as_rgb(image) for image in images], cfg.im_size, cfg.max_size)
    outputs = model.predict_on_batch(inputs)
    return [image_detections(outputs, i, model) for i in range(len(inputs["scale"]))]


def image_detections(outputs: dict, index: int, model) -> dict:
    """The detections of image ``index`` in a batch of ``model``'s outputs, as NumPy, with names
    (after the host half of the model's decoder, such as the per-image label assignment)."""
    boxes, scores, classes = model.decoder.detections(outputs, index)
    names = model.class_names
    return {"boxes": boxes, "scores": scores, "classes": classes, "class_names": [names[c] for c in classes]}


CONSTANT_KERNELS_MAX_BYTES = 16 * 2**20
"""``Detector(model, constant_weights="auto")`` makes a model's convolution kernels constants only
when they take at most this many bytes. TensorFlow keeps several copies of a function's
constants while it builds and optimises the graph: VGG16's 59 MB of kernels raised the peak of a
600 x 600 detection by 1.1 GiB (2,086 to 3,214 MiB), for about a fifth of its time; the tiny
backbone's 4 MB cost little."""


class Detector:
    """A model's inference as one plain ``tf.function`` on this process's devices.

    It has what the helpers here use of a model (``predict_on_batch``, ``frcnn_config``,
    ``class_names``, ``decoder``), so it can stand in for one (make a new one after
    ``model.set_decoder``). Training validates through it: under a strategy,
    ``model.predict_on_batch`` splits a batch over the replicas and, under
    MultiWorkerMirroredStrategy, gathers across workers (the chief validating alone would wait
    forever); this runs the same ``model.call`` outside any replica context.

    ``constant_weights=True`` copies the convolution kernels into the function as constants: a
    snapshot taken now, which later training does not reach (create a new detector after
    training more). TensorFlow's oneDNN convolutions then keep their kernels in oneDNN's blocked
    layout; with variable kernels at batch size 1 they read them in TensorFlow's layout, which
    is slower on a CPU (``python -m keras_frcnn.cli.benchmark`` measures by how much). The
    detections are the same. ``test_frcnn.py`` and ``measure_map.py`` run models so when the
    kernels are small (``"auto"``; large ones cost much memory). TensorFlow caches those convolutions by shape alone,
    so in a process that has already run the same shapes with variable kernels (training, or
    ``model.detect``) the gain may not appear; the results are the same either way.
    """

    def __init__(self, model, constant_weights: bool | str = False):
        """``constant_weights``: True, False, or ``"auto"`` (constants when the kernels take at most
        :data:`CONSTANT_KERNELS_MAX_BYTES`, as ``test_frcnn.py`` and ``measure_map.py`` run models)."""
        import tensorflow as tf

        if constant_weights == "auto":
            constant_weights = convolution_kernel_bytes(model) <= CONSTANT_KERNELS_MAX_BYTES
        elif not isinstance(constant_weights, bool):
            raise ValueError(f"constant_weights must be True, False or 'auto', not {constant_weights!r}")
        self.model = model
        self.frcnn_config = model.frcnn_config
        self.class_names = model.class_names
        self.decoder = model.decoder
        self.snapshot = KernelSnapshot(model) if constant_weights else None  # None: variable kernels
        snapshot = self.snapshot

        def call(inputs):
            if snapshot is None:
                return model(inputs, training=False)
            with snapshot.scope():
                return model(inputs, training=False)

        self._call = tf.function(call, reduce_retracing=True)

    def __call__(self, inputs: dict) -> dict:
        """The model's outputs (tensors) for a batch of inputs."""
        import tensorflow as tf

        return self._call({key: tf.convert_to_tensor(value) for key, value in inputs.items()})

    def predict_on_batch(self, inputs: dict) -> dict:
        """The model's outputs for a batch, as NumPy."""
        return {key: value.numpy() for key, value in self(inputs).items()}

    def detect(self, images, batch_size: int = 1) -> list[dict]:
        """As :meth:`keras_frcnn.model.faster_rcnn.FasterRCNN.detect`: one dict of boxes, scores, classes and
        class names per image (NumPy images or paths)."""
        return detect_images(self, images, batch_size=batch_size)


class KernelSnapshot:
    """The values of every 2-D convolution kernel of ``model`` (nested models included), taken now.

    Inside a function being traced, ``with snapshot.scope():`` makes the model read those kernels
    as graph constants (``keras.StatelessScope``), which is what lets oneDNN keep them in its own
    layout. Outside a trace the constants would be ordinary tensors and gain nothing.
    """

    def __init__(self, model):
        self.kernels = convolution_kernels(model)
        self.values = [kernel.numpy() for kernel in self.kernels]

    def scope(self):
        """A ``keras.StatelessScope`` in which the model reads the snapshot as constants (enter it while tracing)."""
        import keras
        import tensorflow as tf

        return keras.StatelessScope(state_mapping=[(kernel, tf.constant(value))
                                                   for kernel, value in zip(self.kernels, self.values)])


def convolution_kernels(model) -> list:
    """Every 2-D convolution kernel of ``model`` (stages and nested models included), once each."""
    import keras

    kernels: dict = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv2D):
            kernels.setdefault(id(layer.kernel), layer.kernel)
    return list(kernels.values())


def convolution_kernel_bytes(model) -> int:
    """Bytes of :func:`convolution_kernels` (what a :class:`KernelSnapshot` copies)."""
    return sum(int(np.prod(kernel.shape)) * np.dtype(kernel.dtype).itemsize for kernel in convolution_kernels(model))


def predict_records(model, records, batch_size: int = 1, progress=None) -> list:
    """Detections (:class:`keras_frcnn.inference.detections.Detections`) for every record's image, in
    original coordinates; the images are decoded and resized by
    :func:`keras_frcnn.data.pipeline.image_dataset`, as for training, ahead of the model.

    ``progress``, if given, is called with the number of images done after each batch.
    """
    from keras_frcnn.data.pipeline import image_dataset
    from keras_frcnn.inference.detections import Detections

    records = list(records)
    if not records:
        return []
    dataset = image_dataset(records, model.frcnn_config, batch_size=batch_size)
    results: list = [None] * len(records)
    done = 0
    for batch in dataset:
        outputs = model.predict_on_batch({key: batch[key] for key in ("images", "image_shape", "scale")})
        for i, index in enumerate(batch["image_index"].numpy()):
            found = image_detections(outputs, i, model)
            results[index] = Detections(records[index].path, found["boxes"], found["scores"], found["class_names"])
        done += len(batch["image_index"])
        if progress is not None:
            progress(done)
    return results
