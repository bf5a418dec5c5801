"""Faster R-CNN as one ``keras.Model``: every step of training and inference inside the graph.

A training step runs the backbone once, then the RPN head, anchor targets, proposals, RoI
sampling, RoI pooling and the detection head, all as TensorFlow ops (no NumPy, no host round
trip). The inputs are the dicts made by :func:`keras_frcnn.data.pipeline.make_dataset`:
``images`` [B, H, W, 3] RGB 0-255 (zero padded), ``image_shape`` [B, 2] (valid height, width),
``boxes`` [B, M, 4] and ``labels`` [B, M] (-1 pads), and for inference optionally ``scale`` [B]
(resized / original size) so boxes come back in original image coordinates.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from keras_frcnn.anchors import anchor_grid, rpn_targets
from keras_frcnn.backbones import build_backbone, preprocess
from keras_frcnn.boxes import BoxCoder, box_feature_names, box_features, clip_boxes
from keras_frcnn.config import Config
from keras_frcnn.losses import head_loss, rpn_loss
from keras_frcnn.proposals import batched_nms_per_class, generate_proposals, object_candidates
from keras_frcnn.roi_pooling import roi_pool
from keras_frcnn.roi_sampling import sample_rois

GEOMETRY_UNITS = 128  # width of the RoI box-feature embedding (Config.roi_box_features)
LOSS_NAMES = ("loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg")


@keras.saving.register_keras_serializable(package="keras_frcnn")
class FasterRCNN(keras.Model):
    """Faster R-CNN (VGG16, ResNet50 or a tiny backbone) for ``config.class_names``.

    ``compile(optimizer=...)`` takes any Keras optimizer and no loss (the model computes Eq. 1
    itself); ``fit`` trains; ``predict`` and :meth:`detect` return per-class-NMS detections. Class ids are 0-based into ``config.class_names``.
    """

    def __init__(self, config: Config | dict, **kwargs):
        kwargs.setdefault("name", "faster_rcnn")
        super().__init__(**kwargs)
        config = Config.from_dict(config) if isinstance(config, dict) else config
        if config.num_classes < 1:
            raise ValueError("config.class_names is empty: the model needs at least one class")
        self.frcnn_config = config
        backbone = build_backbone(config)
        self.features = backbone.features
        self.roi_head = backbone.head
        self.pooled_size = backbone.pooled_size
        self.preprocessing = backbone.preprocessing
        self.stride = backbone.stride  # input pixels per feature cell, measured from the backbone
        feature_channels = self.features.output.shape[-1]
        head_units = self.roi_head.output.shape[-1]
        num_anchors, num_classes = config.num_anchors, config.num_classes

        small = keras.initializers.RandomNormal(stddev=0.01)
        self.rpn_conv = layers.Conv2D(config.rpn_head_channels, 3, padding="same", activation="relu",
                                      kernel_initializer=small, name="rpn_conv")
        # The four output layers compute in float32 under a mixed policy (scores, deltas and the
        # losses stay float32); the backbone, the RPN conv and the RoI head follow the policy.
        self.rpn_objectness = layers.Conv2D(num_anchors, 1, kernel_initializer=small, name="rpn_objectness",
                                            dtype="float32")
        self.rpn_box_deltas = layers.Conv2D(4 * num_anchors, 1, kernel_initializer=small, name="rpn_box_deltas",
                                            dtype="float32")
        self.class_logits = layers.Dense(num_classes + 1, kernel_initializer=small, name="class_logits",
                                         dtype="float32")
        self.class_box_deltas = layers.Dense(4 * num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                                             name="class_box_deltas", dtype="float32")
        self.rpn_conv.build((None, None, None, feature_channels))
        self.rpn_objectness.build((None, None, None, config.rpn_head_channels))
        self.rpn_box_deltas.build((None, None, None, config.rpn_head_channels))
        self.roi_geometry = None
        if config.roi_box_features != "none":
            self.roi_geometry = layers.Dense(GEOMETRY_UNITS, activation="relu", name="roi_geometry")
            self.roi_geometry.build((None, len(box_feature_names(config.roi_box_features))))
            head_units += GEOMETRY_UNITS
        self.class_logits.build((None, head_units))
        self.class_box_deltas.build((None, head_units))

        self.rpn_coder = BoxCoder()
        self.head_coder = BoxCoder(weights=config.box_target_scales)
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        # NMS, crop_and_resize and the sampling ops are not all XLA-compatible:
        # compile(jit_compile="auto") must not pick XLA for the whole step. The dense parts can be
        # compiled on their own: see set_dense_jit.
        self.supports_jit = False
        self.dense_jit = False
        self.built = True

    # ----------------------------------------------------------------- serialisation
    def get_config(self) -> dict:
        return {"config": self.frcnn_config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "FasterRCNN":
        return cls(**config)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.frcnn_config.class_names

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    def set_label_assignment(self, mode: str) -> None:
        """Inference labels: ``"none"`` (per-class NMS), ``"optimal"`` (each label at most once per
        image) or ``"karyotype"`` (each at most as often as a cell holds it; see
        :mod:`keras_frcnn.label_assignment`). An inference setting; retraces ``predict``."""
        self.frcnn_config = self.frcnn_config.replace(label_assignment=mode)
        self.predict_function = None

    # ----------------------------------------------------------------- XLA
    def set_dense_jit(self, enabled: bool = True) -> None:
        """Compile the dense parts with XLA: backbone + RPN head, and RoI head + output layers.

        The whole step cannot be one XLA cluster (``tf.image.crop_and_resize`` has no XLA kernel,
        combined NMS is not XLA-compatible), so each dense part runs as a ``tf.function`` with
        ``jit_compile=True`` (forward and backward), between the anchor, proposal, sampling and
        pooling ops that TensorFlow runs as usual. XLA compiles once per input shape: it pays off
        when images come in few sizes. A runtime setting: not saved with the model.
        """
        self.__dict__["_jit_functions"] = {}  # bypasses Keras attribute tracking (not state)
        self.dense_jit = bool(enabled)

    def _dense(self, name: str, function):
        """``function`` itself, or its XLA-compiled version when dense JIT is on."""
        if not self.dense_jit:
            return function
        cache = self.__dict__.setdefault("_jit_functions", {})
        if name not in cache:
            cache[name] = tf.function(function, jit_compile=True, reduce_retracing=True)
        return cache[name]

    # ----------------------------------------------------------------- building blocks
    def _backbone(self, images, training):
        return self.features(preprocess(tf.cast(images, tf.float32), self.preprocessing), training=training)

    def _backbone_and_rpn(self, images, training):
        """Feature map, RPN objectness logits [B, A] and box deltas [B, A, 4] (the dense first half)."""
        features = self._backbone(images, training)
        logits, deltas = self._rpn(features)
        return features, logits, deltas

    def _head_outputs(self, pooled, geometry, training):
        """RoI head on pooled RoIs [N, p, p, C] (and their box features [N, k], or None) -> class
        logits [N, C+1], deltas [N, 4C] (float32)."""
        hidden = self.roi_head(pooled, training=training)
        if self.roi_geometry is not None:
            embedded = self.roi_geometry(geometry)
            hidden = tf.concat([hidden, tf.cast(embedded, hidden.dtype)], axis=-1)
        return self.class_logits(hidden), self.class_box_deltas(hidden)

    def _rpn(self, features):
        """Objectness logits [B, A] and box deltas [B, A, 4], A = Hf * Wf * anchors."""
        hidden = self.rpn_conv(features)
        batch = tf.shape(features)[0]
        logits = tf.reshape(self.rpn_objectness(hidden), [batch, -1])
        deltas = tf.reshape(self.rpn_box_deltas(hidden), [batch, -1, 4])
        return logits, deltas

    def _anchors(self, features):
        cfg = self.frcnn_config
        shape = tf.shape(features)
        return anchor_grid(shape[1], shape[2], self.stride, cfg.anchor_scales, cfg.anchor_ratios)

    def _proposals(self, logits, deltas, anchors, image_shape, training):
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
                min_size=cfg.rpn_min_size, box_coder=self.rpn_coder)
            return boxes, valid

        signature = (tf.TensorSpec([post_nms, 4], tf.float32), tf.TensorSpec([post_nms], tf.bool))
        return tf.map_fn(one_image, (logits, deltas, image_shape), fn_output_signature=signature)

    def _head(self, features, rois, image_shape, training):
        """Class logits [B, R, C+1] and class-specific deltas [B, R, C, 4] for RoIs [B, R, 4] of
        images of ``image_shape`` [B, 2]."""
        cfg = self.frcnn_config
        # Pooling in float32 (crop_and_resize has no bfloat16 kernel); the head casts back to its policy.
        ratio = cfg.roi_sampling_ratio or max(1, 14 // self.pooled_size)
        pooled = roi_pool(tf.cast(features, tf.float32), rois, stride=self.stride, pool_size=self.pooled_size,
                          align=cfg.roi_align, sampling_ratio=ratio)
        geometry = None
        if self.roi_geometry is not None:
            geometry = box_features(rois, image_shape, cfg.roi_box_features)
            geometry = tf.reshape(geometry, [-1, geometry.shape[-1]])
        logits, deltas = self._dense("head", self._head_outputs)(pooled, geometry, training)
        batch, num_rois = tf.shape(rois)[0], tf.shape(rois)[1]
        logits = tf.reshape(logits, [batch, num_rois, cfg.num_classes + 1])
        deltas = tf.reshape(deltas, [batch, num_rois, cfg.num_classes, 4])
        return logits, deltas

    # ----------------------------------------------------------------- training
    def compute_frcnn_losses(self, data, training: bool) -> dict:
        """The four loss terms of Eq. 1 (RPN and head) and their sum, averaged over the batch."""
        cfg = self.frcnn_config
        images, image_shape = data["images"], data["image_shape"]
        gt_boxes, gt_labels = tf.cast(data["boxes"], tf.float32), tf.cast(data["labels"], tf.int32)
        gt_valid = gt_labels >= 0

        features, rpn_logits, rpn_deltas = self._dense("backbone", self._backbone_and_rpn)(images, training)
        anchors = self._anchors(features)

        rpn_seeds, roi_seeds = self._sampling_seeds(tf.shape(images)[0])

        def anchor_targets(args):
            boxes, valid, shape, seed = args
            shape = tf.cast(shape, tf.float32)
            return rpn_targets(
                anchors, boxes, valid, shape[0], shape[1], positive_iou=cfg.rpn_positive_iou,
                negative_iou=cfg.rpn_negative_iou, batch_size=cfg.rpn_batch_size,
                positive_fraction=cfg.rpn_positive_fraction, allowed_border=cfg.rpn_allowed_border,
                box_coder=self.rpn_coder, seed=seed)

        rpn_labels, rpn_target_deltas = tf.map_fn(
            anchor_targets, (gt_boxes, gt_valid, image_shape, rpn_seeds),
            fn_output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)))

        proposals, proposals_valid = self._proposals(rpn_logits, rpn_deltas, anchors, image_shape, training=True)

        def roi_targets(args):
            boxes, labels, valid, props, props_ok, seed = args
            return sample_rois(
                props, props_ok, boxes, labels, valid, num_rois=cfg.num_rois,
                positive_fraction=cfg.roi_positive_fraction, positive_iou=cfg.roi_positive_iou,
                negative_iou_low=cfg.roi_negative_iou_low, box_coder=self.head_coder, seed=seed)

        rois, roi_labels, roi_target_deltas, roi_weights = tf.map_fn(
            roi_targets, (gt_boxes, gt_labels, gt_valid, proposals, proposals_valid, roi_seeds),
            fn_output_signature=(tf.TensorSpec([cfg.num_rois, 4], tf.float32), tf.TensorSpec([cfg.num_rois], tf.int32),
                                 tf.TensorSpec([cfg.num_rois, 4], tf.float32), tf.TensorSpec([cfg.num_rois], tf.float32)))
        class_logits, class_deltas = self._head(features, tf.stop_gradient(rois), image_shape, training)

        batch = tf.cast(tf.shape(images)[0], tf.float32)
        feature_shape = tf.shape(features)
        locations = tf.cast(feature_shape[1] * feature_shape[2], tf.float32)
        n_reg = locations if cfg.rpn_n_reg is None else tf.constant(cfg.rpn_n_reg, tf.float32)
        rpn_cls, rpn_reg = rpn_loss(
            rpn_logits, rpn_deltas, rpn_labels, rpn_target_deltas, n_cls=cfg.rpn_n_cls, n_reg=n_reg,
            loss_lambda=cfg.loss_lambda, sigma=cfg.smooth_l1_sigma)
        head_n_cls = float(cfg.head_n_cls or cfg.num_rois)
        head_n_reg = float(cfg.head_n_reg or cfg.num_rois)
        head_cls, head_reg = head_loss(
            tf.reshape(class_logits, [-1, cfg.num_classes + 1]), tf.reshape(class_deltas, [-1, cfg.num_classes, 4]),
            tf.reshape(roi_labels, [-1]), tf.reshape(roi_target_deltas, [-1, 4]), tf.reshape(roi_weights, [-1]),
            n_cls=head_n_cls, n_reg=head_n_reg, loss_lambda=cfg.head_loss_lambda, sigma=cfg.head_smooth_l1_sigma)
        terms = {"rpn_cls": rpn_cls / batch, "rpn_reg": rpn_reg / batch, "head_cls": head_cls / batch,
                 "head_reg": head_reg / batch}
        terms["loss"] = tf.add_n(list(terms.values()))
        return terms

    def _sampling_seeds(self, batch_size):
        """Stateless seeds [B, 2] for anchor and RoI sampling, from ``config.seed``, the optimizer
        step and the image's place in the *global* batch: a resumed run samples exactly as an
        uninterrupted one, and replica r of N (each with B images) gives its images the places
        r * B ... r * B + B - 1, so replicas sample independently, reproducibly, and exactly as one
        device running the whole global batch would."""
        step = tf.cast(self.optimizer.iterations, tf.int64) if self.optimizer is not None else tf.constant(0, tf.int64)
        batch_size = tf.cast(batch_size, tf.int64)
        index = _replica_id() * batch_size + tf.range(batch_size, dtype=tf.int64)
        base = tf.constant(self.frcnn_config.seed, tf.int64) * 1_000_003 + step
        first = tf.fill(tf.shape(index), base)
        return tf.stack([first, 2 * index], axis=1), tf.stack([first, 2 * index + 1], axis=1)

    def _record(self, terms: dict) -> dict:
        for name, tracker in self.loss_trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.loss_trackers.items()}

    def train_step_fn(self, data) -> dict:
        """One optimisation step on this replica's part of a batch; returns the loss terms (mean
        over this replica's images, float32).

        The one training step of the project: ``fit`` calls it through :meth:`train_step` (default
        and MirroredStrategy), the multi-worker loop of :mod:`keras_frcnn.training` through
        ``strategy.run``. The loss differentiated is the replica's mean divided by the number of
        replicas; the optimizer all-reduces (sums) the gradients over the replicas, so the update
        is the one of the mean over the global batch, however many replicas share it.
        """
        data = _inputs(data)
        replicas = _num_replicas_in_sync()
        with tf.GradientTape() as tape:
            terms = self.compute_frcnn_losses(data, training=True)
            loss = terms["loss"] if replicas == 1 else terms["loss"] * (1.0 / replicas)
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        return terms

    def train_step(self, data):
        return self._record(self.train_step_fn(data))

    def test_step(self, data):
        return self._record(self.compute_frcnn_losses(_inputs(data), training=False))

    # ----------------------------------------------------------------- inference
    def call(self, inputs, training=False):
        """Detections for a batch: ``boxes`` [B, D, 4] (in original coordinates when ``scale`` is
        given), ``scores`` [B, D], ``classes`` [B, D] (0-based) and ``valid`` [B, D].

        With ``config.label_assignment == "optimal"``: the class-agnostic objects of
        :func:`~keras_frcnn.proposals.object_candidates` instead, with ``class_scores`` [B, D, C]
        and ``class_boxes`` [B, D, C, 4] for the per-image label assignment done in
        :func:`keras_frcnn.inference.image_detections`."""
        cfg = self.frcnn_config
        images = inputs["images"]
        image_shape = inputs.get("image_shape")
        if image_shape is None:
            shape = tf.shape(images)
            image_shape = tf.tile(shape[1:3][None], [shape[0], 1])
        features, rpn_logits, rpn_deltas = self._dense("backbone", self._backbone_and_rpn)(images, False)
        anchors = self._anchors(features)
        proposals, proposals_valid = self._proposals(rpn_logits, rpn_deltas, anchors, image_shape, training=False)
        class_logits, class_deltas = self._head(features, proposals, image_shape, training=False)
        scores = tf.nn.softmax(class_logits, axis=-1)[..., 1:]
        scores = scores * tf.cast(proposals_valid, scores.dtype)[..., None]

        def one_image(args):
            image_proposals, image_deltas, image_scores, shape = args
            shape = tf.cast(shape, tf.float32)
            anchors_per_class = tf.broadcast_to(image_proposals[:, None, :], tf.shape(image_deltas))
            boxes = self.head_coder.decode(image_deltas, anchors_per_class)
            boxes = clip_boxes(boxes, shape[0], shape[1])
            if assign:
                return object_candidates(boxes, image_scores, iou_threshold=cfg.nms_iou,
                                         score_threshold=cfg.score_threshold, max_detections=cfg.max_detections)
            found = batched_nms_per_class(boxes, image_scores, iou_threshold=cfg.nms_iou,
                                          score_threshold=cfg.score_threshold, max_detections=cfg.max_detections)
            return dict(zip(("boxes", "scores", "classes", "valid"), found))

        assign = cfg.label_assignment != "none"
        max_det, classes = cfg.max_detections, cfg.num_classes
        signature = {"boxes": tf.TensorSpec([max_det, 4], tf.float32), "scores": tf.TensorSpec([max_det], tf.float32),
                     "classes": tf.TensorSpec([max_det], tf.int32), "valid": tf.TensorSpec([max_det], tf.bool)}
        if assign:
            signature.update(class_scores=tf.TensorSpec([max_det, classes], tf.float32),
                             class_boxes=tf.TensorSpec([max_det, classes, 4], tf.float32))
        outputs = tf.map_fn(one_image, (proposals, class_deltas, scores, image_shape), fn_output_signature=signature)
        if "scale" in inputs:
            scale = tf.cast(inputs["scale"], tf.float32)
            outputs["boxes"] = outputs["boxes"] / scale[:, None, None]
            if assign:
                outputs["class_boxes"] = outputs["class_boxes"] / scale[:, None, None, None]
        return outputs

    def predict_step(self, data):
        return self(_inputs(data), training=False)

    def detect(self, images, batch_size: int = 1) -> list[dict]:
        """Detect on NumPy images (H x W x 3 RGB or H x W grey) or image paths.

        Returns one dict per image: ``boxes`` [K, 4] (x1, y1, x2, y2 in the image's own pixels),
        ``scores`` [K], ``classes`` [K] (ids) and ``class_names`` (list of K names). On a CPU,
        ``keras_frcnn.inference.Detector(model, constant_weights=True).detect(...)`` is faster for
        many images (it runs on a snapshot of the weights).
        """
        from keras_frcnn.inference import detect_images  # keeps model.py free of image I/O

        return detect_images(self, images, batch_size=batch_size)


def _replica_id() -> tf.Tensor:
    """This replica's index in its sync group (0 outside ``strategy.run``), int64."""
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    return tf.cast(replica, tf.int64)


def _num_replicas_in_sync() -> int:
    context = tf.distribute.get_replica_context()
    if context is not None:
        return int(context.num_replicas_in_sync)
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def _inputs(data) -> dict:
    """The input dict of a batch, whether Keras hands it over alone or as ``(x,)``/``(x, y)``."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


def build_model(config: Config, optimizer: keras.optimizers.Optimizer | str | None = None) -> FasterRCNN:
    """Build a :class:`FasterRCNN` from ``config``; compile it when ``optimizer`` is given."""
    model = FasterRCNN(config)
    if optimizer is not None:
        model.compile(optimizer=optimizer)
    return model

