"""Optimizers by name with the hyper-parameters of the paper (Keras 2 values, set explicitly).

Keras 3 defaults differ from the Keras 2 values the paper used (every Keras 3 learning rate
defaults to 0.001, Adagrad's accumulators start at 0.1 instead of 0), so each value is spelled
out here and recorded in a run's ``config.json``. No decay. One optimizer trains the whole model
(RPN and head), as in the paper.
"""

from __future__ import annotations

from keras_frcnn.errors import UserError


def paper_settings() -> dict[str, dict]:
    """Name -> (Keras class name, keyword arguments): the paper's four, plus adam and sgd."""
    return {
        "adadelta": {"class": "Adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
        "adagrad": {"class": "Adagrad", "learning_rate": 0.01, "epsilon": 1e-7, "initial_accumulator_value": 0.0},
        "adamax": {"class": "Adamax", "learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        "rmsprop": {"class": "RMSprop", "learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7},
        "adam": {"class": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        "sgd": {"class": "SGD", "learning_rate": 0.001, "momentum": 0.9},
    }


def optimizer_names() -> list[str]:
    return list(paper_settings())


def optimizer_settings(name: str, learning_rate: float | None = None, clipnorm: float | None = None) -> dict:
    """The keyword arguments for ``name`` (``learning_rate``/``clipnorm`` override the paper's)."""
    settings = paper_settings()
    key = name.lower()
    if key not in settings:
        raise UserError(f"unknown optimizer {name!r}; choose from {', '.join(settings)}")
    chosen = dict(settings[key])
    if learning_rate is not None:
        if not learning_rate > 0:
            raise UserError(f"learning rate must be positive, not {learning_rate}")
        chosen["learning_rate"] = float(learning_rate)
    if clipnorm is not None:
        chosen["clipnorm"] = float(clipnorm)
    return chosen


def build_optimizer(name: str, learning_rate: float | None = None, clipnorm: float | None = None):
    """A fresh ``keras.optimizers.Optimizer`` by name with the paper's settings."""
    import keras  # here, so that command-line flags are checked before TensorFlow loads

    kwargs = optimizer_settings(name, learning_rate, clipnorm)
    class_name = kwargs.pop("class")
    if class_name == "Adamax" and keras.backend.backend() == "tensorflow":
        from keras_frcnn.training.fused_adamax import FusedAdamax  # the same rule, updated in place

        return FusedAdamax(**kwargs)
    return getattr(keras.optimizers, class_name)(**kwargs)
