"""The region proposal network as one Keras layer: head, anchors, targets, proposals, loss terms.

Usable alone, on any feature map of stride ``stride``::

    rpn = RegionProposalNetwork(config, stride=16, feature_channels=512)
    logits, deltas = rpn(features)                        # [B, A], [B, A, 4]
    anchors = rpn.anchors(features)                       # [A, 4] image pixels
    boxes, valid = rpn.proposals(logits, deltas, anchors, image_shape)   # [B, N, 4], [B, N]

Anchor order is that of :func:`keras_frcnn.model.anchors.anchor_grid`. The two output convolutions
compute in float32 under a mixed policy (scores, deltas and the losses stay float32); the 3x3
convolution follows the policy.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from keras_frcnn.model.anchors import anchor_grid, rpn_targets
from keras_frcnn.model.boxes import BoxCoder
from keras_frcnn.config import Config
from keras_frcnn.model.losses import rpn_loss
from keras_frcnn.model.proposals import generate_proposals


@keras.saving.register_keras_serializable(package="keras_frcnn")
class RegionProposalNetwork(keras.layers.Layer):
    """RPN of ``config`` (anchors, thresholds, sampling, NMS) on ``feature_channels``-channel
    features of stride ``stride`` pixels. Inputs pass to the sub-layers uncast (``autocast=False``):
    each computes in its own policy."""

    def __init__(self, config: Config | dict, stride: int, feature_channels: int, **kwargs):
        kwargs.setdefault("name", "rpn")
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.frcnn_config = Config.from_dict(config) if isinstance(config, dict) else config
        self.stride = int(stride)
        self.feature_channels = int(feature_channels)
        cfg = self.frcnn_config
        small = keras.initializers.RandomNormal(stddev=0.01)
        self.conv = layers.Conv2D(cfg.rpn_head_channels, 3, padding="same", activation="relu",
                                  kernel_initializer=small, name="rpn_conv")
        self.objectness = layers.Conv2D(cfg.num_anchors, 1, kernel_initializer=small, name="rpn_objectness",
                                        dtype="float32")
        self.box_deltas = layers.Conv2D(4 * cfg.num_anchors, 1, kernel_initializer=small, name="rpn_box_deltas",
                                        dtype="float32")
        # Built here, outside any name scope: weight paths stay rpn_conv/kernel ... (warm starts match them)
        self.conv.build((None, None, None, self.feature_channels))
        self.objectness.build((None, None, None, cfg.rpn_head_channels))
        self.box_deltas.build((None, None, None, cfg.rpn_head_channels))
        self.box_coder = BoxCoder()
        self.built = True

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.frcnn_config.to_dict(), "stride": self.stride,
                "feature_channels": self.feature_channels}

    def call(self, features):
        """Objectness logits [B, A] and box deltas [B, A, 4], A = Hf * Wf * anchors per cell."""
        hidden = self.conv(features)
        batch = tf.shape(features)[0]
        logits = tf.reshape(self.objectness(hidden), [batch, -1])
        deltas = tf.reshape(self.box_deltas(hidden), [batch, -1, 4])
        return logits, deltas

    def anchors(self, features) -> tf.Tensor:
        """The anchors [A, 4] of a feature map [B, Hf, Wf, C], in image pixels."""
        cfg = self.frcnn_config
        shape = tf.shape(features)
        return anchor_grid(shape[1], shape[2], self.stride, cfg.anchor_scales, cfg.anchor_ratios)

    def proposals(self, logits, deltas, anchors, image_shape, training: bool = False):
        """Proposals ``boxes [B, N, 4]`` and ``valid [B, N]`` per image of ``image_shape`` [B, 2]
        (valid height, width); N is the config's post-NMS count for training or inference."""
        cfg = self.frcnn_config
        if training:
            pre_nms, post_nms = cfg.pre_nms_top_n_train, cfg.post_nms_top_n_train
        else:
            pre_nms, post_nms = cfg.pre_nms_top_n_test, cfg.post_nms_top_n_test

        def one_image(args):
            image_logits, image_deltas, shape = args
            shape = tf.cast(shape, tf.float32)
            boxes, _, valid = generate_proposals(
                image_logits, image_deltas, anchors, shape[0], shape[1],
                pre_nms_top_n=pre_nms, post_nms_top_n=post_nms, nms_iou=cfg.rpn_nms_iou,
                min_size=cfg.rpn_min_size, box_coder=self.box_coder)
            return boxes, valid

        signature = (tf.TensorSpec([post_nms, 4], tf.float32), tf.TensorSpec([post_nms], tf.bool))
        return tf.map_fn(one_image, (logits, deltas, image_shape), fn_output_signature=signature)

    def targets(self, anchors, gt_boxes, gt_valid, image_shape, seeds):
        """Sampled anchor labels [B, A] (1, 0, -1 ignored) and target deltas [B, A, 4] per image;
        ``seeds`` [B, 2] are the stateless sampling seeds."""
        cfg = self.frcnn_config

        def one_image(args):
            boxes, valid, shape, seed = args
            shape = tf.cast(shape, tf.float32)
            return rpn_targets(
                anchors, boxes, valid, shape[0], shape[1], positive_iou=cfg.rpn_positive_iou,
                negative_iou=cfg.rpn_negative_iou, batch_size=cfg.rpn_batch_size,
                positive_fraction=cfg.rpn_positive_fraction, allowed_border=cfg.rpn_allowed_border,
                box_coder=self.box_coder, seed=seed)

        return tf.map_fn(one_image, (gt_boxes, gt_valid, image_shape, seeds),
                         fn_output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)))

    def loss_terms(self, logits, deltas, labels, target_deltas, features) -> tuple[tf.Tensor, tf.Tensor]:
        """The RPN's two terms of Eq. 1, summed over the batch: classification / N_cls and
        lambda * regression / N_reg (N_reg the feature map's locations unless the config sets it)."""
        cfg = self.frcnn_config
        shape = tf.shape(features)
        locations = tf.cast(shape[1] * shape[2], tf.float32)
        n_reg = locations if cfg.rpn_n_reg is None else tf.constant(cfg.rpn_n_reg, tf.float32)
        return rpn_loss(logits, deltas, labels, target_deltas, n_cls=cfg.rpn_n_cls, n_reg=n_reg,
                        loss_lambda=cfg.loss_lambda, sigma=cfg.smooth_l1_sigma)
