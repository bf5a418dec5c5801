"""The paper's optimizer settings, set explicitly (Keras 3 defaults differ)."""

import keras
import numpy as np
import pytest

from keras_frcnn.errors import UserError
from keras_frcnn.training.optimizers import build_optimizer, optimizer_names


@pytest.mark.parametrize("name, cls, expected", [
    ("adadelta", keras.optimizers.Adadelta, {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7}),
    ("adagrad", keras.optimizers.Adagrad, {"learning_rate": 0.01, "epsilon": 1e-7, "initial_accumulator_value": 0.0}),
    ("adamax", keras.optimizers.Adamax, {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    ("rmsprop", keras.optimizers.RMSprop, {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7}),
])
def test_paper_values(name, cls, expected):
    optimizer = build_optimizer(name)
    assert isinstance(optimizer, cls)
    config = optimizer.get_config()
    for key, value in expected.items():
        assert config[key] == pytest.approx(value), key
    assert not config.get("weight_decay")


def test_learning_rate_override_and_errors():
    assert build_optimizer("Adadelta", learning_rate=0.5).get_config()["learning_rate"] == pytest.approx(0.5)
    with pytest.raises(UserError, match="unknown optimizer 'nadam'"):
        build_optimizer("nadam")
    with pytest.raises(UserError, match="positive"):
        build_optimizer("adamax", learning_rate=0.0)
    assert set(optimizer_names()) >= {"adadelta", "adagrad", "adamax", "rmsprop", "adam", "sgd"}


def test_adagrad_first_step_is_keras2_like():
    # Keras 2.2 Adagrad starts its accumulator at 0: the first step moves by lr * g / (|g| + eps) ~= lr.
    var = keras.Variable(np.array([1.0, 1.0], np.float32))
    optimizer = build_optimizer("adagrad")
    optimizer.apply([keras.ops.convert_to_tensor(np.array([0.5, -2.0], np.float32))], [var])
    np.testing.assert_allclose(var.numpy(), [1.0 - 0.01, 1.0 + 0.01], rtol=1e-4)
