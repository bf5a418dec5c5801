"""``train_frcnn.py``: train Faster R-CNN on annotated images (flags of the keras-frcnn family).

    python train_frcnn.py -p annotations/train.csv --network vgg16 --optimizer adamax --output runs/vgg_adamax
    python train_frcnn.py --resume --output runs/vgg_adamax      # after an interruption
    python train_frcnn.py -p train.csv --distribute mirrored --batch-size 2 --mixed-precision --output runs/8gpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from keras_frcnn.errors import UserError, flag_names, run_cli

NETWORK_ALIASES = {"vgg": "vgg16", "vgg16": "vgg16", "resnet50": "resnet50", "resnet": "resnet50", "tiny": "tiny"}


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``-p -o --classes --labels --val --val-fraction --clip``: the training data (shared with compare_optimizers.py)."""
    from keras_frcnn.cli.common import add_classes_argument, add_labels_argument, add_parser_argument, add_path_argument

    data = parser.add_argument_group("data")
    add_path_argument(data, "training annotations (CSV, LabelMe, Pascal VOC, COCO or YOLO)", required=False)
    add_parser_argument(data)
    add_classes_argument(data)
    add_labels_argument(data, "the training and validation data")
    data.add_argument("--val", help="validation annotations (default: a seeded split of -p, saved in the run)")
    data.add_argument("--val-fraction", type=float, default=0.2, help="share of -p held out when --val is not given")
    data.add_argument("--clip", action="store_true", help="clip boxes crossing the image border instead of failing")


def add_augmentation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--hf --vf --rot --expansion --mirror-labels``: the paper's augmentation."""
    aug = parser.add_argument_group("augmentation (the paper's: rotations by 90 degrees and flips)")
    aug.add_argument("--hf", action="store_true", help="random horizontal flips")
    aug.add_argument("--vf", action="store_true", help="random vertical flips")
    aug.add_argument("--rot", action="store_true", help="random rotations by 0/90/180/270 degrees")
    aug.add_argument("--expansion", choices=("online", "paper16"), default="online",
                     help="online: one random transform per image; paper16: the paper's fixed 16x expansion")
    aug.add_argument("--mirror-labels", choices=("follow_object", "swap_lr"), default="follow_object",
                     help="under a mirror, N-l stays N-l (follow_object) or becomes N-r (swap_lr)")


def add_model_arguments(parser: argparse.ArgumentParser, *, network: bool = True) -> None:
    """``--network --weights -n --im-size --config_filename --set``: the model (see :func:`config_from_args`)."""
    model = parser.add_argument_group("model")
    if network:
        model.add_argument("--network", choices=sorted(NETWORK_ALIASES), default="vgg16")
    model.add_argument("--weights", default="none",
                       help="backbone weights: none | imagenet (vgg16, resnet50) | chromosomes (tiny: shipped, its "
                       "backbone and RPN trained on synthetic spreads) | PATH")
    model.add_argument("-n", "--num_rois", type=int, help="RoIs sampled per image in training (default: config)")
    model.add_argument("--im-size", type=int, help="shorter image side after resizing (default: config, 600)")
    model.add_argument("--config_filename", help="a config JSON to start from (model section or a run's config.json)")
    model.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field (JSON value), e.g. --set anchor_scales=[16,32,64]")


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """``--epoch_length --batch-size --lr-drop-at --lr-drop-factor --lr-schedule --warmup --validate-every --seed
    --deterministic --input_weight_path --init-from``."""
    from keras_frcnn.training.loop import LR_SCHEDULES

    train = parser.add_argument_group("training schedule")
    train.add_argument("--epoch_length", type=int, default=1000, help="iterations per epoch")
    train.add_argument("--batch-size", type=int, default=1, help="images per step (per replica when distributed)")
    train.add_argument("--lr-drop-at", type=float, nargs="+", default=[], metavar="FRACTION",
                       help="multiply the learning rate by --lr-drop-factor after these fractions of training "
                            "(of the epochs, or of --time-budget-minutes when that comes first), e.g. 0.75")
    train.add_argument("--lr-drop-factor", type=float, default=0.1)
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="step",
                       help="step: the drops of --lr-drop-at; cosine: half a cosine from the rate down to 0 at the "
                            "end of training (of the epochs or of --time-budget-minutes)")
    train.add_argument("--warmup", type=float, default=0.0, metavar="FRACTION",
                       help="ramp the learning rate up linearly over this fraction of training first, e.g. 0.05")
    train.add_argument("--validate-every", type=int, default=1, metavar="EPOCHS",
                       help="score the validation images every this many epochs (and after the last)")
    train.add_argument("--seed", type=int, default=0, help="split, shuffling, augmentation and sampling")
    train.add_argument("--deterministic", action="store_true",
                       help="bit-reproducible kernels: a resumed run then matches an uninterrupted one exactly")
    train.add_argument("--input_weight_path", help="start from a trained model (.keras or .weights.h5)")
    train.add_argument("--init-from", metavar="RUN_OR_MODEL",
                       help="start from a trained run or .keras model where the layers match (backbone, RPN, RoI "
                            "head); the class outputs are re-initialised when the class lists differ")


