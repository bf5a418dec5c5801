"""Backbones at stride 16: a shared feature extractor and the RoI head that runs on pooled RoIs.

``vgg16``: conv1_1 ... conv5_3 shared (512 channels); fc6/fc7 on 7x7 pooled RoIs.
``resnet50``: conv1 ... conv4 (C4, 1024 channels) shared; the conv5 stage on 14x14 pooled RoIs
(stride 2 -> 7x7), then global average pooling.
``tiny``: four small conv blocks, for tests and quick CPU experiments; it has no ImageNet weights,
but takes ``chromosomes`` (shipped with the RPN: :mod:`keras_frcnn.pretrained`) or a ``.weights.h5``
file of its feature extractor (``Backbone.features.save_weights``).

Inputs are RGB pixels in [0, 255]; each backbone applies its own preprocessing
(:func:`preprocess`), so grey images (three equal channels) work unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from dataclasses import dataclass

import keras
from keras import layers, ops

from keras_frcnn.config import Config
from keras_frcnn.errors import UserError
from keras_frcnn.pretrained import check_network, is_shipped, read_manifest


@dataclass
class Backbone:
    """The two trainable parts a backbone contributes to Faster R-CNN."""

    features: keras.Model  # image [B, H, W, 3] -> feature map [B, H/stride, W/stride, C]
    head: keras.Model  # pooled RoIs [N, p, p, C] -> RoI features [N, D]
    pooled_size: int  # spatial size the head expects from RoI pooling
    preprocessing: str  # "caffe" (BGR, mean subtracted) or "unit" (scaled to [-1, 1])
    stride: int = 0  # input pixels per feature cell, measured from ``features`` (build_backbone sets it)


def output_stride(features: keras.Model, probe: int = 256) -> int:
    """Input pixels per feature-map cell, from the output shape ``features`` gives a ``probe``-pixel
    square image."""
    height = features.compute_output_shape((1, probe, probe, 3))[1]
    if not height or probe % height:
        raise ValueError(f"{features.name}: a {probe}-pixel input gives {height} feature rows, not a whole stride")
    return probe // height


@functools.lru_cache(maxsize=8)
def _stride_of(network: str, tiny_filters: tuple[int, ...], tiny_stride: int) -> int:
    # A one-unit fc head: the stride needs the features alone (VGG16's fc6 would take 1.2 GB to build)
    config = Config(network=network, tiny_filters=tiny_filters, tiny_stride=tiny_stride, class_names=("object",),
                    head_units=1)
    return output_stride(_BUILDERS[network](config, "zeros").features)


def backbone_stride(config: Config) -> int:
    """The feature stride of ``config``'s backbone (built once per process, without weights)."""
    return _stride_of(config.network, tuple(config.tiny_filters), config.tiny_stride)


def preprocess(images, mode: str):
    """RGB [0, 255] -> the backbone's input convention."""
    if mode == "caffe":  # keras.applications VGG16/ResNet50: BGR with ImageNet means subtracted
        bgr = images[..., ::-1]
        return bgr - ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=images.dtype)
    return images / 127.5 - 1.0


class Unwritten(keras.initializers.Initializer):
    """Memory allocated and never written: the value of a weight loaded next. Its pages are not
    resident until loading writes them (drawing VGG16's fc6 kernel, 392 MiB, at random takes three
    times its size at once, and even zeros would be written once)."""

    def __call__(self, shape, dtype=None):
        import tensorflow as tf

        return tf.raw_ops.Empty(shape=list(shape), dtype=tf.as_dtype(dtype or "float32"), init=False)


def build_backbone(config: Config, initialize: bool = True) -> Backbone:
    """Build the configured backbone, load its weights and freeze what the config says.

    ``initialize=False`` leaves the fc head's kernels :class:`Unwritten` instead of drawing random
    ones, for a model whose weights are loaded next (memory TensorFlow's CPU allocator would keep
    for the rest of the process)."""
    if is_shipped(config.weights):  # loaded with the RPN by FasterRCNN
        check_network(config, config.weights, read_manifest(config.weights))
    # Weights loaded next replace the backbone's own: a model saved after training with a weights
    # file loads where that file is gone.
    unweighted = not initialize or is_shipped(config.weights)
    builder_config = config.replace(weights=None) if unweighted else config
    backbone = _BUILDERS[config.network](builder_config, "glorot_uniform" if initialize else Unwritten())
    backbone = dataclasses.replace(backbone, stride=output_stride(backbone.features))
    _freeze_early_blocks(backbone.features, config)
    if _batchnorm_frozen(config):
        for layer in backbone.features.layers + backbone.head.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False  # Keras 3: a frozen BN layer also runs in inference mode
    return backbone


def _batchnorm_frozen(config: Config) -> bool:
    if config.freeze_batchnorm is None:
        return config.weights is not None
    return bool(config.freeze_batchnorm)


def _application(constructor, config: Config, name: str) -> keras.Model:
    """A keras.applications model without its top, with weights None, "imagenet" or a file."""
    weights = config.weights
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise UserError(f"{weights}: backbone weights file not found")
    try:
        return constructor(include_top=False, weights=weights, input_shape=(None, None, 3))
    except UserError:
        raise
    except Exception as err:  # keras raises several types for download and file problems
        if weights == "imagenet":
            raise UserError(
                f"could not load ImageNet weights for {name} (no network?): {err}. "
                f"Download the '{name}' no-top weights file elsewhere and pass its path, "
                f"or use weights=None."
            ) from None
        raise UserError(f"{weights}: cannot load {name} weights ({err})") from None


