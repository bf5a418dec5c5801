"""The demo configuration: the model and schedule ``make demo`` (:mod:`keras_frcnn.cli.demo`) trains,
sized for a 2-core CPU, which the accuracy benchmarks start from too."""

from __future__ import annotations


def demo_settings() -> list[str]:
    """``train_frcnn.py`` flags of the demo configuration (model size, anchors, schedule). The anchors
    are the synthetic karyograms' own (``keras_frcnn.model.anchor_fit.suggest_anchors`` on the demo's
    training set, 4 scales x 4 ratios: upright chromosomes are 2-5 times taller than wide)."""
    return [
        "--network", "tiny", "--optimizer", "adamax", "--im-size", "600",
        "--set", "tiny_filters=[32,64,128,256]", "--set", "head_units=512", "--set", "rpn_head_channels=256",
        "--set", "max_size=800", "--set", "anchor_scales=[18,24,30,41]", "--set", "anchor_ratios=[2.3,3.15,4,5.08]",
        "--set", "pre_nms_top_n_train=2000", "--set", "post_nms_top_n_train=256",
        "--set", "pre_nms_top_n_test=1000", "--set", "post_nms_top_n_test=150", "-n", "64",
    ]


def demo_config(class_names, **changes):
    """The demo configuration as a :class:`~keras_frcnn.config.Config` (the flags of
    :func:`demo_settings` read as ``train_frcnn.py`` reads them), with ``changes``."""
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.cli.train import build_parser, config_from_args

    args = build_parser().parse_args(demo_settings())
    return config_from_args(args, ClassMap(tuple(class_names))).replace(**changes)
