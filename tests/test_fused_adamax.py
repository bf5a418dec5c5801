"""FusedAdamax: Keras's Adamax rule through TensorFlow's in-place kernel."""

import keras
import numpy as np
import tensorflow as tf

from keras_frcnn.model.faster_rcnn import build_model
from keras_frcnn.training.fused_adamax import FusedAdamax
from keras_frcnn.training.optimizers import build_optimizer, optimizer_settings
from keras_frcnn.training.runs import load_model
from model_fixtures import batch, tiny_config, two_scenes


def _settings():
    settings = optimizer_settings("adamax")
    settings.pop("class")
    return settings


def test_the_paper_settings_build_the_fused_optimizer():
    optimizer = build_optimizer("adamax")
    assert isinstance(optimizer, FusedAdamax)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.999, 1e-7)
    assert float(optimizer.learning_rate) == np.float32(0.002)


def test_steps_match_keras_adamax():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(50, 30)).astype(np.float32)
    gradients = [rng.normal(size=start.shape).astype(np.float32) * scale for scale in (1.0, 0.01, 3.0, 0.0, 1.0)]
    weights = {}
    for cls in (keras.optimizers.Adamax, FusedAdamax):
        variable = keras.Variable(start)
        optimizer = cls(**_settings())
        for gradient in gradients:
            optimizer.apply_gradients([(tf.constant(gradient), variable)])
        weights[cls] = variable.numpy()
    assert not np.allclose(weights[FusedAdamax], start)
    np.testing.assert_allclose(weights[FusedAdamax], weights[keras.optimizers.Adamax], rtol=1e-6, atol=1e-7)


def test_training_uses_the_fused_kernel_and_a_checkpoint_restores_it(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(tiny_config(), FusedAdamax(**_settings()))
    data = batch(two_scenes())
    step = tf.function(lambda: model.train_step(data))
    step()
    graph_ops = {op.type for function in step.get_concrete_function().graph._functions.values()
                 for op in function.graph.get_operations()} | {
        op.type for op in step.get_concrete_function().graph.get_operations()}
    assert "ResourceApplyAdaMax" in graph_ops
    path = tmp_path / "model.keras"
    model.save(path)
    restored = load_model(str(path), with_optimizer=True)
    assert isinstance(restored.optimizer, FusedAdamax)
    for saved, loaded in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