def schedule_options(args: argparse.Namespace) -> dict:
    """The :class:`~keras_frcnn.training.loop.TrainOptions` fields of :func:`add_schedule_arguments`'
    learning-rate and validation flags."""
    return {"lr_schedule": args.lr_schedule, "lr_drops": tuple(args.lr_drop_at), "lr_drop_factor": args.lr_drop_factor,
            "warmup": args.warmup, "validate_every": args.validate_every}


def build_parser() -> argparse.ArgumentParser:
    from keras_frcnn.cli.common import ArgumentParser
    from keras_frcnn.training.optimizers import optimizer_names

    parser = ArgumentParser(prog="train_frcnn.py", description="Train Faster R-CNN on annotated images.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_arguments(parser)
    add_augmentation_arguments(parser)
    add_model_arguments(parser)
    optimizer = parser.add_argument_group("optimizer and length")
    optimizer.add_argument("--optimizer", choices=optimizer_names(), default="adamax",
                           help="with the paper's hyper-parameters (see keras_frcnn.training.optimizers)")
    optimizer.add_argument("--lr", type=float, help="learning rate (default: the paper's for the optimizer)")
    optimizer.add_argument("--num_epochs", type=int, help="epochs (default 300; with --resume: the run's own)")
    optimizer.add_argument("--time-budget-minutes", type=float,
                           help="stop after the last epoch that fits in this wall-clock time (validation included)")
    add_schedule_arguments(parser)
    add_scaling_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--output", default="runs/frcnn", help="run folder")
    out.add_argument("--output_weight_path", help="also copy the best model here (.keras) when training ends")
    out.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    out.add_argument("--quiet", action="store_true", help="no progress bar (one line per epoch)")
    return parser


SCALING_FIELDS = ("distribute", "virtual_devices", "mixed_precision", "jit_compile", "loop")


def add_scaling_arguments(parser: argparse.ArgumentParser) -> None:
    """``--distribute --virtual-devices --mixed-precision --jit-compile --loop`` (the
    :class:`~keras_frcnn.training.loop.TrainOptions` fields of the same names; see
    :func:`scaling_options`). Default None: the run's own setting on ``--resume``, else the
    TrainOptions default."""
    from keras_frcnn.cli.args import non_negative_int
    from keras_frcnn.training.distribute import LOOPS, STRATEGIES

    group = parser.add_argument_group("scaling out (see the README, 'Scaling out')")
    group.add_argument("--distribute", choices=STRATEGIES, default=None,
                       help="auto (default): MirroredStrategy when more than one GPU is visible, else one device; "
                            "multiworker: MultiWorkerMirroredStrategy from TF_CONFIG. --batch-size is per replica")
    group.add_argument("--virtual-devices", type=non_negative_int, default=None, metavar="N",
                       help="split the CPU into N logical devices (try --distribute mirrored without GPUs)")
    group.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                       help="mixed_float16 with loss scaling on GPUs, mixed_bfloat16 on CPUs (outputs and losses float32)")
    group.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                       help="compile the backbone, RPN and RoI head with XLA (the proposal/NMS/pooling ops stay out)")
    group.add_argument("--loop", choices=LOOPS, default=None,
                       help="training loop: fit, custom (tf.distribute loop) or auto (custom only under multiworker)")


