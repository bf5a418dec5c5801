"""Speed benchmark: what the full model costs beyond its unavoidable dense layers.

    python -m keras_frcnn.cli.benchmark --network vgg16 --im-size 600 --json OUT

Times (median of ``--runs`` rounds after a warm-up, each round timing every part once, so that
a drift in the machine's speed leaves the ratios alone; batch 1, seconds): the backbone alone, the *dense*
network (backbone + RPN head + RoI head run on the same number of RoIs, with no anchor, proposal,
sampling or pooling work), full detection, and the same three for a training step. The overheads
``detect_s / dense_forward_s`` and ``train_step_s / dense_train_step_s`` measure everything the
in-graph Faster R-CNN machinery adds.

Variants of the full training step and detection (choose with ``--variants``, skip with ``--no-variants``):
``*_xla_s`` with XLA on the dense parts (``FasterRCNN.set_dense_jit``: backbone + RPN head, RoI
head + outputs; the anchor, proposal, NMS, sampling and crop-and-resize ops cannot be compiled and
run as usual, see ``xla_coverage``), ``*_mixed_s`` under this machine's mixed precision policy
(``mixed_bfloat16`` on a CPU, ``mixed_float16`` on a GPU) and ``*_mixed_xla_s`` with both.
``detect_constant_weights_s`` and ``dense_forward_constant_weights_s`` (and their ratio
``detect_overhead_constant_weights``) run with the convolution kernels as graph constants, as
``test_frcnn.py`` and ``measure_map.py`` run a model (:class:`keras_frcnn.inference.detector.Detector`);
they are timed in a fresh process.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time

from keras_frcnn.cpu import describe_cpu
from keras_frcnn.errors import UserError


def _interleaved_medians(functions: dict, runs: int) -> dict:
    """Median seconds of each function over ``runs`` rounds, each round timing every function once
    (after two warm-up calls each, which trace the graphs): when the machine's speed drifts, it
    slows them all alike, so their ratios hold."""
    for function in functions.values():
        function()
        function()
    times: dict = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


VARIANTS = ("xla", "mixed", "mixed_xla", "constant_weights")
XLA_COVERAGE = ("XLA compiles the backbone + RPN head and the RoI head + output layers (forward and backward); "
                "anchor targets, proposals (top-k, NMS), RoI sampling, crop-and-resize pooling and the losses "
                "run as ordinary TensorFlow ops")


def benchmark_config(network: str, im_size: int, num_rois: int | None, post_nms_test: int | None,
                     pre_nms_test: int | None, overrides: dict | None):
    """The benchmark's config: the defaults for chromosomes, with the options and overrides given."""
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.config import Config

    changes = {"class_names": ClassMap.chromosomes().names, "network": network, "im_size": im_size,
               "max_size": max(im_size, 1000)}
    for key, value in (("num_rois", num_rois), ("post_nms_top_n_test", post_nms_test),
                       ("pre_nms_top_n_test", pre_nms_test)):
        if value is not None:
            changes[key] = value
    changes.update(overrides or {})
    return Config.from_dict(changes)


def _setup(policy: str = "float32", **setup) -> tuple:
    """The benchmark's config, model (seed 0, built under the dtype ``policy``) and one image with 46
    boxes, as tensors."""
    import keras

    from keras_frcnn.model.faster_rcnn import build_model
    from keras_frcnn.training.distribute import dtype_policy
    from keras_frcnn.training.optimizers import build_optimizer

    config = benchmark_config(**setup)
    keras.utils.set_random_seed(0)
    with dtype_policy(policy):
        model = build_model(config, build_optimizer("adamax", learning_rate=1e-6))  # as train_frcnn.py builds it
    return config, model, _example(config)


def _example(config) -> dict:
    """One square image of ``config.im_size`` pixels with 46 boxes, as tensors (seed 0)."""
    import numpy as np
    import tensorflow as tf

    im_size = config.im_size
    rng = np.random.default_rng(0)
    image = tf.constant(rng.uniform(0, 255, (1, im_size, im_size, 3)).astype(np.float32))
    image_shape = tf.constant([[im_size, im_size]], tf.int32)
    centres = rng.uniform(40, im_size - 40, (46, 2))
    sizes = rng.uniform(15, 70, (46, 2))
    boxes = np.zeros((1, config.max_boxes, 4), np.float32)
    labels = np.full((1, config.max_boxes), -1, np.int32)
    boxes[0, :46] = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    labels[0, :46] = np.arange(46)
    return {"images": image, "image_shape": image_shape, "boxes": tf.constant(boxes), "labels": tf.constant(labels)}


