"""AP50 per CPU-minute of accuracy-benchmark runs, one line per configuration; prints JSON, writes a PNG.

    python benchmarks/plot_budget_curve.py --config before results/bioimlab_old_*.json \\
        --config after results/bioimlab_new_*.json --output results/bioimlab_budget_curve.png

Each JSON is one ``accuracy_bioimlab.py`` run: its budget (x) and the AP50 of its last epoch on the
validation spreads (y). A run's own validation curve (VOC AP@0.5 after each scored epoch, by
minutes of training) is drawn thin behind: what the configuration had at that minute of a longer
run, whose learning rate had not yet come down.
"""

from __future__ import annotations

import argparse
import json
import sys


def read_runs(paths: list[str]) -> list[dict]:
    """The runs of ``paths``, by budget."""
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            runs.append(json.load(handle))
    return sorted(runs, key=lambda run: run["budget_minutes"])


def _cpu(run: dict) -> str:
    cpu = run["machine"]["cpu"]
    return f"{cpu['model']} family {cpu.get('family')} model {cpu.get('model_number')}"


def summary(configs: dict[str, list[dict]]) -> dict:
    """Per configuration: budget -> AP50, COCO AP, iterations, and the CPU of the first run."""
    return {name: {"cpu": runs[0]["machine"]["cpu"]["model"] if runs else None,
                   "points": [{"budget_minutes": run["budget_minutes"], "AP50": run["validation"]["AP50"],
                               "coco_AP": run["validation"]["coco_AP"],
                               "iterations": run["training"]["iterations"]} for run in runs]}
            for name, runs in configs.items()}


def plot(configs: dict[str, list[dict]], output: str, title: str, goal: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for (name, runs), colour in zip(configs.items(), ("tab:grey", "tab:blue", "tab:green", "tab:orange")):
        budgets = [run["budget_minutes"] for run in runs]
        axes.plot(budgets, [run["validation"]["AP50"] for run in runs], "o-", color=colour, label=f"{name}: AP50 at the budget's end")
        for run in runs:
            curve = run.get("validation_curve") or []
            if curve and isinstance(curve[0], dict):
                axes.plot([p["minutes"] for p in curve], [p["voc_AP50"] for p in curve], "-", color=colour,
                          alpha=0.3, linewidth=1)
    axes.axhline(goal, color="black", linestyle=":", linewidth=1, label=f"goal {goal:g}")
    axes.set_xlabel("training budget, CPU-minutes (one core, validation included)")
    axes.set_ylabel("validation AP50")
    axes.set_ylim(0, 1)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    from keras_frcnn.atomic import atomic_path

    with atomic_path(output) as temp:
        figure.savefig(temp, dpi=110, format="png")
    plt.close(figure)


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", action="append", required=True, metavar=("NAME", "JSON"),
                        help="a configuration's name and its runs' JSON files (repeat per configuration)")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--title", default="BioImLab spreads, validation AP50 by training budget")
    parser.add_argument("--goal", type=float, default=0.91, help="AP50 drawn as the goal line (default 0.91)")
    args = parser.parse_args(argv)
    configs = {}
    for name, *paths in args.config:
        if not paths:
            parser.error(f"--config {name}: give its JSON files")
        configs[name] = read_runs(paths)
    cpus = {_cpu(run) for runs in configs.values() for run in runs}
    if len(cpus) > 1:
        print(f"warning: the runs come from {len(cpus)} CPUs ({'; '.join(sorted(cpus))}): compare one machine's",
              file=sys.stderr)
    plot(configs, args.output, args.title, args.goal)
    print(json.dumps(summary(configs), indent=2))
    return 0


if __name__ == "__main__":
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(_main())