def scaling_options(args: argparse.Namespace) -> dict:
    """The scaling flags given on the command line, as TrainOptions keyword arguments."""
    return {name: getattr(args, name) for name in SCALING_FIELDS if getattr(args, name, None) is not None}


def config_from_args(args: argparse.Namespace, class_map):
    """The model :class:`~keras_frcnn.config.Config` the flags describe (``--config_filename``,
    then the flags, then every ``--set``)."""
    from keras_frcnn.cli.args import parse_set_values
    from keras_frcnn.config import Config

    values: dict = {}
    if args.config_filename:
        try:
            with open(args.config_filename, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{args.config_filename}: cannot read config ({err})") from None
        values.update(loaded.get("model", loaded))
    values.update(network=NETWORK_ALIASES[args.network], class_names=class_map.names, seed=args.seed,
                  hflip=args.hf, vflip=args.vf, rot90=args.rot, mirror_labels=args.mirror_labels,
                  weights=None if args.weights.lower() == "none" else args.weights)
    if args.num_rois is not None:
        values["num_rois"] = args.num_rois
    if args.im_size is not None:
        values["im_size"] = args.im_size
        values["max_size"] = max(values.get("max_size", 1000), args.im_size)
    values.update(parse_set_values(args.set))
    return Config.from_dict(_with_shipped_defaults(values))


def _with_shipped_defaults(values: dict) -> dict:
    """``values`` with the shipped weights' fine-tuning defaults (anchors, image size, frozen blocks)
    wherever the flags, ``--set`` and ``--config_filename`` left them unset; a note names them."""
    from keras_frcnn.pretrained import fine_tuning_defaults, is_shipped

    if not is_shipped(values.get("weights")) or values.get("network") != "tiny":
        return values  # another backbone is refused with its own error when the model is built
    defaults = {key: value for key, value in fine_tuning_defaults(values["weights"]).items() if key not in values}
    if defaults:
        print(f"note: --weights {values['weights']}: " + ", ".join(f"{key}={value}" for key, value in defaults.items())
              + " (the shipped weights' own; --set changes them)")
    return {**values, **defaults}


def training_class_map(dataset, classes_file: str | None):
    """The class map a run trains: ``--classes`` if given; else the 49 chromosome labels, or the 24
    chromosome classes, when every label is one of them (so models of different data sets share
    class ids); else the labels seen."""
    from keras_frcnn.annotations.classes import ClassMap

    if classes_file is None:
        for scheme in (ClassMap.chromosomes(), ClassMap.chromosomes24()):
            if set(dataset.class_map.names) <= set(scheme.names):
                return scheme
    return dataset.class_map


def read_labelled(path: str, args: argparse.Namespace, class_map, what: str) -> list:
    """Records of ``--val``/``--test`` annotations (absolute paths), whose labels must be training classes."""
    from keras_frcnn.cli.common import print_warnings, read_dataset

    dataset = read_dataset(os.path.abspath(path), args.parser, args.classes, clip_boxes=args.clip, labels=args.labels)
    print_warnings(dataset.warnings)
    unknown = sorted({label for r in dataset.records for label in r.labels} - set(class_map.names))
    if unknown:
        raise UserError(f"{path}: {what} labels not in the training classes: {', '.join(unknown)}")
    return dataset.records


def read_training_data(args: argparse.Namespace):
    """``(records of -p, class map, --val records or None)``, read from absolute paths so that the
    run's saved split matches whatever folder ``--resume`` is run from."""
    from keras_frcnn.cli.common import print_warnings, read_dataset

    if not args.path:
        raise UserError("-p/--path is required (the training annotations)")
    dataset = read_dataset(os.path.abspath(args.path), args.parser, args.classes, clip_boxes=args.clip,
                           labels=args.labels)
    print_warnings(dataset.warnings)
    class_map = training_class_map(dataset, args.classes)
    val_records = read_labelled(args.val, args, class_map, "validation") if args.val else None
    return dataset.records, class_map, val_records


def _main(argv=None) -> int:
    from keras_frcnn.annotations.classes import ClassMap
    from keras_frcnn.cli.common import read_dataset, start_tensorflow
    from keras_frcnn.config import Config
    from keras_frcnn.training.distribute import make_strategy
    from keras_frcnn.training.runs import RunFolder
    from keras_frcnn.training.loop import TrainOptions, apply_split, split_records, train

    args = build_parser().parse_args(argv)
    start_tensorflow()
    run = RunFolder(args.output)
    if args.resume:
        saved = run.read_config()
        data = saved["data"]
        options = TrainOptions(**saved["training"])
        if args.num_epochs is not None:
            options.num_epochs = args.num_epochs  # train a finished run for longer
        if args.time_budget_minutes is not None:
            options.time_budget_minutes = args.time_budget_minutes
        for name, value in scaling_options(args).items():  # e.g. resume on other hardware
            setattr(options, name, value)
        options.validate()
        class_map = ClassMap.from_file(run.class_map)
        config = Config.from_dict(saved["model"])
        records = []
        for path in filter(None, (data["path"], data.get("val"))):
            records += read_dataset(path, data.get("parser"), run.class_map, clip_boxes=data.get("clip", False),
                                    labels=data.get("labels", "as-is")).records
        train_records, val_records = apply_split(run, records)
    else:
        options = TrainOptions(optimizer=args.optimizer, learning_rate=args.lr, num_epochs=300 if args.num_epochs is None else args.num_epochs,
                               epoch_length=args.epoch_length, batch_size=args.batch_size, expansion=args.expansion,
                               input_weight_path=args.input_weight_path, init_from=args.init_from,
                               deterministic=args.deterministic,
                               time_budget_minutes=args.time_budget_minutes, **schedule_options(args),
                               **scaling_options(args))
        options.validate()  # flag errors before reading any data
        if args.init_from:
            from keras_frcnn.cli.common import check_model_path

            check_model_path(args.init_from)  # before reading the data
        records, class_map, val_records = read_training_data(args)
        if val_records is None:
            train_records, val_records = split_records(records, args.val_fraction, args.seed)
        else:
            train_records = records
        config = config_from_args(args, class_map)
        data = {"path": os.path.abspath(args.path), "parser": args.parser, "clip": args.clip, "labels": args.labels,
                "val": os.path.abspath(args.val) if args.val else None, "val_fraction": args.val_fraction,
                "train_images": len(train_records), "val_images": len(val_records)}
    make_strategy(options.distribute, options.virtual_devices)  # before the coverage check builds a backbone
    if not args.resume:
        _warn_about_anchor_coverage(train_records, config)
    options.verbose = 0 if args.quiet or not sys.stdout.isatty() else 1  # our epoch line says the rest
    print(f"training {config.network} with {options.optimizer} on {len(train_records)} images "
          f"({len(val_records)} for validation), {len(class_map)} classes -> {run.root}")
    result = train(run.root, config=config, options=options, class_map=class_map, train_records=train_records,
                   val_records=val_records, data_info=data, resume=args.resume)
    if args.output_weight_path and os.path.exists(run.best):
        from keras_frcnn.atomic import link_or_copy

        link_or_copy(run.best, args.output_weight_path)
    best = "" if result.best_val_map is None else f", best validation mAP {result.best_val_map:.4f} at epoch {result.best_epoch}"
    print(f"done: {len(result.history)} epochs{best}; run folder {run.root} (best.keras, last.keras, history.csv, loss_curve.png)")
    return 0


def _warn_about_anchor_coverage(records, config) -> None:
    """Warn (one line) when ground-truth boxes have no anchor with IoU >= 0.5 and better anchors exist,
    or say in a note that the image size limits them (see keras_frcnn.model.anchor_fit)."""
    from keras_frcnn.model.anchor_fit import anchor_coverage
    from keras_frcnn.cli.common import warn

    boxed = [r for r in records if r.num_boxes and r.width and r.height]
    if boxed:
        coverage = anchor_coverage(boxed, config)
        if coverage.warning():
            warn(coverage.warning())
        elif coverage.note():
            print(f"note: {coverage.note()}", file=sys.stderr)


def main(argv=None) -> int:
    return run_cli(_main, argv, flag_names(build_parser(), lr_drops="--lr-drop-at"))


if __name__ == "__main__":
    sys.exit(main())
