"""The training step's two-stage gradients: the values of one tape.gradient, in the stated order."""

import numpy as np
import tensorflow as tf

from keras_frcnn.model.faster_rcnn import build_model
from keras_frcnn.model.staged_gradients import staged_gradients
from model_fixtures import batch, tiny_config, two_scenes


def _ancestors(tensor) -> set:
    """Names of the ops ``tensor`` waits for, through data and control inputs."""
    seen, stack = set(), [tensor.op]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def test_staged_gradients_equal_one_tape_gradient_on_the_tiny_model():
    model = build_model(tiny_config())
    data = batch(two_scenes())
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        terms, features = model._losses_and_features(data, training=True)
    staged = staged_gradients(tape, terms["loss"], variables, features, model.features.trainable_variables)
    plain = tape.gradient(terms["loss"], variables)
    assert len(staged) == len(variables) and len(model.features.trainable_variables) > 0
    for variable, a, b in zip(variables, staged, plain):
        assert (a is None) == (b is None), variable.path
        if a is not None:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7, err_msg=variable.path)
    assert any(np.any(g.numpy()) for g in staged[:2] if g is not None)  # the backbone's are not all zero


def test_the_backbone_gradients_wait_for_the_head_gradients_in_a_graph():
    backbone_weight, head_weight = tf.Variable(2.0), tf.Variable(3.0)

    @tf.function
    def gradients(x):
        with tf.GradientTape(persistent=True) as tape:
            features = x * backbone_weight
            loss = tf.square(features * head_weight)
        return staged_gradients(tape, loss, [backbone_weight, head_weight], features, [backbone_weight])

    backbone_gradient, head_gradient = gradients(tf.constant(1.0))
    # loss = (x * b * h)^2: d/db = 2 x^2 b h^2 = 36, d/dh = 2 x^2 b^2 h = 24
    assert float(backbone_gradient) == 36.0 and float(head_gradient) == 24.0
    backbone_output, head_output = gradients.get_concrete_function(tf.constant(1.0)).graph.outputs
    head_gradient_op = head_output.op.inputs[0].op  # the function's outputs are identities of the results
    assert head_gradient_op.name in _ancestors(backbone_output)
    assert backbone_output.op.inputs[0].op.name not in _ancestors(head_output)


def test_without_trainable_backbone_variables_it_is_one_tape_gradient():
    weight = tf.Variable(3.0)
    with tf.GradientTape(persistent=True) as tape:
        features = tf.constant(2.0) * 1.0
        loss = features * weight
    assert [float(g) for g in staged_gradients(tape, loss, [weight], features, [])] == [2.0]
