"""The input pipeline: image records -> batched, resized, augmented tensors (graph-only tf.data).

Each element of :func:`make_dataset` is a dict:

================  ====================  =======================================================
key               dtype, shape          meaning
================  ====================  =======================================================
``images``        float32 [B, H, W, 3]  RGB, 0-255, zero-padded to the batch's largest H and W
``image_shape``   int32 [B, 2]          valid ``(height, width)`` after resize and transform
``boxes``         float32 [B, M, 4]     ``x1, y1, x2, y2`` in resized+transformed pixels, zero pad
``labels``        int32 [B, M]          0-based class ids, ``-1`` padding
``scale``         float32 [B]           resize factor (resized / original, before the transform)
``image_index``   int32 [B]             index into ``records`` (maps detections back)
``transform_id``  int32 [B]             D4 transform applied (see :mod:`keras_frcnn.data.augment`)
================  ====================  =======================================================

``M`` is ``config.max_boxes``. The encoded image comes from ``record.image_bytes`` when present,
else from ``record.path``; TensorFlow decodes it (PNG, JPEG, BMP; grey images get 3 identical
channels; 16-bit PNGs keep their high byte, as ``cv2.imread`` does). It is resized bilinearly
(antialiased when shrinking) so that the shorter side is ``im_size`` unless the longer side would
pass ``max_size`` (:func:`resize_scale`); the transform is applied before the resize (they
commute, and the image is smaller before it). Boxes are scaled per axis by the exact
ratio of the rounded new size to the old one (so they follow the pixels exactly; ``scale`` is the
nominal factor, the two differ by less than half a resized pixel) and clipped to the image.
Embedded images are held in memory as one tensor (fine for LabelMe-sized data sets).

Reproducibility: everything random is a stateless function of ``seed``. The order of epoch ``e``
is a permutation drawn from ``(seed, e)``; the transform of an element is drawn from
``(seed, e, position in the epoch)``. Two datasets built with the same records, config and seed
give the same elements in the same order, epoch after epoch, whatever ``tf.random.set_seed``
says; a different epoch gets a different order and different transforms.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.model.boxes import clip_boxes
from keras_frcnn.config import Config
from keras_frcnn.data.augment import (
    apply_transform,
    lr_swap_table,
    paper_expansion_ids,
    random_transform_id,
    transform_swaps_lr,
)
from keras_frcnn.errors import UserError
from keras_frcnn.model.geometry import resize_scale, resized_shape  # noqa: F401  (part of this module's API)

EXPANSIONS = ("online", "paper16")
# Independent stateless streams derived from the user's seed.
_ORDER_STREAM = 1
_TRANSFORM_STREAM = 2


def resize_scale_tf(height, width, im_size: float, max_size: float) -> tf.Tensor:
    """:func:`resize_scale` in TensorFlow (float32; any argument may be a tensor, shapes broadcast)."""
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    im_size = tf.cast(im_size, tf.float32)
    max_size = tf.cast(max_size, tf.float32)
    scale = im_size / tf.minimum(h, w)
    return tf.where(tf.maximum(h, w) * scale > max_size, max_size / tf.maximum(h, w), scale)


def resized_shape_tf(height, width, im_size: float, max_size: float) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`resized_shape` in TensorFlow (int32)."""
    scale = resize_scale_tf(height, width, im_size, max_size)

    def side(length):
        return tf.maximum(1, tf.cast(tf.floor(tf.cast(length, tf.float32) * scale + 0.5), tf.int32))

    return side(height), side(width)


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP bytes -> uint8 ``[H, W, 3]`` RGB."""
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize_image(image: tf.Tensor, im_size: float, max_size: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Resize ``[H, W, C]`` (or a batch ``[B, H, W, C]`` of one size) by the :func:`resize_scale`
    rule -> (float32 image, scale): the one resize of training input, inference and export.

    Bilinear; antialiased when shrinking (a plain bilinear shrink aliases thin structures), plain
    when enlarging (the same result, cheaper).
    """
    shape = tf.shape(image)
    height, width = shape[-3], shape[-2]
    new_h, new_w = resized_shape_tf(height, width, im_size, max_size)
    size = tf.stack([new_h, new_w])
    scale = resize_scale_tf(height, width, im_size, max_size)
    resized = tf.cond(
        scale < 1.0,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear", antialias=False),
    )
    return resized, scale


