"""Training and evaluation input: D4 augmentation (:mod:`.augment`), tf.data pipeline (:mod:`.pipeline`)."""

from keras_frcnn.data.augment import (
    apply_transform,
    inverse_transform_id,
    lr_swap_table,
    paper_expansion_ids,
    random_transform_id,
    transform_boxes,
    transform_swaps_lr,
)
from keras_frcnn.data.pipeline import make_dataset, resize_scale, resized_shape

__all__ = [
    "apply_transform",
    "inverse_transform_id",
    "lr_swap_table",
    "make_dataset",
    "paper_expansion_ids",
    "random_transform_id",
    "resize_scale",
    "resized_shape",
    "transform_boxes",
    "transform_swaps_lr",
]
