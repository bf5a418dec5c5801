"""Gradients of a two-stage network, the later stage's first, so its update frees memory early.

A Faster R-CNN training step differentiates the loss through the RoI head, whose fc6 gradient
alone is VGG16's largest tensor (392 MiB), into the backbone, whose first blocks' gradients at
full image resolution are the step's peak. Computed as one ``tape.gradient``, the order of that
work is TensorFlow's to choose, and VGG16's peak at 600 px varied between runs by about one fc6
(4,100-4,610 MiB): the head's gradients can wait until the backbone's are done, and an update
that runs while the backward pass still holds a read of its weight copies the weight first.
:func:`staged_gradients` fixes the order: the gradients of the head-side variables and of the
shared feature map first, then, once those exist, the backbone's from the feature map's gradient.
The optimizer can apply the head's gradients (and free them) while the backbone's are computed
(3,740-3,830 MiB, ``benchmarks/memory.py``). The values are those of one ``tape.gradient``.
"""

from __future__ import annotations

import tensorflow as tf


def staged_gradients(tape: tf.GradientTape, loss, variables, features, backbone_variables) -> list:
    """The gradients of ``loss`` for ``variables`` (in their order; None where unconnected), from a
    persistent ``tape`` that recorded ``features = backbone(...)`` and the loss from them;
    ``backbone_variables`` are those of ``variables`` that ``features`` depends on. The loss must
    depend on them through ``features`` only (no weight penalty on them, and no later stage
    inside the function that computes ``features``): their gradients are taken from there."""
    backbone_ids = {id(v) for v in backbone_variables}
    backbone = [v for v in variables if id(v) in backbone_ids]
    if not backbone:
        return tape.gradient(loss, variables)
    later = [v for v in variables if id(v) not in backbone_ids]
    *later_gradients, feature_gradient = tape.gradient(loss, later + [features])
    if feature_gradient is None:  # the loss does not reach the backbone
        return tape.gradient(loss, variables)
    with tf.control_dependencies([feature_gradient]):  # every read of the head's kernels is done
        later_gradients = [None if g is None else tf.identity(g) for g in later_gradients]
    with tf.control_dependencies([g for g in later_gradients if g is not None]):
        backbone_gradients = tape.gradient(features, backbone, output_gradients=feature_gradient)
    by_variable = {id(v): g for v, g in zip(later + backbone, later_gradients + list(backbone_gradients))}
    return [by_variable[id(v)] for v in variables]