def model_inputs(images: Sequence, im_size: float, max_size: float) -> dict:
    """The model's inference inputs for images in memory (``[H, W, 3]`` RGB arrays, any sizes):
    each resized by :func:`resize_image`, zero-padded to the largest and stacked, as
    :func:`make_dataset` batches them: ``images``, ``image_shape`` and ``scale``."""
    resized, scales = zip(*(resize_image(tf.convert_to_tensor(image), im_size, max_size) for image in images))
    height = max(int(r.shape[0]) for r in resized)
    width = max(int(r.shape[1]) for r in resized)
    padded = [tf.pad(r, [[0, height - int(r.shape[0])], [0, width - int(r.shape[1])], [0, 0]]) for r in resized]
    return {
        "images": tf.stack(padded),
        "image_shape": tf.constant([r.shape[:2] for r in resized], tf.int32),
        "scale": tf.stack([tf.cast(s, tf.float32) for s in scales]),
    }


def _resize_boxes(boxes: tf.Tensor, old_hw: tf.Tensor, new_hw: tf.Tensor) -> tf.Tensor:
    """Scale ``[N, 4]`` boxes by the exact per-axis ratio of the new to the old image size."""
    ratio = tf.cast(new_hw, tf.float32) / tf.cast(old_hw, tf.float32)
    return clip_boxes(boxes * tf.stack([ratio[1], ratio[0], ratio[1], ratio[0]]), new_hw[0], new_hw[1])


def _check_records(records: Sequence[ImageRecord], class_map: ClassMap, max_boxes: int) -> None:
    if not records:
        raise UserError("no images to build a dataset from")
    for record in records:
        if record.num_boxes > max_boxes:
            raise UserError(
                f"{record.path}: {record.num_boxes} boxes, more than max_boxes={max_boxes}; "
                "raise max_boxes in the config"
            )
        unknown = sorted(set(record.labels) - set(class_map.names))
        if unknown:
            raise UserError(f"{record.path}: label(s) not in the class list: {', '.join(unknown)}")


def _image_sources(records: Sequence[ImageRecord]) -> dict:
    """Where each record's image comes from: its embedded bytes, or its file."""
    return {
        "path": tf.constant([str(r.path) for r in records], tf.string),
        "bytes": tf.constant([r.image_bytes or b"" for r in records], tf.string),
        "has_bytes": tf.constant([r.image_bytes is not None for r in records], tf.bool),
    }


def _decoded(sources: dict, index) -> tf.Tensor:
    """Image ``index`` of :func:`_image_sources`, decoded (uint8 RGB)."""
    encoded = tf.cond(sources["has_bytes"][index], lambda: sources["bytes"][index],
                      lambda: tf.io.read_file(sources["path"][index]))
    return decode_image(encoded)


def _record_tensors(records: Sequence[ImageRecord], class_map: ClassMap, max_boxes: int) -> dict:
    n = len(records)
    boxes = np.zeros((n, max_boxes, 4), np.float32)
    labels = np.full((n, max_boxes), -1, np.int32)
    for i, record in enumerate(records):
        boxes[i, : record.num_boxes] = record.boxes
        labels[i, : record.num_boxes] = class_map.to_ids(record.labels)
    return {
        **_image_sources(records),
        "boxes": tf.constant(boxes),
        "labels": tf.constant(labels),
        "num_boxes": tf.constant([r.num_boxes for r in records], tf.int32),
    }


