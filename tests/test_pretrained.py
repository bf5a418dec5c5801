"""The shipped ``chromosomes`` weights: checksum, loading, refusals, and a deterministic rebuild."""

import shutil

import numpy as np
import pytest

from keras_frcnn import pretrained
from keras_frcnn.errors import UserError
from keras_frcnn.model.faster_rcnn import build_model
from keras_frcnn.pretrained import CHROMOSOMES, read_manifest, read_shipped, weights_checksum
from keras_frcnn.pretrained.build import build, spread_config
from keras_frcnn.training.runs import load_model


def _shipped_config(**changes):
    manifest = read_manifest(CHROMOSOMES)
    settings = dict(weights=CHROMOSOMES, anchor_scales=tuple(manifest["anchor_scales"]),
                    anchor_ratios=tuple(manifest["anchor_ratios"]))
    return spread_config(seed=0).replace(**{**settings, **changes})


def test_shipped_weights_match_their_manifest():
    arrays, manifest = read_shipped(CHROMOSOMES)
    assert weights_checksum(arrays) == manifest["checksum"]
    for key in ("data", "command", "seed", "date", "versions", "training", "anchor_scales", "anchor_ratios"):
        assert manifest[key] not in (None, "", {}), key
    assert manifest["command"].startswith("python -m keras_frcnn.pretrained.build")
    assert sorted({path.split("/")[0] for path in arrays}) == manifest["layers"]
    assert manifest["bytes"] == sum(a.nbytes for a in arrays.values()) < 8_000_000  # a few MB in the package


def test_checksum_names_the_weights_not_the_container():
    arrays = {"a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "b/bias": np.zeros(2, np.float32)}
    same = {"b/bias": np.zeros(2, np.float32), "a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}
    assert weights_checksum(arrays) == weights_checksum(same)
    assert weights_checksum(arrays) != weights_checksum({**arrays, "b/bias": np.array([0, 1e-7], np.float32)})
    assert weights_checksum(arrays) != weights_checksum({**arrays, "a/kernel": arrays["a/kernel"].reshape(3, 2)})


def test_tiny_model_starts_from_the_shipped_backbone_and_rpn():
    arrays, _ = read_shipped(CHROMOSOMES)
    model = build_model(_shipped_config())
    weights = {w.path: w.numpy() for w in model.weights}
    for path, array in arrays.items():
        np.testing.assert_array_equal(weights[path], array)
    assert model.initial_weights_report[0].startswith("initialised from the shipped 'chromosomes' weights: 14 weights")
    assert not np.allclose(weights["fc6/kernel"], 0)  # the RoI head is not shipped: drawn at random


def test_other_anchors_keep_a_fresh_rpn_output():
    arrays, _ = read_shipped(CHROMOSOMES)
    model = build_model(_shipped_config(anchor_scales=(20.0, 40.0, 80.0, 160.0)))
    weights = {w.path: w.numpy() for w in model.weights}
    np.testing.assert_array_equal(weights["rpn_conv/kernel"], arrays["rpn_conv/kernel"])
    np.testing.assert_array_equal(weights["block1_conv1/kernel"], arrays["block1_conv1/kernel"])
    assert not np.array_equal(weights["rpn_objectness/kernel"], arrays["rpn_objectness/kernel"])
    assert any("rpn_objectness/kernel: trained for other anchors" in line for line in model.initial_weights_report)


@pytest.mark.parametrize("changes, message", [
    (dict(network="vgg16"), "made for the tiny backbone with filters 32-64-128-256, not the vgg16"),
    (dict(network="resnet50"), "not the resnet50"),
    (dict(tiny_filters=(16, 32, 64, 128)), "not the tiny backbone with filters 16-32-64-128"),
])
def test_shipped_weights_refuse_other_backbones(changes, message):
    with pytest.raises(UserError, match=message):
        build_model(_shipped_config(**changes))


def test_a_damaged_file_is_refused(tmp_path, monkeypatch):
    for suffix in (".npz", ".json"):
        shutil.copy(pretrained.shipped_path(CHROMOSOMES, suffix), tmp_path / f"copy{suffix}")
    arrays, _ = read_shipped(CHROMOSOMES)
    arrays["rpn_conv/bias"] = arrays["rpn_conv/bias"] + 1e-3
    np.savez(tmp_path / "copy.npz", **arrays)
    monkeypatch.setattr(pretrained, "shipped_path", lambda name, suffix=".npz": str(tmp_path / f"copy{suffix}"))
    with pytest.raises(UserError, match=r"copy.npz: checksum .* does not match its manifest"):
        build_model(_shipped_config())


def test_a_saved_model_loads_without_its_initial_weights(tmp_path):
    """A model trained from a weights file loads where that file is gone (the saved weights replace it)."""
    from model_fixtures import tiny_config

    features = build_model(tiny_config()).features
    path = tmp_path / "features.weights.h5"
    features.save_weights(path)
    model = build_model(tiny_config(weights=str(path)))
    model.save(tmp_path / "model.keras")
    path.unlink()
    loaded = load_model(str(tmp_path / "model.keras"))
    np.testing.assert_array_equal(loaded.features.weights[0].numpy(), model.features.weights[0].numpy())


def test_rebuild_is_deterministic(tmp_path):
    """Two builds of the same command give the same weights (the manifest's checksum), which load."""
    manifests = [build(str(tmp_path / f"work{i}"), str(tmp_path / f"out{i}"), images=2, epochs=1, epoch_length=2,
                       im_size=200, print_fn=lambda line: None) for i in (0, 1)]
    assert manifests[0]["checksum"] == manifests[1]["checksum"]
    assert manifests[0]["training"]["iterations"] == 2 and manifests[0]["data"]["images"] == 2
    with np.load(tmp_path / "out0" / "chromosomes_tiny.npz") as stored:
        assert weights_checksum({k: stored[k] for k in stored.files}) == manifests[0]["checksum"]


def _train_config(*flags):
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.cli.train import build_parser, config_from_args

    args = build_parser().parse_args(["-p", "train.csv", "--network", "tiny", *flags])
    return config_from_args(args, ClassMap(("chr",)))


def test_training_from_the_shipped_weights_takes_their_anchors_size_and_frozen_blocks(capsys):
    manifest = read_manifest(CHROMOSOMES)
    config = _train_config("--weights", "chromosomes")
    assert list(config.anchor_scales) == manifest["anchor_scales"] and list(config.anchor_ratios) == manifest["anchor_ratios"]
    assert (config.im_size, config.max_size, config.freeze_blocks) == (manifest["im_size"], manifest["max_size"],
                                                                       pretrained.FROZEN_BLOCKS)
    assert "note: --weights chromosomes: anchor_scales=" in capsys.readouterr().out
    # what the user sets stays
    config = _train_config("--weights", "chromosomes", "--im-size", "800", "--set", "freeze_blocks=0",
                           "--set", "anchor_scales=[20,40]")
    assert (config.im_size, config.freeze_blocks, tuple(config.anchor_scales)) == (800, 0, (20, 40))
    assert list(config.anchor_ratios) == manifest["anchor_ratios"]
    # without the shipped weights nothing changes
    plain = _train_config()
    assert plain.freeze_blocks == 0 and plain.im_size == 600 and list(plain.anchor_scales) != manifest["anchor_scales"]
