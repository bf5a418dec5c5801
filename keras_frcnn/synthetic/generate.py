"""Write a synthetic data set: PNG images, ``train.csv``/``test.csv`` and ``manifest.json``.

Layout of ``out_dir``::

    images/train_00000.png ...   grey (1-channel) PNGs
    images/test_00000.png ...
    train.csv, test.csv          header ``filepath,x1,y1,x2,y2,class_name``, one box a row,
                                 paths relative to out_dir
    manifest.json                seed, options, label rules and each image's karyotype and sex
                                 (composite mode: its source karyogram and file, and the
                                 train and test sources)

Random streams: image ``i`` of split ``k`` (0 = train, 1 = test) is drawn from
``numpy.random.SeedSequence(seed, spawn_key=(k, i))`` -- i.e.
``SeedSequence(seed).spawn(2)[k].spawn(n)[i]`` -- so train and test come from independent
streams, and an image does not depend on how many others are made (``--train 10`` gives the
first ten images of ``--train 1000``). The same seed and options give byte-identical files
(on the same platform and library versions: float rounding of numpy/OpenCV may differ across
CPUs).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from typing import Callable, Sequence

import cv2
import numpy as np

from keras_frcnn.annotations.classes import chromosome_labels
from keras_frcnn.errors import OptionError, UserError
from keras_frcnn.synthetic.scene import COMPOSITE, Scene, check_options, render_scene

SPLITS: tuple[str, ...] = ("train", "test")
CSV_HEADER: tuple[str, ...] = ("filepath", "x1", "y1", "x2", "y2", "class_name")
FORMAT = "keras_frcnn.synthetic/1"
LABEL_RULES = (
    "autosome N and X: the copy whose box centre is leftmost is N-l / X-l, every other copy "
    "N-r / X-r (a trisomy gives N-l, N-r, N-r); Y is Y; with probability exception_rate per "
    "image one chromosome 5 or X is relabelled 5-? / X-? (see keras_frcnn.synthetic.karyotypes)"
)


def image_rng(seed: int, split: int, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of split ``split`` (0 train, 1 test)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split, index)))


def _number(value: float) -> str:
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image (fixed settings, so deterministic; zlib's RLE strategy is
    the fastest and, on these noisy images, also the smallest)."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, data = cv2.imencode(".png", image, params)
    if not ok:  # pragma: no cover - OpenCV failure
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def _prepare(out_dir: str) -> str:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{out_dir}: exists and is not a directory")
    images = os.path.join(out_dir, "images")
    try:
        os.makedirs(images, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out_dir}: cannot create the output directory ({err.strerror})") from None
    stale = re.compile(r"(train|test)_\d+\.png")
    for name in os.listdir(images):  # images of an earlier, larger run into the same folder
        if stale.fullmatch(name):
            os.remove(os.path.join(images, name))
    return images


def check_counts(n_train: int, n_test: int, seed: int) -> None:
    """Raise :class:`UserError` unless the image counts and the seed are non-negative integers."""
    for name, count in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise UserError(f"{name} must be a non-negative integer, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")


Render = Callable[[int, int], tuple[np.ndarray, np.ndarray, Sequence[str], dict]]


def write_dataset(
    out_dir: str | os.PathLike,
    counts: tuple[int, int],
    render: Render,
    manifest: dict,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Write the images ``render(split_index, index) -> (image, boxes, labels, entry)`` of both
    splits, their CSVs and ``manifest`` (its ``splits`` and ``images`` filled in, each image's
    entry after its ``split`` and ``file``) into ``out_dir``; return the manifest."""
    out_dir = os.fspath(out_dir)
    images_dir = _prepare(out_dir)
    digits = max(5, len(str(max(*counts, 1) - 1)))
    for split_index, (split, count) in enumerate(zip(SPLITS, counts)):
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        n_boxes = 0
        for index in range(count):
            image, boxes, labels, entry = render(split_index, index)
            filename = f"{split}_{index:0{digits}d}.png"
            relpath = f"images/{filename}"
            with open(os.path.join(images_dir, filename), "wb") as handle:
                handle.write(encode_png(image))
            for box, label in zip(boxes, labels):
                writer.writerow([relpath, *(_number(v) for v in box), label])
            n_boxes += len(labels)
            manifest["images"].append({"split": split, "file": relpath, **entry})
            if progress is not None:
                progress(split, index + 1, count)
        with open(os.path.join(out_dir, f"{split}.csv"), "w", encoding="utf-8", newline="") as handle:
            handle.write(rows.getvalue())
        manifest["splits"][split] = {"csv": f"{split}.csv", "images": int(count), "boxes": n_boxes}
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    return manifest


def generate_dataset(
    out_dir: str | os.PathLike,
    n_train: int,
    n_test: int,
    mode: str = "karyogram",
    seed: int = 0,
    width: int | None = None,
    height: int | None = None,
    abnormal_rate: float = 0.1,
    exception_rate: float = 0.02,
    style: str = "gband",
    progress: Callable[[str, int, int], None] | None = None,
    source: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
) -> dict:
    """Render ``n_train`` + ``n_test`` images into ``out_dir``; return the manifest (also saved).

    ``progress(split, done, total)`` is called after each image when given. Mode ``composite``
    composes spreads of the real chromosomes of the labelled karyograms in ``source`` (train and
    test from disjoint karyograms, ``test_fraction`` of them for test; see
    :mod:`keras_frcnn.synthetic.composite`); the rendering options do not apply to it.
    """
    if mode == COMPOSITE:
        if source is None:
            raise OptionError("{0} composite needs {1} (a folder of labelled karyograms, e.g. a YOLO folder)",
                              "mode", "source")
        from keras_frcnn.synthetic.composite import generate_composite  # imports this module

        return generate_composite(out_dir, source, n_train, n_test, seed, width, height, test_fraction, progress)
    if source is not None:
        raise OptionError("{0} is only used with {1} {composite}", "source", "mode", composite=COMPOSITE)
    check_counts(n_train, n_test, seed)
    width, height = check_options(mode, width, height, abnormal_rate, exception_rate, style)
    manifest: dict = {
        "format": FORMAT,
        "seed": int(seed),
        "options": {
            "mode": mode,
            "n_train": int(n_train),
            "n_test": int(n_test),
            "width": width,
            "height": height,
            "abnormal_rate": float(abnormal_rate),
            "exception_rate": float(exception_rate),
            "style": style,
        },
        "csv_columns": list(CSV_HEADER),
        "label_rules": LABEL_RULES,
        "classes": list(chromosome_labels()),
        "splits": {},
        "images": [],
    }

    def render(split_index: int, index: int) -> tuple[np.ndarray, np.ndarray, Sequence[str], dict]:
        scene: Scene = render_scene(
            image_rng(int(seed), split_index, index), mode, width, height, abnormal_rate, exception_rate, style
        )
        exceptions = [label for label in scene.labels if label.endswith("-?")]
        entry = {
            "karyotype": scene.karyotype.name,
            "sex": scene.karyotype.sex,
            "boxes": len(scene.labels),
            "exception": exceptions[0] if exceptions else None,
        }
        return scene.image, scene.boxes, scene.labels, entry

    return write_dataset(out_dir, (n_train, n_test), render, manifest, progress)
