"""Faster R-CNN as one ``keras.Model``: backbone -> RPN -> RoI heads, every step inside the graph.

The stages are layers of their own (:class:`keras_frcnn.model.rpn.RegionProposalNetwork`,
:class:`keras_frcnn.model.roi_heads.RoIHeads` with its :mod:`~keras_frcnn.model.decoders` post-processing);
this model runs the backbone once, composes them and sums their loss terms (Eq. 1). A training
step is all TensorFlow ops (no NumPy, no host round trip). The inputs are the dicts made by
:func:`keras_frcnn.data.pipeline.make_dataset`: ``images`` [B, H, W, 3] RGB 0-255 (zero padded),
``image_shape`` [B, 2] (valid height, width), ``boxes`` [B, M, 4] and ``labels`` [B, M] (-1 pads),
and for inference optionally ``scale`` [B] (resized / original size) so boxes come back in
original image coordinates.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_frcnn.model.backbones import build_backbone, preprocess
from keras_frcnn.config import Config
from keras_frcnn.model.decoders import Decoder, decoder_for
from keras_frcnn.model.roi_heads import RoIHeads
from keras_frcnn.model.rpn import RegionProposalNetwork
from keras_frcnn.model.staged_gradients import staged_gradients
from keras_frcnn.model.terms import LOSS_TERMS, SKIPPED_STEPS
from keras_frcnn.pretrained import is_shipped, load_shipped

MODEL_FORMAT = 2
"""The saved layout of :class:`FasterRCNN` (``get_config()["format"]``): 2 since keras_frcnn 0.2, whose
stages are layers of their own; 1 (no key) before. :func:`keras_frcnn.training.runs.load_model` refuses
other formats with a message naming them."""


@keras.saving.register_keras_serializable(package="keras_frcnn")
class FasterRCNN(keras.Model):
    """Faster R-CNN (VGG16, ResNet50 or a tiny backbone) for ``config.class_names``.

    ``compile(optimizer=...)`` takes any Keras optimizer and no loss (the model computes Eq. 1
    itself); ``fit`` trains; ``predict`` and :meth:`detect` return the detections of the RoI
    heads' decoder (per-class NMS unless ``config.label_assignment`` or :meth:`set_decoder` says
    otherwise). Class ids are 0-based into ``config.class_names``. ``model.rpn`` and
    ``model.roi_heads`` are the two stages; ``model.features`` the shared backbone.
    """

    def __init__(self, config: Config | dict, initialize: bool = True, **kwargs):
        """``initialize=False``: for weights loaded next (:func:`keras_frcnn.training.runs.load_model`),
        the fc head is not drawn at random first (see :func:`~keras_frcnn.model.backbones.build_backbone`)."""
        kwargs.setdefault("name", "faster_rcnn")
        super().__init__(**kwargs)
        config = Config.from_dict(config) if isinstance(config, dict) else config
        if config.num_classes < 1:
            raise ValueError("config.class_names is empty: the model needs at least one class")
        self.frcnn_config = config
        backbone = build_backbone(config, initialize=initialize)
        self.features = backbone.features
        self.preprocessing = backbone.preprocessing
        self.stride = backbone.stride  # input pixels per feature cell, measured from the backbone
        self.rpn = RegionProposalNetwork(config, stride=self.stride, feature_channels=self.features.output.shape[-1])
        self.roi_heads = RoIHeads(config, head=backbone.head, pooled_size=backbone.pooled_size, stride=self.stride)
        self.initial_weights_report: list[str] = []  # what a shipped weight set (keras_frcnn.pretrained) loaded
        if initialize and is_shipped(config.weights):
            self.initial_weights_report = load_shipped(self, config.weights).lines()
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_TERMS}
        self.loss_trackers[SKIPPED_STEPS] = keras.metrics.Sum(name=SKIPPED_STEPS)
        # NMS, crop_and_resize and the sampling ops are not all XLA-compatible:
        # compile(jit_compile="auto") must not pick XLA for the whole step. The dense parts can be
        # compiled on their own: see set_dense_jit.
        self.supports_jit = False
        self.dense_jit = False
        self.built = True

    # ----------------------------------------------------------------- serialisation
    def get_config(self) -> dict:
        return {"config": self.frcnn_config.to_dict(), "name": self.name, "format": MODEL_FORMAT}

    @classmethod
    def from_config(cls, config: dict) -> "FasterRCNN":
        config = dict(config)
        config.pop("format", None)  # checked by keras_frcnn.training.runs.load_model before loading
        return cls(**config)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.frcnn_config.class_names

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    @property
    def decoder(self) -> Decoder:
        """The RoI heads' post-processing (:mod:`keras_frcnn.model.decoders`)."""
        return self.roi_heads.decoder

    def set_decoder(self, decoder: Decoder) -> None:
        """Post-process with ``decoder`` from now on (an inference setting, not saved); retraces
        ``predict``."""
        self.roi_heads.decoder = decoder
        self.predict_function = None

    def set_label_assignment(self, mode: str) -> None:
        """Inference labels: ``"none"`` (per-class NMS), ``"optimal"`` (each label at most once per
        image) or ``"karyotype"`` (each at most as often as a cell holds it; see
        :mod:`keras_frcnn.model.label_assignment`): the decoder of :func:`~keras_frcnn.model.decoders.decoder_for`."""
        self.frcnn_config = self.frcnn_config.replace(label_assignment=mode)
        self.set_decoder(decoder_for(self.frcnn_config))

    def set_test_proposals(self, post_nms: int) -> None:
        """Keep ``post_nms`` RPN proposals per image at inference, chosen by NMS among the best
        ``max(pre_nms_top_n_test, 6 * post_nms)`` (an inference setting, not saved); retraces ``predict``.

        More proposals find more of many small objects (a metaphase spread holds 46) at the cost
        of a slower RoI head; fewer suit images with few objects.
        """
        if post_nms < 1:
            raise ValueError(f"test proposals must be at least 1, not {post_nms}")
        counts = {"pre_nms_top_n_test": max(int(self.frcnn_config.pre_nms_top_n_test), 6 * int(post_nms)),
                  "post_nms_top_n_test": int(post_nms)}
        self.frcnn_config = self.frcnn_config.replace(**counts)
        self.rpn.frcnn_config = self.rpn.frcnn_config.replace(**counts)  # the stage that reads them
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
    def _backbone_and_rpn(self, images, training):
        """Feature map, RPN objectness logits [B, A] and box deltas [B, A, 4] (the dense first half)."""
        features = self.features(preprocess(tf.cast(images, tf.float32), self.preprocessing), training=training)
        logits, deltas = self.rpn(features)
        return features, logits, deltas

    def _head(self, features, rois, image_shape, training):
        return self.roi_heads(features, rois, image_shape, training=training,
                              dense=lambda function: self._dense("head", function))

    # ----------------------------------------------------------------- training
    def compute_frcnn_losses(self, data, training: bool) -> dict:
        """The four loss terms of Eq. 1 (RPN and head) and their sum, averaged over the batch."""
        return self._losses_and_features(data, training)[0]

    def _losses_and_features(self, data, training: bool) -> tuple[dict, tf.Tensor]:
        """:meth:`compute_frcnn_losses` and the backbone's feature map they were computed from."""
        images, image_shape = data["images"], data["image_shape"]
        gt_boxes, gt_labels = tf.cast(data["boxes"], tf.float32), tf.cast(data["labels"], tf.int32)
        gt_valid = gt_labels >= 0

        features, rpn_logits, rpn_deltas = self._dense("backbone", self._backbone_and_rpn)(images, training)
        anchors = self.rpn.anchors(features)
        rpn_seeds, roi_seeds = self._sampling_seeds(tf.shape(images)[0])
        rpn_labels, rpn_target_deltas = self.rpn.targets(anchors, gt_boxes, gt_valid, image_shape, rpn_seeds)
        proposals, proposals_valid = self.rpn.proposals(rpn_logits, rpn_deltas, anchors, image_shape, training=True)
        rois, roi_labels, roi_target_deltas, roi_weights = self.roi_heads.sample(
            proposals, proposals_valid, gt_boxes, gt_labels, gt_valid, roi_seeds)
        class_logits, class_deltas = self._head(features, tf.stop_gradient(rois), image_shape, training)

        batch = tf.cast(tf.shape(images)[0], tf.float32)
        rpn_cls, rpn_reg = self.rpn.loss_terms(rpn_logits, rpn_deltas, rpn_labels, rpn_target_deltas, features)
        head_cls, head_reg = self.roi_heads.loss_terms(class_logits, class_deltas, roi_labels, roi_target_deltas,
                                                       roi_weights)
        terms = {"rpn_cls": rpn_cls / batch, "rpn_reg": rpn_reg / batch, "head_cls": head_cls / batch,
                 "head_reg": head_reg / batch}
        terms["loss"] = tf.add_n(list(terms.values()))
        return terms, features

    def _sampling_seeds(self, batch_size):
        """Stateless seeds [B, 2] for anchor and RoI sampling, from ``config.seed``, the optimizer
        step and the image's place in the *global* batch: a resumed run samples exactly as an
        uninterrupted one, and replica r of N (each with B images) gives its images the places
        r * B ... r * B + B - 1, so replicas sample independently, reproducibly, and exactly as one
        device running the whole global batch would."""
        optimizer = getattr(self, "optimizer", None)  # none before compile (a lean-loaded model)
        step = tf.cast(optimizer.iterations, tf.int64) if optimizer is not None else tf.constant(0, tf.int64)
        batch_size = tf.cast(batch_size, tf.int64)
        index = _replica_id() * batch_size + tf.range(batch_size, dtype=tf.int64)
        base = tf.constant(self.frcnn_config.seed, tf.int64) * 1_000_003 + step
        first = tf.fill(tf.shape(index), base)
        return tf.stack([first, 2 * index], axis=1), tf.stack([first, 2 * index + 1], axis=1)

    def _record(self, terms: dict) -> dict:
        for name, tracker in self.loss_trackers.items():
            if name in terms:
                tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.loss_trackers.items() if name in terms}

    def train_step_fn(self, data) -> dict:
        """One optimisation step on this replica's part of a batch; returns the loss terms (mean
        over this replica's images, float32).

        The one training step of the project: ``fit`` calls it through :meth:`train_step` (default
        and MirroredStrategy), the multi-worker loop of :mod:`keras_frcnn.training.loop` through
        ``strategy.run``. The loss differentiated is the replica's mean divided by the number of
        replicas; the optimizer all-reduces (sums) the gradients over the replicas, so the update
        is the one of the mean over the global batch, however many replicas share it.

        Under ``mixed_bfloat16`` a variable whose gradient is not finite gets no update from it
        (:func:`zero_non_finite`; the step's ``skipped_steps`` term is 1): oneDNN's AMX kernels gave
        a NaN gradient now and then while the loss, which the training loop checks, stayed finite,
        and one NaN stays in the optimizer's state for good. In float32 (where it was never seen)
        the check is left out: it can keep gradients alive longer (see :func:`zero_non_finite`). Under
        ``mixed_float16`` the loss-scale optimizer skips such steps itself (and lowers its scale).

        The head's gradients come before the backbone's (:func:`~keras_frcnn.model.staged_gradients.staged_gradients`):
        VGG16 at 600 px peaks at 3,740-3,830 MiB where one ``tape.gradient`` took 4,100-4,610 MiB.
        """
        data = _inputs(data)
        replicas = _num_replicas_in_sync()
        with tf.GradientTape(persistent=True) as tape:  # differentiated in two stages
            terms, features = self._losses_and_features(data, training=True)
            loss = terms["loss"] if replicas == 1 else terms["loss"] * (1.0 / replicas)
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        variables = self.trainable_variables
        if self.dense_jit:  # the RPN is inside the backbone's compiled function: its gradient joins there
            gradients = tape.gradient(scaled, variables)
        else:
            gradients = staged_gradients(tape, scaled, variables, features, self.features.trainable_variables)
        del tape
        skipped = tf.constant(0.0)
        if self.compute_dtype == "bfloat16":
            gradients, finite = zero_non_finite(gradients)
            skipped = 1.0 - tf.cast(finite, tf.float32)
        self.optimizer.apply(gradients, variables)
        return {**terms, SKIPPED_STEPS: skipped}

    def train_step(self, data):
        return self._record(self.train_step_fn(data))

    def test_step(self, data):
        return self._record(self.compute_frcnn_losses(_inputs(data), training=False))

    # ----------------------------------------------------------------- inference
    def call(self, inputs, training=False):
        """Detections for a batch: the decoder's outputs, ``boxes`` [B, D, 4] (in original
        coordinates when ``scale`` is given), ``scores`` [B, D], ``classes`` [B, D] (0-based) and
        ``valid`` [B, D], and whatever else the decoder returns (the label assignment's
        ``class_scores`` [B, D, C] and ``class_boxes`` [B, D, C, 4])."""
        images = inputs["images"]
        image_shape = inputs.get("image_shape")
        if image_shape is None:
            shape = tf.shape(images)
            image_shape = tf.tile(shape[1:3][None], [shape[0], 1])
        features, rpn_logits, rpn_deltas = self._dense("backbone", self._backbone_and_rpn)(images, False)
        anchors = self.rpn.anchors(features)
        proposals, proposals_valid = self.rpn.proposals(rpn_logits, rpn_deltas, anchors, image_shape, training=False)
        class_logits, class_deltas = self._head(features, proposals, image_shape, training=False)
        return self.roi_heads.detect(proposals, proposals_valid, class_logits, class_deltas, image_shape,
                                     inputs.get("scale"))

    def predict_step(self, data):
        return self(_inputs(data), training=False)

    def detect(self, images, batch_size: int = 1) -> list[dict]:
        """Detect on NumPy images (H x W x 3 RGB or H x W grey) or image paths.

        Returns one dict per image: ``boxes`` [K, 4] (x1, y1, x2, y2 in the image's own pixels),
        ``scores`` [K], ``classes`` [K] (ids) and ``class_names`` (list of K names). On a CPU,
        ``keras_frcnn.inference.detector.Detector(model, constant_weights="auto").detect(...)`` is faster for
        many images of a small model (it runs on a snapshot of the weights).
        """
        from keras_frcnn.inference.detector import detect_images  # keeps model.py free of image I/O

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


def zero_non_finite(gradients) -> tuple[list, tf.Tensor]:
    """Each gradient unchanged when it is finite, else zeros (its variable's step then adds no
    gradient; its momentum, if any, carries on, and no NaN or infinity reaches the optimizer's
    state); and whether all were finite, a scalar bool.

    A gradient counts as finite when its sum is (NaN or infinite when any element is, or when
    finite elements overflow it: a step to skip too). Each gradient is judged alone, so its
    variable's update waits for it only, as without the check: one verdict for all would keep
    every gradient alive until the last is computed (0.8 GB more at the peak for VGG16). A
    ``tf.cond`` passes a finite gradient through without a copy."""
    checks, guarded = [], []
    for g in gradients:
        if g is None:
            guarded.append(None)
            continue
        finite = tf.math.is_finite(tf.reduce_sum(g))
        checks.append(finite)
        guarded.append(tf.cond(finite, lambda g=g: g, lambda g=g: tf.zeros_like(g)))
    return guarded, (tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True))


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