def _dense_forward(model, images, rois: int, training: bool):
    """Backbone + RPN head + RoI head on ``rois`` RoIs of the right shape, without the Faster R-CNN machinery."""
    import tensorflow as tf

    from keras_frcnn.model.backbones import preprocess

    features = model.features(preprocess(images, model.preprocessing), training=training)
    logits, deltas = model.rpn(features)
    heads = model.roi_heads
    pooled = tf.zeros([rois, heads.pooled_size, heads.pooled_size, features.shape[-1]]) + tf.reduce_mean(features)
    geometry = None if heads.geometry is None else tf.zeros([rois, heads.geometry.kernel.shape[0]])
    class_logits, class_deltas = heads.head_outputs(pooled, geometry, training)  # same work as pooled RoIs
    return tf.reduce_sum(logits) + tf.reduce_sum(deltas) + tf.reduce_sum(class_logits) + tf.reduce_sum(class_deltas)


def constant_weight_timings(setup: dict, runs: int) -> dict:
    """``detect_constant_weights_s`` and ``dense_forward_constant_weights_s``: detection with constant
    kernels (:class:`keras_frcnn.inference.detector.Detector`, as the inference commands run small models) and
    the dense forward pass with the same constants. Run in a fresh process (:func:`measure` does):
    TensorFlow caches oneDNN convolutions by shape alone, so one process's earlier runs with
    variable kernels would decide which kernel layout these get."""
    import tensorflow as tf

    from keras_frcnn.inference.detector import Detector

    config, model, data = _setup(**setup)
    inputs = {"images": data["images"], "image_shape": data["image_shape"]}
    detector = Detector(model, constant_weights=True)
    snapshot = detector.snapshot  # the same constants for the dense pass

    @tf.function
    def dense_forward():
        with snapshot.scope():
            return _dense_forward(model, data["images"], config.post_nms_top_n_test, False)

    return _interleaved_medians({"dense_forward_constant_weights_s": dense_forward,
                                 "detect_constant_weights_s": lambda: detector(inputs)}, runs)


PHASES = ("train", "detect")


def save_untrained_model(setup: dict, path: str, policy: str = "float32") -> str:
    """Save the benchmark's model, built under the dtype ``policy`` (with its optimizer's state after
    one step, as a checkpoint of ``train_frcnn.py`` holds it) to ``path``; returns ``path``."""
    import tensorflow as tf

    _, model, data = _setup(policy, **setup)
    tf.function(lambda: model.train_step(data))()
    model.save(path)
    return path


def phase_peak_rss(setup: dict, phase: str, steps: int = 3, model_path: str | None = None,
                   policy: str = "float32", constant_weights: bool | str = "auto") -> float:
    """Peak resident memory (MB) of this process after ``steps`` training steps (``train``: the
    model built, its own step with gradients and optimizer slots) or detections (``detect``: as
    ``test_frcnn.py`` runs a model: ``model_path`` loaded for inference, ``Detector(model, constant_weights)``,
    ``"auto"`` as the command). Meant for
    a fresh process (:func:`measure` runs each phase in its own), so the peak is that phase's alone."""
    import tensorflow as tf

    from keras_frcnn.inference.detector import Detector
    from keras_frcnn.training.runs import load_model

    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    if phase == "train":
        _, model, data = _setup(policy, **setup)
        step = tf.function(lambda: model.train_step(data))
    else:
        model = load_model(model_path)  # as test_frcnn.py loads it: in the global policy (float32), not ``policy``
        data = _example(model.frcnn_config)
        detector = Detector(model, constant_weights=constant_weights)
        inputs = {"images": data["images"], "image_shape": data["image_shape"]}

        def step():
            return detector(inputs)
    for _ in range(steps):
        step()
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_memory(setup: dict, repeats: int = 1, policy: str = "float32", constant_weights: bool | str = "auto") -> dict:
    """``train_peak_rss_mb`` (trained under the dtype ``policy``) and ``detect_peak_rss_mb`` (its saved
    model, loaded as ``test_frcnn.py`` loads it, run by a ``Detector(model, constant_weights)``) of the
    benchmark's model (``setup`` as for :func:`measure`): each phase in a fresh process (:func:`phase_peak_rss`), ``repeats`` times, the
    median; with ``repeats > 1`` also every run (``train_peak_rss_mb_runs``, ...)."""
    import statistics

    with tempfile.TemporaryDirectory() as folder:
        model_path = _in_fresh_process(save_untrained_model, setup, os.path.join(folder, "model.keras"), policy)
        runs = {phase: [_in_fresh_process(phase_peak_rss, setup, phase, 3, model_path, policy, constant_weights)
                        for _ in range(repeats)] for phase in PHASES}
    result = {f"{phase}_peak_rss_mb": statistics.median(values) for phase, values in runs.items()}
    if repeats > 1:
        result.update({f"{phase}_peak_rss_mb_runs": values for phase, values in runs.items()})
    return result


def _in_fresh_process(function, *args):
    """``function(*args)`` in a new Python process (spawned: nothing of this one's TensorFlow state),
    which starts TensorFlow as the commands do (without the start-up lines of a CPU machine)."""
    import multiprocessing

    from keras_frcnn.cli.tensorflow_start import start_tensorflow

    with multiprocessing.get_context("spawn").Pool(1, initializer=start_tensorflow) as pool:
        return pool.apply(function, args)