def _vgg16(config: Config, head_initializer) -> Backbone:
    app = _application(keras.applications.VGG16, config, "vgg16")
    features = keras.Model(app.input, app.get_layer("block5_conv3").output, name="vgg16_features")
    head = _fc_head(512, config.pool_size, config.head_units, "vgg16_head", head_initializer)
    return Backbone(features, head, config.pool_size, "caffe")


def _resnet50(config: Config, head_initializer) -> Backbone:
    """C4 features and the conv5 head; the head's layers come from the application (``head_initializer``
    does not apply: they are initialised, or loaded, with it)."""
    app = _application(keras.applications.ResNet50, config, "resnet50")
    features = keras.Model(app.input, app.get_layer("conv4_block6_out").output, name="resnet50_c4")
    pooled_size = 2 * config.pool_size
    pooled = keras.Input((pooled_size, pooled_size, 1024))
    x = pooled
    for block in (1, 2, 3):  # reuse the application's conv5 layers (and their weights)
        x = _resnet_block(app, f"conv5_block{block}", x, projection=(block == 1))
    x = layers.GlobalAveragePooling2D(name="conv5_pool")(x)
    head = keras.Model(pooled, x, name="resnet50_conv5_head")
    return Backbone(features, head, pooled_size, "caffe")


def _resnet_block(app: keras.Model, prefix: str, x, projection: bool):
    """Re-apply a bottleneck block of ``app`` (layer names as in keras.applications)."""
    shortcut = x
    if projection:
        shortcut = app.get_layer(f"{prefix}_0_conv")(x)
        shortcut = app.get_layer(f"{prefix}_0_bn")(shortcut)
    y = x
    for part in ("1", "2"):
        y = app.get_layer(f"{prefix}_{part}_conv")(y)
        y = app.get_layer(f"{prefix}_{part}_bn")(y)
        y = app.get_layer(f"{prefix}_{part}_relu")(y)
    y = app.get_layer(f"{prefix}_3_conv")(y)
    y = app.get_layer(f"{prefix}_3_bn")(y)
    y = app.get_layer(f"{prefix}_add")([shortcut, y])
    return app.get_layer(f"{prefix}_out")(y)


def _tiny(config: Config, head_initializer) -> Backbone:
    pools = config.tiny_stride.bit_length() - 1  # 2x2 poolings: 4 for stride 16, 3 for stride 8
    if len(config.tiny_filters) < pools:
        raise UserError(f"tiny_filters needs at least {pools} blocks ({pools} 2x2 poolings make stride "
                        f"{config.tiny_stride})")
    image = keras.Input((None, None, 3))
    x = image
    for block, filters in enumerate(config.tiny_filters, start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv1")(x)
        if block <= pools:
            x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    features = keras.Model(image, x, name="tiny_features")
    _load_tiny_weights(features, config.weights)
    head = _fc_head(config.tiny_filters[-1], config.pool_size, config.head_units, "tiny_head", head_initializer)
    return Backbone(features, head, config.pool_size, "unit")


def _load_tiny_weights(features: keras.Model, weights: str | None) -> None:
    """Load a ``.weights.h5`` file saved from a tiny feature extractor of the same filters."""
    if weights is None:
        return
    if weights == "imagenet":
        raise UserError("the tiny backbone has no ImageNet weights: use weights none, chromosomes (shipped), "
                        "a .weights.h5 file of its feature extractor, or --init-from a trained run")
    if not os.path.isfile(weights):
        raise UserError(f"{weights}: backbone weights file not found")
    if not weights.endswith(".weights.h5"):
        raise UserError(f"{weights}: the tiny backbone loads a .weights.h5 file (Backbone.features.save_weights)")
    try:
        with warnings.catch_warnings():  # Keras 3.15 warns of the weightless pooling layers; missing weights raise
            warnings.filterwarnings("ignore", message="Skipping nested container")
            features.load_weights(weights)
    except Exception as err:  # keras raises ValueError, KeyError or h5py errors for a foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{weights}: not the weights of this tiny backbone ({reason})") from None


def _fc_head(channels: int, pool_size: int, units: int, name: str, initializer) -> keras.Model:
    pooled = keras.Input((pool_size, pool_size, channels))
    x = layers.Flatten(name="flatten")(pooled)
    x = layers.Dense(units, activation="relu", name="fc6", kernel_initializer=initializer)(x)
    x = layers.Dense(units, activation="relu", name="fc7", kernel_initializer=initializer)(x)
    return keras.Model(pooled, x, name=name)


def _freeze_early_blocks(features: keras.Model, config: Config) -> None:
    """Freeze the first ``config.freeze_blocks`` blocks (VGG/tiny ``blockN_``, ResNet ``convN_``)."""
    if config.freeze_blocks <= 0:
        return
    prefix = "conv" if config.network == "resnet50" else "block"
    frozen = tuple(f"{prefix}{n}_" for n in range(1, config.freeze_blocks + 1))
    for layer in features.layers:
        if layer.name.startswith(frozen):
            layer.trainable = False


_BUILDERS = {"vgg16": _vgg16, "resnet50": _resnet50, "tiny": _tiny}
