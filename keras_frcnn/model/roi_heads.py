"""The second stage as one Keras layer: RoI sampling, pooling, the head, class and box outputs,
loss terms and post-processing (a swappable :mod:`keras_frcnn.model.decoders` object).

Usable alone, on a feature map of stride ``stride`` and RoIs in image pixels::

    heads = RoIHeads(config, head=backbone.head, pooled_size=7, stride=16)
    logits, deltas = heads(features, rois, image_shape)   # [B, R, C+1], [B, R, C, 4]
    detections = heads.detect(rois, valid, logits, deltas, image_shape)   # the decoder's outputs

Pooling runs in float32 (``crop_and_resize`` has no bfloat16 kernel); the head follows the dtype
policy; the class and box outputs compute in float32.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from keras_frcnn.model.boxes import BoxCoder, box_feature_names, box_features, clip_boxes
from keras_frcnn.config import Config
from keras_frcnn.model.decoders import Decoder, decoder_for
from keras_frcnn.model.losses import head_loss
from keras_frcnn.model.roi_pooling import roi_pool
from keras_frcnn.model.roi_sampling import sample_rois

GEOMETRY_UNITS = 128  # width of the RoI box-feature embedding (Config.roi_box_features)


@keras.saving.register_keras_serializable(package="keras_frcnn")
class RoIHeads(keras.layers.Layer):
    """The detection head of ``config`` around ``head`` (pooled RoIs [N, p, p, C] -> [N, D], the
    backbone's part: fc6/fc7 or ResNet's conv5). Inputs pass to the sub-layers uncast
    (``autocast=False``): boxes stay float32 under a mixed policy."""

    def __init__(self, config: Config | dict, head: keras.Model | dict, pooled_size: int, stride: int, **kwargs):
        kwargs.setdefault("name", "roi_heads")
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.frcnn_config = cfg = Config.from_dict(config) if isinstance(config, dict) else config
        self.head = keras.saving.deserialize_keras_object(head) if isinstance(head, dict) else head
        self.pooled_size = int(pooled_size)
        self.stride = int(stride)
        small = keras.initializers.RandomNormal(stddev=0.01)
        units = self.head.output.shape[-1]
        self.geometry = None
        if cfg.roi_box_features != "none":
            self.geometry = layers.Dense(GEOMETRY_UNITS, activation="relu", name="roi_geometry")
            self.geometry.build((None, len(box_feature_names(cfg.roi_box_features))))
            units += GEOMETRY_UNITS
        self.class_logits = layers.Dense(cfg.num_classes + 1, kernel_initializer=small, name="class_logits",
                                         dtype="float32")
        self.class_box_deltas = layers.Dense(4 * cfg.num_classes,
                                             kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                                             name="class_box_deltas", dtype="float32")
        # Built here, outside any name scope: weight paths stay class_logits/kernel ... (warm starts match them)
        self.class_logits.build((None, units))
        self.class_box_deltas.build((None, units))
        self.box_coder = BoxCoder(weights=cfg.box_target_scales)
        self.decoder: Decoder = decoder_for(cfg)
        self.built = True

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.frcnn_config.to_dict(),
                "head": keras.saving.serialize_keras_object(self.head), "pooled_size": self.pooled_size,
                "stride": self.stride}

    # ----------------------------------------------------------------- forward
    def call(self, features, rois, image_shape, training=False, dense=None):
        """Class logits [B, R, C+1] and class-specific deltas [B, R, C, 4] for RoIs [B, R, 4] of
        images of ``image_shape`` [B, 2]. ``dense`` wraps the dense part (the model's XLA switch)."""
        cfg = self.frcnn_config
        ratio = cfg.roi_sampling_ratio or max(1, 14 // self.pooled_size)
        pooled = roi_pool(tf.cast(features, tf.float32), rois, stride=self.stride, pool_size=self.pooled_size,
                          align=cfg.roi_align, sampling_ratio=ratio)
        geometry = None
        if self.geometry is not None:
            geometry = box_features(rois, image_shape, cfg.roi_box_features)
            geometry = tf.reshape(geometry, [-1, geometry.shape[-1]])
        logits, deltas = (dense or (lambda f: f))(self.head_outputs)(pooled, geometry, training)
        batch, num_rois = tf.shape(rois)[0], tf.shape(rois)[1]
        logits = tf.reshape(logits, [batch, num_rois, cfg.num_classes + 1])
        deltas = tf.reshape(deltas, [batch, num_rois, cfg.num_classes, 4])
        return logits, deltas

    def head_outputs(self, pooled, geometry, training):
        """The dense part: pooled RoIs [N, p, p, C] (and their box features [N, k], or None) ->
        class logits [N, C+1] and deltas [N, 4C], float32."""
        hidden = self.head(pooled, training=training)
        if self.geometry is not None:
            embedded = self.geometry(geometry)
            hidden = tf.concat([hidden, tf.cast(embedded, hidden.dtype)], axis=-1)
        return self.class_logits(hidden), self.class_box_deltas(hidden)

    # ----------------------------------------------------------------- training
    def sample(self, proposals, proposals_valid, gt_boxes, gt_labels, gt_valid, seeds):
        """Per image, ``config.num_rois`` RoIs [B, R, 4] with their labels [B, R] (0 background),
        target deltas [B, R, 4] and weights [B, R] (0 for padding)."""
        cfg = self.frcnn_config

        def one_image(args):
            boxes, labels, valid, props, props_ok, seed = args
            return sample_rois(
                props, props_ok, boxes, labels, valid, num_rois=cfg.num_rois,
                positive_fraction=cfg.roi_positive_fraction, positive_iou=cfg.roi_positive_iou,
                negative_iou_low=cfg.roi_negative_iou_low, box_coder=self.box_coder, seed=seed)

        rois = cfg.num_rois
        return tf.map_fn(
            one_image, (gt_boxes, gt_labels, gt_valid, proposals, proposals_valid, seeds),
            fn_output_signature=(tf.TensorSpec([rois, 4], tf.float32), tf.TensorSpec([rois], tf.int32),
                                 tf.TensorSpec([rois, 4], tf.float32), tf.TensorSpec([rois], tf.float32)))

    def loss_terms(self, logits, deltas, labels, target_deltas, weights) -> tuple[tf.Tensor, tf.Tensor]:
        """The head's two terms of Eq. 1, summed over the batch (N_cls, N_reg: the config's, or
        the RoIs per image)."""
        cfg = self.frcnn_config
        return head_loss(
            tf.reshape(logits, [-1, cfg.num_classes + 1]), tf.reshape(deltas, [-1, cfg.num_classes, 4]),
            tf.reshape(labels, [-1]), tf.reshape(target_deltas, [-1, 4]), tf.reshape(weights, [-1]),
            n_cls=float(cfg.head_n_cls or cfg.num_rois), n_reg=float(cfg.head_n_reg or cfg.num_rois),
            loss_lambda=cfg.head_loss_lambda, sigma=cfg.head_smooth_l1_sigma)

    # ----------------------------------------------------------------- inference
    def detect(self, rois, rois_valid, logits, deltas, image_shape, scale=None) -> dict:
        """The decoder's outputs per image (``boxes``, ``scores``, ``classes``, ``valid`` and what
        else it returns) for RoIs [B, R, 4] and the head's outputs; boxes are clipped to the image
        and divided by ``scale`` [B] (resized / original size) when it is given."""
        cfg = self.frcnn_config
        scores = tf.nn.softmax(logits, axis=-1)[..., 1:]
        scores = scores * tf.cast(rois_valid, scores.dtype)[..., None]
        batch = tf.shape(rois)[0]
        scale = tf.ones([batch], tf.float32) if scale is None else tf.cast(scale, tf.float32)

        def one_image(args):
            image_rois, image_deltas, image_scores, shape, image_scale = args
            shape = tf.cast(shape, tf.float32)
            boxes = self.box_coder.decode(image_deltas, tf.broadcast_to(image_rois[:, None, :], tf.shape(image_deltas)))
            boxes = clip_boxes(boxes, shape[0], shape[1]) / image_scale
            return self.decoder.decode(boxes, image_scores)

        return tf.map_fn(one_image, (rois, deltas, scores, image_shape, scale),
                         fn_output_signature=self.decoder.signature(cfg.num_classes))
