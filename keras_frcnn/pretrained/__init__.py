"""Weights shipped with the package: ``weights="chromosomes"`` (``--weights chromosomes``).

``chromosomes`` is the tiny backbone (filters 32-64-128-256) and its RPN, trained as a one-class
chromosome detector on the project's own synthetic Q-banded metaphase spreads (no ImageNet, no
download, no real data): a starting point for fine-tuning on a few dozen real spreads. The RoI
head is not shipped (its fc6 alone would be 25 MB) and starts fresh.

Each set is two files in this folder: ``<file>.npz`` (one array per weight path,
``block1_conv1/kernel`` ...) and ``<file>.json``, its manifest (data, command, seed, date,
versions, anchors and the checksum). The checksum is the SHA-256 of the arrays in path order
(path, dtype, shape, bytes): it names the weights, not the zip container, whose timestamps change
from build to build. ``python -m keras_frcnn.pretrained.build`` rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from keras_frcnn.errors import UserError

CHROMOSOMES = "chromosomes"
SHIPPED_FILES = {CHROMOSOMES: "chromosomes_tiny"}
"""Shipped weight sets: name -> file stem in this folder."""


def is_shipped(weights: str | None) -> bool:
    """True for the name of a shipped weight set (``"chromosomes"``)."""
    return weights in SHIPPED_FILES


def shipped_path(name: str, suffix: str = ".npz") -> str:
    """The file of the shipped set ``name`` (``.npz`` weights or ``.json`` manifest)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SHIPPED_FILES[name] + suffix)


def read_manifest(name: str) -> dict:
    with open(shipped_path(name, ".json"), encoding="utf-8") as handle:
        return json.load(handle)


def weights_checksum(arrays: dict) -> str:
    """SHA-256 of ``arrays`` (path -> array) in path order: each path, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for path in sorted(arrays):
        array = np.ascontiguousarray(arrays[path])
        digest.update(f"{path}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_shipped(name: str) -> tuple[dict, dict]:
    """The arrays and the manifest of the shipped set ``name``, checksum checked."""
    path = shipped_path(name)
    if not os.path.isfile(path):
        raise UserError(f"{path}: the shipped {name!r} weights are missing from this installation")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    manifest = read_manifest(name)
    checksum = weights_checksum(arrays)
    if checksum != manifest["checksum"]:
        raise UserError(f"{path}: checksum {checksum[:12]}... does not match its manifest's "
                        f"{manifest['checksum'][:12]}... (a damaged or replaced file)")
    return arrays, manifest


FROZEN_BLOCKS = 2
"""Blocks of a shipped backbone kept frozen by default when fine-tuning (as detectron2 freezes its
stem and first stage): on the BioImLab spreads the same accuracy as training them, in 1.3x faster steps."""


def fine_tuning_defaults(name: str) -> dict:
    """Config values that suit fine-tuning the shipped set ``name``: the anchors and image size its
    RPN was trained at (so its outputs load too) and :data:`FROZEN_BLOCKS` frozen blocks."""
    manifest = read_manifest(name)
    return {"anchor_scales": list(manifest["anchor_scales"]), "anchor_ratios": list(manifest["anchor_ratios"]),
            "tiny_stride": manifest["tiny_stride"], "im_size": manifest["im_size"],
            "max_size": manifest["max_size"], "freeze_blocks": FROZEN_BLOCKS}


def check_network(config, name: str, manifest: dict) -> None:
    """Refuse a model the shipped set ``name`` was not made for (another backbone or widths)."""
    if config.network != manifest["network"] or list(config.tiny_filters) != list(manifest["tiny_filters"]):
        made_for = f"{manifest['network']} backbone with filters {'-'.join(map(str, manifest['tiny_filters']))}"
        asked = config.network if config.network != "tiny" else (
            f"tiny backbone with filters {'-'.join(map(str, config.tiny_filters))}")
        raise UserError(f"weights {name!r} are made for the {made_for}, not the {asked}; use weights none, "
                        "imagenet (vgg16, resnet50) or a file")


def load_shipped(model, name: str):
    """Copy the shipped set ``name`` into ``model`` (a :class:`~keras_frcnn.model.faster_rcnn.FasterRCNN`)
    where paths and shapes match; the RPN's outputs only when the model's anchors are the ones they
    were trained for. Returns the :class:`~keras_frcnn.training.warm_start.WarmStart` report."""
    from keras_frcnn.training.warm_start import copy_matching

    arrays, manifest = read_shipped(name)
    config = model.frcnn_config
    check_network(config, name, manifest)
    same_anchors = (config.tiny_stride == manifest["tiny_stride"]
                    and len(config.anchor_scales) == len(manifest["anchor_scales"])
                    and len(config.anchor_ratios) == len(manifest["anchor_ratios"])
                    and np.allclose(config.anchor_scales, manifest["anchor_scales"])
                    and np.allclose(config.anchor_ratios, manifest["anchor_ratios"]))
    excluded = {} if same_anchors else dict.fromkeys(
        ("rpn_objectness", "rpn_box_deltas"),
        "trained for other anchors (the manifest's anchor_scales, anchor_ratios and tiny_stride)")
    return copy_matching(model, arrays, f"the shipped {name!r} weights", excluded=excluded)


def save_weights(model, path: str, layer_prefixes: tuple[str, ...]) -> dict:
    """Write ``model``'s weights whose layer starts with one of ``layer_prefixes`` to ``path``
    (``.npz``); returns the arrays."""
    arrays = {weight.path: np.asarray(weight.numpy(), dtype=np.float32) for weight in model.weights
              if weight.path.split("/")[0].startswith(layer_prefixes)}
    from keras_frcnn.atomic import atomic_path

    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            np.savez(handle, **arrays)
    return arrays
