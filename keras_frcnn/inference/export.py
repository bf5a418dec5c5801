"""Export a trained model: a TensorFlow SavedModel for serving, or an inference-only ``.keras`` file.

    python export_frcnn.py --model runs/vgg_adamax --format saved_model --output exported/vgg_adamax
    python export_frcnn.py --model runs/vgg_adamax --format keras --output vgg_adamax.keras

The SavedModel needs TensorFlow only (no ``keras_frcnn``, no Keras code)::

    import tensorflow as tf
    detector = tf.saved_model.load("exported/vgg_adamax")
    out = detector.signatures["serving_default"](images=tf.io.decode_png(tf.io.read_file("cell.png"), channels=3))
    out["boxes"][0], out["scores"][0], out["class_names"][0]      # the first (here the only) image

Signatures (``images``: one image ``[H, W, C]`` or a batch ``[B, H, W, C]`` of same-size images,
C = 1 (grey), 3 (RGB) or 4 (RGBA, alpha dropped), pixel values 0-255):

``serving_default``  ``images`` uint8
``serving_float``    ``images`` float32
    -> ``boxes`` float32 [B, D, 4] (x1, y1, x2, y2 in the input's pixels), ``scores`` float32
    [B, D], ``classes`` int32 [B, D] (0-based), ``class_names`` string [B, D], ``valid`` bool
    [B, D] and ``num_detections`` int32 [B]; D = the config's ``max_detections``, rows past
    ``num_detections`` are padding (score 0, name "").
``class_names``      no input -> ``class_names`` string [C], the model's labels in id order.

Inside the graph the images are resized exactly as for training (shorter side ``im_size``,
longer side at most ``max_size``, bilinear, antialiased when shrinking), then run through the
model in float32 (whatever precision it was trained in). The folder also holds
``keras_frcnn_export.json`` (source model, config, signatures), which TensorFlow ignores.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from keras_frcnn.errors import OptionError, UserError

FORMATS = ("saved_model", "keras")
SIGNATURES = ("serving_default", "serving_float", "class_names")


def _load_float32(model_path: str):
    """The model (of a run folder or ``.keras`` file) in float32, without its optimizer."""
    from keras_frcnn.training.distribute import dtype_policy
    from keras_frcnn.model.faster_rcnn import FasterRCNN
    from keras_frcnn.training.runs import load_model

    with dtype_policy("float32"):  # a mixed-precision run is served in float32
        trained = load_model(model_path)
        model = FasterRCNN(trained.frcnn_config)
    model.set_weights(trained.get_weights())
    return model


def detection_function(model):
    """``images -> detections`` (the serving signatures' function) for a float32 model."""
    import tensorflow as tf

    from keras_frcnn.data.pipeline import resize_image

    from keras_frcnn.model.decoders import Decoder

    cfg = model.frcnn_config
    if type(model.decoder).detections is not Decoder.detections:
        raise UserError(f"the decoder {model.decoder!r} finishes on the host (label_assignment "
                        f"{cfg.label_assignment!r} runs SciPy after the model) and cannot be exported; "
                        "call model.set_label_assignment('none') first")
    names = tf.constant(list(model.class_names) + [""])
    num_classes = len(model.class_names)

    def detect(images):
        images = tf.convert_to_tensor(images)
        shape = tf.shape(images)
        images = tf.reshape(images, tf.concat([[-1], shape[-3:]], axis=0))  # [H, W, C] -> [1, H, W, C]
        images = tf.ensure_shape(images, [None, None, None, None])
        channels = tf.shape(images)[-1]
        images = tf.cond(channels == 1, lambda: tf.tile(images, [1, 1, 1, 3]), lambda: images[..., :3])
        images = tf.ensure_shape(images, [None, None, None, 3])
        resized, scale = resize_image(images, cfg.im_size, cfg.max_size)  # as for training
        batch = tf.shape(resized)[0]
        outputs = model({"images": tf.cast(resized, tf.float32),
                         "image_shape": tf.tile(tf.shape(resized)[1:3][None], [batch, 1]),
                         "scale": tf.fill([batch], scale)}, training=False)
        valid = outputs["valid"]
        classes = outputs["classes"]
        return {
            "boxes": outputs["boxes"],
            "scores": outputs["scores"],
            "classes": classes,
            "class_names": tf.gather(names, tf.where(valid, classes, num_classes)),
            "valid": valid,
            "num_detections": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
        }

    return detect


def export_saved_model(model, output: str) -> None:
    """Write ``model`` as a SavedModel with the signatures of the module docstring."""
    import keras
    import tensorflow as tf

    detect = detection_function(model)
    names = list(model.class_names)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", detect, input_signature=[tf.TensorSpec(None, tf.uint8, name="images")])
    archive.add_endpoint("serving_float", detect, input_signature=[tf.TensorSpec(None, tf.float32, name="images")])
    archive.add_endpoint("class_names", lambda: {"class_names": tf.constant(names)}, input_signature=[])
    archive.write_out(output, verbose=False)


def export(model_path: str, output: str, fmt: str = "saved_model", overwrite: bool = False) -> str:
    """Export the model of ``model_path`` (run folder or ``.keras``) to ``output``; returns the path written.

    ``saved_model``: ``output`` is the SavedModel folder. ``keras``: ``output`` is a ``.keras``
    file, or a folder that gets ``model.keras`` (weights and config, no optimizer; loading it
    needs ``keras_frcnn``). The result appears whole or not at all.
    """
    from keras_frcnn.atomic import atomic_path, write_json
    from keras_frcnn.training.runs import resolve_model_path

    if fmt not in FORMATS:
        raise OptionError("{0} must be one of {choices}, not {fmt!r}", "fmt", choices=", ".join(FORMATS), fmt=fmt)
    source = resolve_model_path(model_path)
    if fmt == "keras":
        target = output if output.endswith(".keras") else os.path.join(output, "model.keras")
        if os.path.exists(target) and not overwrite:
            raise OptionError("{target}: already exists (pass {0})", "overwrite", target=target)
        model = _load_float32(source)
        with atomic_path(target) as temp:
            model.save(temp)
        return target

    if os.path.isfile(output) or (os.path.isdir(output) and os.listdir(output) and not overwrite):
        raise OptionError("{path}: already exists and is not empty (pass {0} or another {1})", "overwrite", "output",
                          path=output)
    model = _load_float32(source)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.", suffix=".tmp", dir=parent)
    try:
        export_saved_model(model, temp)
        write_json(os.path.join(temp, "keras_frcnn_export.json"), {
            "source": os.path.abspath(source), "signatures": list(SIGNATURES),
            "class_names": list(model.class_names), "config": model.frcnn_config.to_dict(),
        })
        if os.path.isdir(output):
            shutil.rmtree(output)
        os.replace(temp, output)
    finally:
        if os.path.isdir(temp):
            shutil.rmtree(temp, ignore_errors=True)
    return output