def _order_dataset(
    num_records: int, seed: int, *, shuffle: bool, repeat: bool, expansion_ids: tuple[int, ...] | None
) -> tf.data.Dataset:
    """``(epoch, position, record index, fixed transform id or -1)`` for every element, in order."""
    copies = len(expansion_ids) if expansion_ids else 1
    per_epoch = num_records * copies
    record_of = tf.constant(np.repeat(np.arange(num_records, dtype=np.int32), copies))
    fixed_ids = tf.constant(np.tile(np.asarray(expansion_ids or (-1,), np.int32), num_records))
    order_key = tf.constant([seed, _ORDER_STREAM], tf.int64)

    def epoch_elements(epoch):
        if shuffle:
            noise = tf.random.stateless_uniform(
                [per_epoch], seed=tf.random.experimental.stateless_fold_in(order_key, epoch)
            )
            slots = tf.argsort(noise, stable=True)
        else:
            slots = tf.range(per_epoch)
        slots = tf.cast(slots, tf.int32)
        return tf.data.Dataset.from_tensor_slices(
            {
                "epoch": tf.fill([per_epoch], epoch),
                "position": tf.range(per_epoch, dtype=tf.int64),
                "image_index": tf.gather(record_of, slots),
                "fixed_id": tf.gather(fixed_ids, slots),
            }
        )

    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    cardinality = tf.data.INFINITE_CARDINALITY if repeat else per_epoch
    return epochs.flat_map(epoch_elements).apply(tf.data.experimental.assert_cardinality(cardinality))


def make_dataset(
    records: Sequence[ImageRecord],
    class_map: ClassMap,
    config: Config,
    *,
    training: bool,
    batch_size: int = 1,
    shuffle: bool | None = None,
    seed: int = 0,
    augment: bool | None = None,
    expansion: str = "online",
    repeat: bool | None = None,
    skip: int = 0,
) -> tf.data.Dataset:
    """A batched ``tf.data.Dataset`` of the records (element spec in the module docstring).

    Defaults follow ``training``: shuffle and repeat when training; augment when training and
    any of ``config.hflip/vflip/rot90`` is on (or ``expansion="paper16"``). ``expansion``:
    ``"online"`` draws one transform per element from the subgroup the config's flags generate;
    ``"paper16"`` yields every image 16 times per epoch, with the paper's fixed transforms
    (:func:`keras_frcnn.data.augment.paper_expansion_ids`). A repeating dataset drops no data
    but has a static batch size (batches run across epoch ends). ``skip`` drops that many elements
    (images) from the start of the stream before any decoding, so a resumed run continues exactly
    where an uninterrupted one would be.
    """
    if expansion not in EXPANSIONS:
        raise UserError(f"expansion must be one of {', '.join(EXPANSIONS)}, not {expansion!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise UserError(f"seed must be an integer, not {seed!r}")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, not {batch_size}")
    if skip < 0:
        raise UserError(f"skip must not be negative, not {skip}")
    records = list(records)
    _check_records(records, class_map, config.max_boxes)
    shuffle = training if shuffle is None else bool(shuffle)
    repeat = training if repeat is None else bool(repeat)
    if augment is None:
        augment = training and (config.hflip or config.vflip or config.rot90 or expansion == "paper16")
    if expansion == "paper16" and not augment:
        raise UserError("expansion='paper16' needs augmentation, but augment is off")

    data = _record_tensors(records, class_map, config.max_boxes)
    swap_table = tf.constant(lr_swap_table(class_map.names))
    flags = (config.hflip, config.vflip, config.rot90)
    transform_key = tf.constant([seed, _TRANSFORM_STREAM], tf.int64)
    im_size, max_size, max_boxes = config.im_size, config.max_size, config.max_boxes

    def prepare(element):
        index = element["image_index"]
        image = _decoded(data, index)
        hw = tf.shape(image)[:2]
        boxes = clip_boxes(data["boxes"][index], hw[0], hw[1])
        labels = data["labels"][index]

        if not augment:
            transform_id = tf.constant(0, tf.int32)
        elif expansion == "paper16":
            transform_id = element["fixed_id"]
        else:
            key = tf.random.experimental.stateless_fold_in(transform_key, element["epoch"])
            key = tf.random.experimental.stateless_fold_in(key, element["position"])
            transform_id = random_transform_id(*flags, seed=key)
        if augment:
            # Transform, then resize: both commute, and the image is smaller before the resize. In
            # float32 (as the resize computes anyway): TensorFlow 2.21's oneDNN transpose logs an
            # error line for uint8 on many CPUs (an AMD EPYC with AVX-512 among them) and falls
            # back, and users read that line as a fault.
            image, boxes = apply_transform(tf.cast(image, tf.float32), boxes, transform_id)
            if config.mirror_labels == "swap_lr":
                swapped = tf.gather(swap_table, tf.maximum(labels, 0))
                labels = tf.where(transform_swaps_lr(transform_id) & (labels >= 0), swapped, labels)
        resized, scale = resize_image(image, im_size, max_size)
        boxes = _resize_boxes(boxes, tf.shape(image)[:2], tf.shape(resized)[:2])
        image = resized
        valid = tf.range(max_boxes) < data["num_boxes"][index]
        boxes = tf.where(valid[:, None], boxes, 0.0)
        return {
            "images": image,
            "image_shape": tf.shape(image)[:2],
            "boxes": boxes,
            "labels": labels,
            "scale": scale,
            "image_index": index,
            "transform_id": transform_id,
        }

    order = _order_dataset(
        len(records),
        seed,
        shuffle=shuffle,
        repeat=repeat,
        expansion_ids=paper_expansion_ids() if expansion == "paper16" and augment else None,
    )
    dataset = order.skip(skip).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.padded_batch(
        batch_size,
        padded_shapes={
            "images": [None, None, 3],
            "image_shape": [2],
            "boxes": [max_boxes, 4],
            "labels": [max_boxes],
            "scale": [],
            "image_index": [],
            "transform_id": [],
        },
        padding_values={
            "images": 0.0,
            "image_shape": 0,
            "boxes": 0.0,
            "labels": -1,
            "scale": 0.0,
            "image_index": 0,
            "transform_id": 0,
        },
        drop_remainder=repeat,
    )
    return _ahead_of_the_model(dataset)


