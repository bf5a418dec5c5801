"""Adamax whose update is TensorFlow's fused kernel: the same step, no full-size temporaries.

Keras's Adamax updates a weight with separate ops (``g - m``, its product, ``beta_2 * u``,
``max``, ``lr * m``, ...), each a temporary as large as the weight: for VGG16's fc6 (411 MB) the
update alone briefly holds several of them. ``ResourceApplyAdaMax`` updates the weight and both
slots in place. The rule is Keras's (and the paper's Keras 2 one): ``m = beta_1 m + (1 - beta_1) g``,
``u = max(beta_2 u, |g|)``, ``w -= lr / (1 - beta_1^t) * m / (u + epsilon)``; only the order of
the floating-point operations differs. Other backends, sparse gradients and non-float32 weights
take Keras's own update.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_frcnn")
class FusedAdamax(keras.optimizers.Adamax):
    """``keras.optimizers.Adamax`` with the fused TensorFlow update (same arguments, same state)."""

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (keras.backend.backend() != "tensorflow" or isinstance(gradient, tf.IndexedSlices)
                or variable.dtype != "float32"):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.constant(self.beta_1, tf.float32)
        tf.raw_ops.ResourceApplyAdaMax(
            var=variable.handle, m=self._m[index].handle, v=self._u[index].handle,
            beta1_power=tf.pow(beta_1, step), lr=tf.cast(learning_rate, tf.float32), beta1=beta_1,
            beta2=tf.constant(self.beta_2, tf.float32), epsilon=tf.constant(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32))