def measure(network: str, im_size: int, runs: int, num_rois: int | None, post_nms_test: int | None,
            pre_nms_test: int | None, variants=VARIANTS, overrides: dict | None = None) -> dict:
    """Build a model at default settings (with the given overrides) and time its parts."""
    import keras
    import tensorflow as tf

    from keras_frcnn.model.backbones import preprocess
    from keras_frcnn.model.faster_rcnn import build_model

    variants = set(variants)
    if variants - set(VARIANTS):
        raise UserError(f"unknown variant(s) {', '.join(sorted(variants - set(VARIANTS)))}; choose from {', '.join(VARIANTS)}")
    setup = {"network": network, "im_size": im_size, "num_rois": num_rois, "post_nms_test": post_nms_test,
             "pre_nms_test": pre_nms_test, "overrides": overrides}
    benchmark_config(**setup)  # a bad override fails here, before any process starts
    # First, before this process builds anything: each fresh process then has the memory to itself.
    memory = peak_memory(setup)
    constant = _in_fresh_process(constant_weight_timings, setup, runs) if "constant_weights" in variants else {}
    config, model, data = _setup(**setup)
    image = data["images"]
    image_shape = data["image_shape"]

    def train(loss_function, variables):
        """A compiled training step on ``variables`` with an optimizer of its own."""
        optimizer = keras.optimizers.Adamax(learning_rate=1e-6)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = loss_function()
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss
        return step

    backbone_forward = tf.function(lambda: model.features(preprocess(image, model.preprocessing)))
    dense_forward = tf.function(lambda: _dense_forward(model, image, config.post_nms_top_n_test, False))
    detect = tf.function(lambda: model({"images": image, "image_shape": image_shape}))
    backbone_train = train(lambda: tf.reduce_sum(model.features(preprocess(image, model.preprocessing), training=True)),
                           model.features.trainable_variables)
    dense_train = train(lambda: _dense_forward(model, image, config.num_rois, True), model.trainable_variables)
    full_train = tf.function(lambda: model.train_step(data))

    timings = _interleaved_medians({
        "backbone_forward_s": backbone_forward, "dense_forward_s": dense_forward, "detect_s": detect,
        "backbone_train_step_s": backbone_train, "dense_train_step_s": dense_train, "train_step_s": full_train,
    }, runs)
    timings.update(constant)
    extra = {}
    if "xla" in variants:
        model.set_dense_jit(True)
        timings.update(_interleaved_medians({
            "train_step_xla_s": tf.function(lambda: model.train_step(data)),
            "detect_xla_s": tf.function(lambda: model({"images": image, "image_shape": image_shape})),
        }, runs))
        extra["xla_coverage"] = XLA_COVERAGE
    if variants & {"mixed", "mixed_xla"}:
        from keras_frcnn.training.distribute import dtype_policy, mixed_precision_policy

        policy = mixed_precision_policy(True)
        keras.utils.set_random_seed(0)
        with dtype_policy(policy):
            mixed = build_model(config, keras.optimizers.Adamax(learning_rate=1e-6))
        if "mixed" in variants:
            timings.update(_interleaved_medians({
                "train_step_mixed_s": tf.function(lambda: mixed.train_step(data)),
                "detect_mixed_s": tf.function(lambda: mixed({"images": image, "image_shape": image_shape})),
            }, runs))
        if "mixed_xla" in variants:
            mixed.set_dense_jit(True)
            timings.update(_interleaved_medians(
                {"train_step_mixed_xla_s": tf.function(lambda: mixed.train_step(data))}, runs))
        extra["mixed_policy"] = policy
    timings = {k: round(v, 4) for k, v in timings.items()}
    for variant in VARIANTS:
        if f"train_step_{variant}_s" in timings:
            extra[f"train_speedup_{variant}"] = round(timings["train_step_s"] / timings[f"train_step_{variant}_s"], 3)
    return {
        "network": network, "im_size": im_size, "batch_size": 1, "runs": runs,
        "num_rois": config.num_rois, "overrides": overrides or {}, "pre_nms_top_n_test": config.pre_nms_top_n_test,
        "post_nms_top_n_test": config.post_nms_top_n_test, **timings,
        "detect_overhead": round(timings["detect_s"] / timings["dense_forward_s"], 3),
        "train_overhead": round(timings["train_step_s"] / timings["dense_train_step_s"], 3),
        **({"detect_overhead_constant_weights": round(timings["detect_constant_weights_s"]
                                                      / timings["dense_forward_constant_weights_s"], 3)}
           if constant else {}),
        **extra,
        **memory,  # each phase alone, in a fresh process
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # this whole run
        "tensorflow": tf.__version__, "keras": keras.__version__, "cpu": describe_cpu(),
    }
