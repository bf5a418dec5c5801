"""A tiny Faster R-CNN really learns: it overfits two images until its detections match."""

import keras
import pytest
import tensorflow as tf

from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation import evaluate
from keras_frcnn.model.faster_rcnn import build_model
from model_fixtures import batch, tiny_config, two_scenes


@pytest.mark.slow
def test_tiny_model_overfits_two_images():
    keras.utils.set_random_seed(1)
    scenes = two_scenes()
    data = batch(scenes)
    config = tiny_config()
    model = build_model(config, keras.optimizers.Adam(1e-3))
    history = model.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=50, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.25 * losses[0], losses

    outputs = model.predict_on_batch({"images": data["images"], "image_shape": data["image_shape"]})
    truth, found = [], []
    for i, (_, objects) in enumerate(scenes):
        path = f"image{i}.png"
        truth.append(ImageRecord(path, [o[:4] for o in objects], [config.class_names[o[4]] for o in objects]))
        valid = outputs["valid"][i]
        found.append(Detections(path, outputs["boxes"][i][valid], outputs["scores"][i][valid],
                                [config.class_names[c] for c in outputs["classes"][i][valid]]))
    metrics = evaluate(truth, found, config.class_names)
    print("overfit: loss", [round(v, 3) for v in losses], "VOC mAP", metrics["voc"]["mAP"], "COCO AP50", metrics["coco"]["AP50"])
    assert metrics["voc"]["mAP"] >= 0.9
    assert metrics["coco"]["AP50"] >= 0.9
