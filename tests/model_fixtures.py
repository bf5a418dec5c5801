"""Small hand-made detection problems for the model tests (no files, no generator)."""

from __future__ import annotations

import numpy as np

from keras_frcnn.config import Config


def tiny_config(**changes) -> Config:
    """A tiny backbone on small images: a training step takes milliseconds on a CPU."""
    settings = dict(
        class_names=("a", "b", "c"), network="tiny", tiny_filters=(8, 16, 32, 32), head_units=64,
        rpn_head_channels=32, anchor_scales=(16.0, 32.0, 64.0), anchor_ratios=(0.5, 1.0, 2.0),
        im_size=128, max_size=128, pre_nms_top_n_train=300, post_nms_top_n_train=64,
        pre_nms_top_n_test=300, post_nms_top_n_test=64, num_rois=32, max_boxes=8,
        rpn_batch_size=64, score_threshold=0.05, max_detections=20,
    )
    settings.update(changes)
    return Config(**settings)


def saved_tiny_model(path, seed: int):
    """A :func:`tiny_config` model drawn with ``seed``, saved to ``path``; returns it."""
    import keras

    from keras_frcnn.model.faster_rcnn import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(tiny_config())
    model.save(path)
    return model


def scene(objects, height=128, width=128, seed=0):
    """An image with dark shapes on a light background: ``objects`` = [(x1, y1, x2, y2, class_id)].

    Class 0 is a filled rectangle, 1 a rectangle with a light hole, 2 a striped rectangle, so the
    classes are visually distinct.
    """
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 220.0, np.float32) + rng.normal(0, 3, (height, width, 3))
    for x1, y1, x2, y2, cls in objects:
        x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
        image[y1:y2, x1:x2] = 40.0
        if cls == 1:
            image[y1 + (y2 - y1) // 3: y2 - (y2 - y1) // 3, x1 + (x2 - x1) // 3: x2 - (x2 - x1) // 3] = 200.0
        elif cls == 2:
            image[y1:y2:4, x1:x2] = 160.0
    return np.clip(image, 0, 255)


def batch(scenes, max_boxes=8):
    """A model input dict from ``[(image, objects), ...]`` (same-size images)."""
    images = np.stack([image for image, _ in scenes]).astype(np.float32)
    boxes = np.zeros((len(scenes), max_boxes, 4), np.float32)
    labels = np.full((len(scenes), max_boxes), -1, np.int32)
    for i, (_, objects) in enumerate(scenes):
        for j, (x1, y1, x2, y2, cls) in enumerate(objects):
            boxes[i, j] = (x1, y1, x2, y2)
            labels[i, j] = cls
    shape = np.tile(np.asarray(images.shape[1:3], np.int32), (len(scenes), 1))
    return {"images": images, "image_shape": shape, "boxes": boxes, "labels": labels}


def two_scenes():
    """The two-image overfitting set."""
    first = [(10, 12, 30, 52, 0), (50, 20, 90, 40, 1), (70, 70, 96, 118, 2), (20, 80, 44, 104, 0)]
    second = [(14, 60, 54, 80, 2), (80, 10, 100, 50, 0), (60, 84, 100, 108, 1)]
    return [(scene(first, seed=1), first), (scene(second, seed=2), second)]


TINY_DATASET_OBJECTS = [
    [(10, 12, 30, 52, 0), (50, 20, 90, 40, 1), (70, 70, 96, 118, 2)],
    [(14, 60, 54, 80, 2), (80, 10, 100, 50, 0)],
    [(20, 20, 60, 44, 1), (70, 60, 94, 110, 0)],
    [(30, 30, 50, 90, 2)],
]
"""Four small images of :func:`scene` objects: the data set of the command-line tests."""

TINY_MODEL_FLAGS = ["--im-size", "128", "--set", "tiny_filters=[8,16,32,32]", "--set", "head_units=32",
                    "--set", "rpn_head_channels=16", "--set", "anchor_scales=[16,32,64]",
                    "--set", "anchor_ratios=[0.5,1,2]", "--set", "max_size=128", "--set", "post_nms_top_n_train=32",
                    "--set", "post_nms_top_n_test=32", "--set", "max_boxes=8", "-n", "16"]
"""train_frcnn.py / compare_optimizers.py model flags of a tiny network (add the network flag)."""


def write_tiny_dataset(folder) -> str:
    """Write :data:`TINY_DATASET_OBJECTS` as PNGs and ``train.csv`` (classes a, b, c) in ``folder``."""
    import cv2

    names = ("a", "b", "c")
    lines = ["filepath,x1,y1,x2,y2,class_name"]
    for i, objects in enumerate(TINY_DATASET_OBJECTS):
        cv2.imwrite(str(folder / f"img{i}.png"), scene(objects, seed=i).astype(np.uint8))
        lines += [f"img{i}.png,{x1},{y1},{x2},{y2},{names[c]}" for x1, y1, x2, y2, c in objects]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return folder / "train.csv"
