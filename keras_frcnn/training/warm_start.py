"""Start a model from another trained model's weights where the two match (``train_frcnn.py --init-from``).

Weights are matched by their path (``block1_conv1/kernel``, ``rpn_conv/bias``, ``fc6/kernel``...)
and shape. The class-dependent outputs (``class_logits``, ``class_box_deltas``) are copied only
when both models have the same class list, in the same order; otherwise they keep their fresh
initialisation, as does every weight whose shape differs (another backbone width, other anchors)
or that the source model lacks. :class:`WarmStart` says which is which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_frcnn.errors import UserError

CLASS_OUTPUTS = ("class_logits", "class_box_deltas")
"""The layers whose weights depend on the class list."""


@dataclass
class WarmStart:
    """What :func:`warm_start` did: the weight paths loaded, and those left initialised with why."""

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A summary to print: counts by layer, then every weight not loaded and why."""
        layers = sorted({path.split("/")[0] for path in self.loaded})
        out = [f"initialised from {self.source}: {len(self.loaded)} weights of {len(layers)} layers loaded "
               f"({', '.join(layers)})"]
        if self.skipped:
            out.append(f"not loaded ({len(self.skipped)}), left freshly initialised:")
            out += [f"  {path}: {why}" for path, why in self.skipped.items()]
        return out


def warm_start(model, source_path: str) -> WarmStart:
    """Copy the weights of the model at ``source_path`` (a ``.keras`` file or a run folder) into
    ``model`` where they match (module docstring); raise a :class:`UserError` if none does."""
    from keras_frcnn.training.runs import load_model, resolve_model_path

    path = resolve_model_path(source_path)
    source = load_model(path)
    same_classes = tuple(source.class_names) == tuple(model.class_names)
    report = copy_matching(model, {weight.path: weight.numpy() for weight in source.weights}, path,
                           class_outputs_match=same_classes,
                           class_note=f"{len(source.class_names)} source classes, {len(model.class_names)} here, "
                                      "or another order")
    if not report.loaded:
        raise UserError(f"{path}: no weight of this model matches the source model (another backbone?)")
    return report


def copy_matching(model, arrays: dict, source: str, *, class_outputs_match: bool = False, class_note: str = "",
                  excluded: dict | None = None) -> WarmStart:
    """Copy ``arrays`` (weight path -> array) into ``model``'s weights of the same path and shape.
    The class outputs are copied only when ``class_outputs_match``; ``excluded`` maps layer names
    to the reason they are left out."""
    excluded = excluded or {}
    report = WarmStart(source)
    for weight in model.weights:
        layer = weight.path.split("/")[0]
        found = arrays.get(weight.path)
        if found is None:
            report.skipped[weight.path] = "not in the source"
        elif layer in excluded:
            report.skipped[weight.path] = excluded[layer]
        elif layer in CLASS_OUTPUTS and not class_outputs_match:
            report.skipped[weight.path] = f"class-dependent ({class_note})"
        elif tuple(found.shape) != tuple(weight.shape):
            report.skipped[weight.path] = f"shape {tuple(found.shape)} in the source, {tuple(weight.shape)} here"
        else:
            weight.assign(np.asarray(found, dtype=weight.dtype))
            report.loaded.append(weight.path)
    return report