def image_dataset(records: Sequence[ImageRecord], config: Config, *, batch_size: int = 1) -> tf.data.Dataset:
    """The images of ``records`` for inference, in order, in batches of ``batch_size``: ``images``,
    ``image_shape``, ``scale`` and ``image_index`` (boxes and labels are not read). Decoded and
    resized exactly as for training (:func:`resize_image`), zero-padded to the batch's largest,
    and prepared in parallel ahead of the model."""
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, not {batch_size}")
    sources = _image_sources(records)
    im_size, max_size = config.im_size, config.max_size

    def prepare(index):
        image, scale = resize_image(_decoded(sources, index), im_size, max_size)
        return {"images": image, "image_shape": tf.shape(image)[:2], "scale": scale, "image_index": index}

    indices = tf.data.Dataset.range(len(records), output_type=tf.int32)
    dataset = indices.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _ahead_of_the_model(dataset.padded_batch(
        batch_size, padding_values={"images": 0.0, "image_shape": 0, "scale": 0.0, "image_index": 0}))


def _ahead_of_the_model(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` prefetched, with tf.data's autotuning thread off.

    With autotuning on, deleting an iterator often waits (a race) for that thread's next wake-up,
    and its period doubles from 10 ms to 60 s while the iterator lives: a pass over a folder or a
    validation set then lasted until the next tick (20.47 s after its start for a 14.5 s pass,
    201.9 s for a 190 s one; ``benchmarks/tfdata_iterator_end.py`` shows it). Without it the ``AUTOTUNE``
    settings take TensorFlow's fixed defaults: as many parallel map calls as the CPU has cores,
    and a prefetch buffer that grows while the model waits; the decode and resize of an image
    take milliseconds against the model's tenths of seconds, so there is nothing left to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
