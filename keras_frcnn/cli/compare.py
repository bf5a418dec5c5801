"""``compare_optimizers.py``: the paper's study: every optimizer for every backbone on the same
data, split, seed, schedule and augmentation; then a table and the paper's figures.

    python compare_optimizers.py -p data/train.csv --hf --vf --rot --output runs/compare
    python compare_optimizers.py -p data/train.csv --networks tiny --optimizers adam,adamax --dry-run
    python compare_optimizers.py -p data/train.csv --budget-minutes 600 --output runs/compare

Each run is a normal run folder ``OUTPUT/<network>_<optimizer>/``; rerunning the same command
resumes unfinished runs and skips finished ones. The data, augmentation, model and schedule
flags are those of ``train_frcnn.py`` (same names, same meaning). See
:mod:`keras_frcnn.training.comparison` for the study folder and the budget.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from keras_frcnn.cli.tensorflow_start import start_tensorflow
from keras_frcnn.errors import UserError, flag_names, run_cli

PROG = "compare_optimizers.py"

def _name_list(kind: str, known: Sequence[str], aliases: dict[str, str] | None = None):
    """argparse type: a comma-separated list of names from ``known`` (canonical names, no repeats)."""

    def parse(text: str) -> list[str]:
        names: list[str] = []
        for item in filter(None, (part.strip().lower() for part in text.split(","))):
            name = (aliases or {}).get(item, item)
            if name not in known:
                raise argparse.ArgumentTypeError(f"unknown {kind} {item!r} (choose from {', '.join(known)})")
            if name not in names:
                names.append(name)
        if not names:
            raise argparse.ArgumentTypeError(f"give at least one {kind}")
        return names

    return parse


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a flag's default when it has one and its help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, [], argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    from keras_frcnn.cli import train as train_cli
    from keras_frcnn.cli.common import ArgumentParser, positive_float, positive_int
    from keras_frcnn.training.comparison import PAPER_NETWORKS, PAPER_OPTIMIZERS
    from keras_frcnn.training.optimizers import optimizer_names

    parser = ArgumentParser(prog=PROG, description="Compare optimizers for Faster R-CNN: one run per backbone and "
                            "optimizer on the same data, split and schedule; then a table and the paper's figures.",
                            formatter_class=_HelpFormatter)
    study = parser.add_argument_group("study")
    networks = sorted(set(train_cli.NETWORK_ALIASES.values()))
    study.add_argument("--optimizers", type=_name_list("optimizer", optimizer_names()),
                       default=",".join(PAPER_OPTIMIZERS), metavar="A,B,...",
                       help=f"optimizers, each with the paper's hyper-parameters ({', '.join(optimizer_names())})")
    study.add_argument("--networks", type=_name_list("network", networks, train_cli.NETWORK_ALIASES),
                       default=",".join(PAPER_NETWORKS), metavar="A,B,...", help=f"backbones ({', '.join(networks)})")
    study.add_argument("--output", default="runs/compare", metavar="FOLDER",
                       help="study folder: one run folder per backbone and optimizer, and the comparison")
    study.add_argument("--num_epochs", type=positive_int, default=300, help="epochs per run")
    study.add_argument("--budget-minutes", type=positive_float, metavar="M",
                       help="wall-clock training budget for the whole study, split evenly across the runs")
    study.add_argument("--test", metavar="FILE",
                       help="held-out test annotations to evaluate every run on (default: the validation set)")
    study.add_argument("--dry-run", action="store_true",
                       help="print the plan (runs, hyper-parameters, status) and stop")
    study.add_argument("--retry-failed", action="store_true", help="train again runs whose training failed before")
    study.add_argument("--quiet", action="store_true", help="no progress bar (one line per epoch)")
    train_cli.add_data_arguments(parser)  # the flags of train_frcnn.py, same names and meaning
    train_cli.add_augmentation_arguments(parser)
    train_cli.add_model_arguments(parser, network=False)
    train_cli.add_schedule_arguments(parser)
    train_cli.add_scaling_arguments(parser)
    return parser


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    start_tensorflow()
    if args.distribute == "multiworker":  # every worker would train, evaluate and write the study files
        raise UserError("--distribute multiworker is not supported for a study; use mirrored (one machine), "
                        "or train_frcnn.py per run")

    from keras_frcnn.cli.train import (SCALING_FIELDS, config_from_args, read_labelled, read_training_data,
                                      scaling_options, schedule_options)
    from keras_frcnn.training.comparison import Study, eval_set_info, plan_study, plural
    from keras_frcnn.training.loop import TrainOptions

    # Data: read from absolute paths, so the runs resume from any folder (train_frcnn.py --resume).
    records, class_map, val_file = read_training_data(args)
    test_records = read_labelled(args.test, args, class_map, "test") if args.test else None

    configs = {network: config_from_args(argparse.Namespace(**{**vars(args), "network": network}), class_map)
               for network in args.networks}
    options = TrainOptions(num_epochs=args.num_epochs, epoch_length=args.epoch_length, batch_size=args.batch_size,
                           expansion=args.expansion, input_weight_path=args.input_weight_path,
                           deterministic=args.deterministic, verbose=0 if args.quiet or not sys.stdout.isatty() else 1,
                           **schedule_options(args), **scaling_options(args))
    specs = plan_study(args.output, args.networks, args.optimizers, configs, options)
    study = Study(args.output, specs, budget_minutes=args.budget_minutes, retry_failed=args.retry_failed,
                  changeable_options=SCALING_FIELDS)  # other hardware may resume a run, as with train_frcnn.py
    data_info = {"path": os.path.abspath(args.path), "parser": args.parser, "clip": args.clip, "labels": args.labels,
                 "val": os.path.abspath(args.val) if args.val else None, "val_fraction": args.val_fraction}
    settings = {**data_info, "seed": args.seed, "classes": os.path.abspath(args.classes) if args.classes else None}
    study.check_settings(settings)
    study.check_runs()
    train_records, val_records = study.split(records, val_file, args.val_fraction, args.seed)
    if not train_records:
        raise UserError(f"{args.path}: no training images left after the split")
    if test_records is not None:
        eval_records, eval_set = test_records, eval_set_info("test", args.test, test_records)
    else:
        eval_records, eval_set = val_records, eval_set_info("validation", None, val_records)
    if not any(r.num_boxes for r in eval_records):
        problem = (f"nothing to evaluate on: the {eval_set['name']} set has no boxes; give --val, --test or "
                   "a --val-fraction above 0")
        if not args.dry_run:
            raise UserError(problem)
        from keras_frcnn.cli.common import warn

        warn(f"{problem} (a real run stops here)")

    budget = "" if args.budget_minutes is None else \
        f", budget {args.budget_minutes:g} min ({study.share_seconds / 60:.2f} min per run)"
    print(f"study {args.output}: {len(specs)} runs ({', '.join(args.networks)} x {', '.join(args.optimizers)}) on "
          f"{len(train_records)} training / {len(val_records)} validation images, {len(class_map)} classes, "
          f"{eval_set['name']} set for the comparison ({plural(eval_set['images'], 'image')}){budget}")
    for line in study.plan_lines():
        print(f"  {line}")
    if args.dry_run:
        print("dry run: nothing trained, nothing written")
        return 0

    study.save_settings(settings)
    study.save_split(train_records, val_records, args.seed)
    rows = study.run_all(class_map, train_records, val_records, data_info, eval_records, eval_set)
    augmentation = " ".join(flag for flag, on in (("--hf", args.hf), ("--vf", args.vf), ("--rot", args.rot)) if on)
    description = {
        "data": f"{args.path} ({plural(len(train_records), 'training image')}) + {args.val or 'seeded split'} "
                f"({plural(len(val_records), 'validation image')}), {plural(len(class_map), 'class', 'classes')}",
        "schedule": f"{args.num_epochs} epochs x {args.epoch_length} iterations, batch {args.batch_size}, "
                    f"seed {args.seed}",
        "augmentation": (augmentation or "none") + f" ({args.expansion})",
        "budget": "none" if args.budget_minutes is None else
                  f"{args.budget_minutes:g} min ({study.share_seconds / 60:.2f} min of training per run)",
    }
    report = study.write_reports(rows, eval_set, description)
    best = report["best_run"]
    names = ", ".join(os.path.basename(path) for path in report["files"].values())
    print(f"best run: {os.path.basename(best)}" if best else "no run has a model to evaluate yet")
    print(f"wrote {names} in {args.output}")
    failed = [os.path.basename(row["run"]) for row in rows if row["status"] == "failed"]
    if failed:  # an optimizer that diverges is a result of the study, but the study is not complete
        print(f"warning: {len(failed)} of {len(rows)} runs failed (non-finite loss): {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    """Entry point of ``compare_optimizers.py``: bad input is one line on stderr and exit status 2."""
    return run_cli(_main, argv, flag_names(build_parser(), lr_drops="--lr-drop-at"))


if __name__ == "__main__":
    sys.exit(main())
