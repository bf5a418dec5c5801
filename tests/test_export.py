"""Export: a SavedModel served by plain TensorFlow (in a process that cannot import keras_frcnn)
gives the Keras model's detections; the .keras export; one-line errors."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.cli.export import main as export_main
from keras_frcnn.inference.export import export
from keras_frcnn.model.faster_rcnn import build_model
from keras_frcnn.training.runs import load_model
from model_fixtures import batch, scene, tiny_config, two_scenes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVE = textwrap.dedent("""
    import sys
    sys.modules["keras_frcnn"] = None  # any import of keras_frcnn now fails (it may be installed)
    import numpy as np
    import tensorflow as tf

    saved_model, images_file, out_file = sys.argv[1:]
    try:
        import keras_frcnn  # noqa: F401
        raise SystemExit("keras_frcnn must not be importable here")
    except ImportError:
        pass
    detector = tf.saved_model.load(saved_model)
    images = np.load(images_file)
    results = {}
    single = detector.signatures["serving_default"](images=tf.constant(images["rgb"]))  # uint8 [H, W, 3]
    batch = detector.signatures["serving_float"](images=tf.constant(np.stack([images["rgb"]] * 2).astype(np.float32)))
    grey = detector.signatures["serving_default"](images=tf.constant(images["rgb"][..., :1]))  # [H, W, 1]
    def array(tensor):  # strings come back as object arrays: store them as bytes
        value = tensor.numpy()
        return value.astype(bytes) if value.dtype == object else value

    for name, out in (("single", single), ("batch", batch), ("grey", grey)):
        for key, value in out.items():
            results[f"{name}_{key}"] = array(value)
    results["class_list"] = array(detector.signatures["class_names"]()["class_names"])
    assert sys.modules["keras_frcnn"] is None  # still blocked: nothing imported it
    np.savez(out_file, **results)
""")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder whose best.keras is a tiny model trained for a few steps."""
    folder = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    model = build_model(tiny_config(score_threshold=1e-3), keras.optimizers.Adam(1e-3))
    model.fit(tf.data.Dataset.from_tensors(batch(two_scenes())).repeat(), steps_per_epoch=10, epochs=1, verbose=0)
    model.save(folder / "best.keras")
    return folder


@pytest.fixture(scope="module")
def image():
    """A grey-on-grey scene at half the model's size (the signature resizes it, as detect does)."""
    return scene([(10, 12, 30, 52, 0), (40, 40, 60, 50, 1)], height=64, width=80, seed=3).astype(np.uint8)


def test_saved_model_serves_the_keras_detections_without_keras_frcnn(run_folder, image, tmp_path, capsys):
    output = tmp_path / "exported"
    assert export_main(["--model", str(run_folder), "--format", "saved_model", "--output", str(output)]) == 0
    assert "SavedModel" in capsys.readouterr().out
    assert (output / "saved_model.pb").exists()
    meta = json.loads((output / "keras_frcnn_export.json").read_text())
    assert meta["class_names"] == ["a", "b", "c"] and meta["signatures"][0] == "serving_default"

    np.savez(tmp_path / "images.npz", rgb=image)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-c", SERVE, str(output), str(tmp_path / "images.npz"),
                           str(tmp_path / "served.npz")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    served = np.load(tmp_path / "served.npz")

    model = load_model(str(run_folder))
    expected = model.detect(image)[0]
    n = len(expected["boxes"])
    assert n > 0
    assert list(served["class_list"].astype(str)) == ["a", "b", "c"]
    for name, index in (("single", 0), ("batch", 0), ("batch", 1)):
        assert served[f"{name}_num_detections"][index] == n
        np.testing.assert_allclose(served[f"{name}_boxes"][index][:n], expected["boxes"], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(served[f"{name}_scores"][index][:n], expected["scores"], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(served[f"{name}_classes"][index][:n], expected["classes"])
        assert list(served[f"{name}_class_names"][index][:n].astype(str)) == expected["class_names"]
        assert not served[f"{name}_valid"][index][n:].any()
        assert (served[f"{name}_class_names"][index][n:] == b"").all()
    assert served["batch_boxes"].shape == (2, model.frcnn_config.max_detections, 4)
    grey = model.detect(image[..., 0])[0]  # keras path: grey image -> 3 channels
    np.testing.assert_allclose(served["grey_scores"][0][:len(grey["scores"])], grey["scores"], rtol=1e-4, atol=1e-6)


def test_mixed_precision_model_exports_in_float32(image, tmp_path):
    """A model trained under mixed precision is served in float32, with the detections of the
    float32 Keras model loaded from the same file."""
    from keras_frcnn.training.distribute import dtype_policy

    keras.utils.set_random_seed(0)
    with dtype_policy("mixed_bfloat16"):
        model = build_model(tiny_config(score_threshold=1e-3), keras.optimizers.Adam(1e-3))
        model.fit(tf.data.Dataset.from_tensors(batch(two_scenes())).repeat(), steps_per_epoch=3, epochs=1, verbose=0)
        model.save(tmp_path / "mixed.keras")
    export(str(tmp_path / "mixed.keras"), str(tmp_path / "sm"))
    detector = tf.saved_model.load(str(tmp_path / "sm"))
    out = detector.signatures["serving_default"](images=tf.constant(image))
    expected = load_model(str(tmp_path / "mixed.keras")).detect(image)[0]  # float32 outside the policy
    n = int(out["num_detections"][0])
    assert n == len(expected["boxes"]) and n > 0
    np.testing.assert_allclose(out["scores"][0][:n].numpy(), expected["scores"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["boxes"][0][:n].numpy(), expected["boxes"], rtol=1e-4, atol=1e-3)


def test_keras_export_is_inference_only(run_folder, image, tmp_path):
    written = export(str(run_folder), str(tmp_path / "out"), "keras")
    assert written == str(tmp_path / "out" / "model.keras")
    exported = load_model(written)
    assert getattr(exported, "optimizer", None) is None
    a, b = exported.detect(image)[0], load_model(str(run_folder)).detect(image)[0]
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5)


@pytest.mark.parametrize("flags, message", [
    (["--model", "missing_run", "--output", "OUT"], "missing_run: model not found"),
    (["--model", "RUN", "--output", "OUT", "--format", "onnx"], "invalid choice: 'onnx'"),
    (["--model", "RUN", "--output", "FULL"], "already exists and is not empty (pass --overwrite or another --output)"),
])
def test_bad_export_flags_give_one_line(flags, message, run_folder, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    replace = {"RUN": str(run_folder), "OUT": str(tmp_path / "out"), "FULL": str(tmp_path / "full")}
    assert export_main([replace.get(f, f) for f in flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
