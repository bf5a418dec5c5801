"""Composite spreads (``--mode composite``): cut-outs of real chromosomes, their spreads and data sets.

Uses a tiny fake YOLO folder of karyograms built in tmp_path: dark images with bright banded
elongated blobs ("chromosomes") in thin numbered frames with centromere ticks.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations.images import load_image
from keras_frcnn.errors import UserError
from keras_frcnn.synthetic.__main__ import main as synthetic_main
from keras_frcnn.synthetic.composite import (
    Chromosome,
    compose,
    compose_spread,
    generate_composite,
    load_cell,
    read_sources,
    split_sources,
)
from keras_frcnn.synthetic.cutout import crop_window, cut_out, cut_out_all
from keras_frcnn.synthetic.generate import generate_dataset
from keras_frcnn.synthetic.scene import render_scene

NAMES = ["1", "2", "X", "Y"]  # data.yaml names, sorted as text
LABELS = ["1", "1", "2", "2", "X", "Y"]
LENGTHS = {"1": 27, "2": 21, "X": 23, "Y": 11}  # half lengths of the blobs
HALF_WIDTH = 4
SIZE = (200, 120)  # (w, h): three frames of a pair each
FRAMES = [(4, 8, 64, 112), (70, 8, 130, 112), (136, 8, 196, 112)]


def _blob(shape, centre, half_length, angle=0.0):
    """A bright banded ellipse (float32 image) and its mask."""
    height = shape[0]
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, centre, (HALF_WIDTH, half_length), angle, 0, 360, 1, -1)
    ys = np.arange(height, dtype=np.float32)[:, None]
    bands = 0.75 + 0.25 * np.cos((ys - centre[1]) * 0.9)  # dark bands across the blob
    return mask * bands * 170.0, mask.astype(bool)


def _karyogram(variant: int = 0, touching: bool = False):
    """A fake framed karyogram: ``(uint8 grey image, boxes, labels, blob masks)``."""
    width, height = SIZE
    canvas = np.full((height, width), 18.0, np.float32)
    boxes, masks = [], []
    for frame, pair in zip(FRAMES, (LABELS[0:2], LABELS[2:4], LABELS[4:6])):
        x0, y0, x1, y1 = frame
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        offset = 4 if touching and pair[0] == "1" else 9  # touching: the two blobs' edges meet
        for side, label in zip((-1, 1), pair):
            half = LENGTHS[label] - 2 * variant * (label == "Y")
            value, mask = _blob((height, width), (cx + side * offset, cy), half)
            canvas = np.maximum(canvas, value + 18.0 * (value > 0))
            masks.append(mask)
            rows, cols = np.nonzero(mask)
            # labelled boxes are loose: 1 px wider and 3 px taller each side
            boxes.append([cols.min() - 1, rows.min() - 3, cols.max() + 2, rows.max() + 4])
        # the frame, its centromere ticks and its number, as in real exports
        ink = np.zeros((height, width), np.uint8)
        cv2.rectangle(ink, (x0, y0), (x1, y1), 230, 1)
        cv2.line(ink, (x0, cy), (x0 + 6, cy), 230, 1)
        cv2.line(ink, (x1 - 6, cy), (x1, cy), 230, 1)
        cv2.putText(ink, pair[0], (x0 + 2, y1 - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.3, 230, 1, cv2.LINE_AA)
        canvas = np.maximum(canvas, ink.astype(np.float32))
    return canvas, np.asarray(boxes, np.float32), list(LABELS), masks


def _write_folder(root, n_sources=4, names=NAMES, labels=None):
    """A YOLO folder: ``n_sources`` karyograms, 2 copies each (a dark noisy one, sorted first,
    and a clean one); returns the folder."""
    os.makedirs(root / "images")
    os.makedirs(root / "labels")
    (root / "data.yaml").write_text(f"nc: {len(names)}\nnames: {json.dumps(list(names))}\n")
    rng = np.random.default_rng(0)
    for source in range(n_sources):
        canvas, boxes, box_labels, _ = _karyogram(variant=source)
        box_labels = labels or box_labels
        for copy, tag in enumerate(("0000aaaa", "ffff0000")):
            image = canvas * 0.45 + rng.normal(0, 9.0, canvas.shape) if copy == 0 else canvas
            stem = f"karyotype-{source + 1}_bmp_jpg.rf.{tag}{source:08x}"
            cv2.imwrite(str(root / "images" / f"{stem}.png"), np.clip(image, 0, 255).astype(np.uint8))
            height, width = canvas.shape
            with open(root / "labels" / f"{stem}.txt", "w") as handle:
                for (x1, y1, x2, y2), label in zip(boxes, box_labels):
                    index = list(names).index(label)
                    handle.write(f"{index} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                                 f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("karyograms"))


@pytest.fixture(scope="module")
def dataset(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("composite")
    manifest = generate_composite(out, folder, 5, 3, seed=4, width=320, height=240)
    return out, manifest


def _rgb(grey):
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def test_cut_out_keeps_the_blob_and_drops_frames_ticks_and_numbers():
    canvas, boxes, _, masks = _karyogram()
    image = _rgb(canvas)
    for (patch, alpha), box, blob in zip(cut_out_all(image, boxes), boxes, masks):
        x0, y0, x1, y1 = crop_window(box, image.shape)
        kept = alpha >= 0.5
        assert patch.shape == alpha.shape == (y1 - y0, x1 - x0)
        inside = blob[y0:y1, x0:x1]
        assert (kept & inside).sum() >= 0.95 * inside.sum()  # the whole blob, dark bands included
        assert (kept & ~inside).sum() <= 0.15 * inside.sum()  # and little else
    # A box reaching over the frame's side, its tick and its number: only the blob is kept.
    frame_x0, _, _, frame_y1 = FRAMES[0]
    blob = masks[0]
    rows, cols = np.nonzero(blob)
    loose = np.array([frame_x0 - 1, rows.min() - 3, cols.max() + 2, frame_y1 + 1], np.float32)
    patch, alpha = cut_out(image, loose)
    x0, y0, x1, y1 = crop_window(loose, image.shape)
    kept = np.zeros(canvas.shape, bool)
    kept[y0:y1, x0:x1] = alpha >= 0.5
    ink = canvas >= 200  # frame lines, ticks and the printed number
    assert ink[y0:y1, x0:x1].sum() > 50
    assert not (kept & ink).any()
    assert (kept & blob).sum() >= 0.95 * blob.sum()
    assert (alpha[~kept[y0:y1, x0:x1]] < 0.5).all() and (patch >= 0).all()


def test_touching_homologues_are_parted():
    canvas, boxes, _, masks = _karyogram(touching=True)
    left, right = masks[0], masks[1]
    assert (cv2.dilate(left.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & right).any()
    assert boxes[0][2] > boxes[1][0]  # their boxes overlap
    image = _rgb(canvas)
    for (patch, alpha), box, own, other in zip(cut_out_all(image, boxes[:2]), boxes, masks, masks[::-1]):
        x0, y0, x1, y1 = crop_window(box, image.shape)
        kept = np.zeros(canvas.shape, bool)
        kept[y0:y1, x0:x1] = alpha >= 0.5
        assert (kept & own).sum() >= 0.85 * own.sum()
        assert (kept & other).sum() <= 0.05 * other.sum()


def _rectangle(label, length=30, width=6):
    alpha = np.zeros((length + 4, width + 4), np.float32)
    alpha[2:-2, 2:-2] = 1.0
    return Chromosome(label, alpha * 100.0, alpha)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spread_boxes_are_tight_around_the_pasted_chromosomes(seed):
    chromosomes = [_rectangle(label, 20 + 4 * i, 5 + i % 3) for i, label in enumerate(LABELS)]
    spread = compose(chromosomes, np.random.default_rng(seed), 320, 240)
    assert spread.image.shape == (240, 320) and spread.image.dtype == np.uint8
    assert list(spread.labels) == LABELS and spread.boxes.shape == (6, 4)
    for box, (x, y, mask) in zip(spread.boxes, spread.masks):
        rows, cols = np.nonzero(mask)
        assert box.tolist() == [x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1]
        assert 0 <= box[0] < box[2] <= 320 and 0 <= box[1] < box[3] <= 240
    # ... and the box is the rotated rectangle's: its sides fit one angle at the spread's scale
    sides = [(c.alpha.shape[1] - 4, c.alpha.shape[0] - 4) for c in chromosomes]
    areas = [mask.sum() for _, _, mask in spread.masks]
    scale = math.sqrt(sum(areas) / sum(w * h for w, h in sides))
    for (w, h), box in zip(sides, spread.boxes):
        bw, bh = box[2] - box[0], box[3] - box[1]
        fits = [
            abs(bw - scale * (w * abs(math.cos(t)) + h * abs(math.sin(t)))) <= 2.0
            and abs(bh - scale * (w * abs(math.sin(t)) + h * abs(math.cos(t)))) <= 2.0
            for t in np.radians(np.arange(0.0, 180.0, 0.5))
        ]
        assert any(fits), (w, h, bw, bh, scale)


def test_lone_chromosome_box_matches_the_visible_chromosome():
    for seed in range(3):
        image, boxes, labels = compose_spread([_rectangle("7", 34, 7)], np.random.default_rng(seed), 320, 240)
        x1, y1, x2, y2 = (int(v) for v in boxes[0])
        around = image[max(y1 - 3, 0):y2 + 3, max(x1 - 3, 0):x2 + 3].astype(np.float32)
        bright = around >= 0.5 * np.percentile(image[y1:y2, x1:x2], 95)
        rows, cols = np.nonzero(bright)
        found = [cols.min() + max(x1 - 3, 0), rows.min() + max(y1 - 3, 0),
                 cols.max() + 1 + max(x1 - 3, 0), rows.max() + 1 + max(y1 - 3, 0)]
        assert labels == ["7"]
        assert np.abs(np.asarray(found) - boxes[0]).max() <= 1.5, (found, boxes[0])


def test_dark_copy_is_passed_over_and_every_chromosome_cut(folder):
    sources = read_sources(folder)
    assert sorted(sources) == ["karyotype-1", "karyotype-2", "karyotype-3", "karyotype-4"]
    cell = load_cell("karyotype-2", sources["karyotype-2"])
    assert "ffff0000" in os.path.basename(cell.path)  # the clean copy, not the dark noisy first one
    assert [c.label for c in cell.chromosomes] == LABELS
    assert all((c.alpha >= 0.5).sum() > 20 for c in cell.chromosomes)
    assert load_image(sources["karyotype-2"][0]).shape == (120, 200, 3)


def test_spreads_have_their_source_cells_chromosomes(dataset, folder):
    out, manifest = dataset
    rows = {}
    for split in ("train", "test"):
        with open(out / f"{split}.csv", newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["filepath", "x1", "y1", "x2", "y2", "class_name"]
            for row in reader:
                rows.setdefault(row["filepath"], []).append(row)
    assert [e["split"] for e in manifest["images"]] == ["train"] * 5 + ["test"] * 3
    for entry in manifest["images"]:
        labels = [row["class_name"] for row in rows[entry["file"]]]
        assert Counter(labels) == Counter(LABELS) and entry["boxes"] == 6
        image = cv2.imread(str(out / entry["file"]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (240, 320)
        for row in rows[entry["file"]]:
            x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
            assert image[int(y1):int(y2), int(x1):int(x2)].max() > 60  # a bright chromosome in it
        assert os.path.isfile(os.path.join(folder, entry["source_file"]))
    assert manifest["options"]["mode"] == "composite"
    assert manifest["options"]["from"] == os.path.abspath(folder)
    assert manifest["classes"][:2] == ["1", "2"] and manifest["classes"][-2:] == ["X", "Y"]


def test_train_and_test_sources_are_disjoint_and_recorded(dataset):
    _, manifest = dataset
    train, test = manifest["sources"]["train"], manifest["sources"]["test"]
    assert not set(train) & set(test)
    assert sorted(train + test) == ["karyotype-1", "karyotype-2", "karyotype-3", "karyotype-4"]
    assert len(test) == 1  # round(0.2 * 4) = 1
    for entry in manifest["images"]:
        assert entry["source"] in (train if entry["split"] == "train" else test)
    # spreads cycle through their split's sources
    assert [e["source"] for e in manifest["images"][:4]] == train + train[:1]
    assert split_sources(train + test, 4) == (train, test)
    assert split_sources(train + test, 5) != (train, test) or split_sources(train + test, 6) != (train, test)


def test_same_seed_gives_identical_bytes(dataset, folder, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    assert synthetic_main(["--mode", "composite", "--from", str(folder), "--out", str(again), "--train", "5",
                           "--test", "3", "--seed", "4", "--width", "320", "--height", "240", "--quiet"]) == 0
    files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert files == sorted(os.path.relpath(os.path.join(d, f), again) for d, _, fs in os.walk(again) for f in fs)
    for name in files:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    generate_dataset(other, 1, 0, mode="composite", seed=5, width=320, height=240, source=folder)
    assert (other / "images/train_00000.png").read_bytes() != (out / "images/train_00000.png").read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "composite"], "--mode composite needs --from"),
        (["--mode", "composite", "--from", "{tmp}/missing"], "not a readable folder of labelled karyograms"),
        (["--mode", "composite", "--from", "{tmp}/empty"], "not a readable folder of labelled karyograms"),
        (["--mode", "composite", "--from", "{tmp}/animals"], "are not chromosome classes"),
        (["--mode", "composite", "--from", "{tmp}/single"], "needs at least 2"),
        (["--mode", "karyogram", "--from", "{folder}"], "--from is only used with --mode composite"),
    ],
)
def test_clear_errors(tmp_path, folder, capsys, args, message):
    (tmp_path / "empty").mkdir()
    _write_folder(tmp_path / "animals", 2, names=["cat", "dog"], labels=["cat", "dog"] * 3)
    _write_folder(tmp_path / "single", 1)
    args = [a.format(tmp=tmp_path, folder=folder) for a in args]
    assert synthetic_main(args + ["--out", str(tmp_path / "out"), "--train", "1", "--test", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_test_fraction_and_split_errors():
    with pytest.raises(UserError, match="at least 2"):
        split_sources(["karyotype-1"], 0)
    with pytest.raises(UserError, match="between 0 and 1"):
        split_sources(["a", "b"], 0, 1.0)
    train, test = split_sources([f"k{i}" for i in range(10)], 3, 0.5)
    assert len(train) == len(test) == 5 and not set(train) & set(test)


def test_render_scene_refuses_composite():
    with pytest.raises(UserError, match="composes real chromosomes"):
        render_scene(np.random.default_rng(0), "composite")
