"""TensorFlow's start on a machine without a GPU: no CUDA probing lines, everything else kept."""

import os
import subprocess
import sys

import pytest

from keras_frcnn.cli.tensorflow_start import has_nvidia_driver, stderr_without


def test_filtered_lines_go_and_the_rest_stays(capfd):
    with stderr_without(("cudart_stub.cc", "failed call to cuInit")):
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine\n")
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"E0000 something else went wrong\n")
        print("python's own stderr line", file=sys.stderr)
    # (under capfd, Python's sys.stderr bypasses file descriptor 2, so only the lines are compared)
    assert sorted(capfd.readouterr().err.splitlines()) == ["E0000 something else went wrong", "python's own stderr line"]


def test_stderr_is_restored_after_an_exception(capfd):
    with pytest.raises(RuntimeError):
        with stderr_without(("noise",)):
            os.write(2, b"noise\nkept\n")
            raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "kept\nafter\n"


@pytest.mark.skipif(has_nvidia_driver(), reason="on a machine with an NVIDIA driver nothing is filtered")
def test_a_command_starts_tensorflow_silently_on_a_cpu_machine():
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    script = ("from keras_frcnn.cli.tensorflow_start import start_tensorflow; start_tensorflow(); "
              "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          timeout=300)
    assert done.returncode == 0 and done.stdout == "0\n"
    assert done.stderr == ""


def test_an_augmented_training_pipeline_logs_nothing(tmp_path):
    """Quarter turns run on float32: TensorFlow's oneDNN transpose logs an error line for uint8 on
    many CPUs (it then falls back), which a user reads as a fault."""
    script = f"""
import cv2, numpy as np
from keras_frcnn.cli.tensorflow_start import start_tensorflow
start_tensorflow()
from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.config import Config
from keras_frcnn.data.pipeline import make_dataset
path = {str(tmp_path / "cell.png")!r}
cv2.imwrite(path, np.full((40, 60, 3), 200, np.uint8))
record = ImageRecord(path, np.array([[5, 5, 20, 30]], np.float32), ("a",))
config = Config(class_names=("a",), im_size=64, max_size=96, rot90=True, hflip=True, vflip=True)
for batch in make_dataset([record], ClassMap(("a",)), config, training=True).take(8):
    pass
print(batch["images"].dtype.name)
"""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0 and done.stdout == "float32\n", done.stderr
    if not has_nvidia_driver():
        assert done.stderr == ""
