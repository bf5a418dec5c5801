"""keras_frcnn: Faster R-CNN in Keras 3 / TensorFlow for metaphase chromosomes."""

__version__ = "0.1.0"
