"""Tests of the synthetic chromosome data generator (keras_frcnn.synthetic)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations.classes import chromosome_labels
from keras_frcnn.synthetic import (
    Appearance,
    generate_dataset,
    load_bands,
    parse_karyotype,
    render_chromosome,
    render_image,
    render_scene,
)
from keras_frcnn.synthetic import framed
from keras_frcnn.synthetic.__main__ import main as synthetic_main
from keras_frcnn.synthetic.cytobands import CHROMOSOMES
from keras_frcnn.synthetic.defects import Defects, apply_defects
from keras_frcnn.synthetic.imaging import Imaging, develop
from keras_frcnn.synthetic.karyotypes import assign_labels, sample_karyotype
from keras_frcnn.synthetic.layout import paste

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = set(chromosome_labels())


def _files(root: str) -> dict[str, bytes]:
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = handle.read()
    return out


@pytest.fixture(scope="module")
def karyogram_set(tmp_path_factory) -> tuple[str, dict]:
    out = str(tmp_path_factory.mktemp("karyogram"))
    manifest = generate_dataset(out, 3, 2, mode="karyogram", seed=7, abnormal_rate=0.5)
    return out, manifest


# --- determinism and independent streams -------------------------------------------------


@pytest.mark.parametrize("mode", ["karyogram", "metaphase"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, mode):
    def make(name: str, seed: int) -> dict[str, bytes]:
        generate_dataset(tmp_path / name, 2, 1, mode=mode, seed=seed)
        return _files(str(tmp_path / name))

    a, b, c = make("a", 11), make("b", 11), make("c", 12)
    assert sorted(a) == sorted(b) == sorted(c)
    assert {"train.csv", "test.csv", "manifest.json", "images/train_00000.png"} <= set(a)
    assert a == b  # byte-identical PNGs, CSVs and manifest
    assert a["images/train_00000.png"] != c["images/train_00000.png"]
    assert a["train.csv"] != c["train.csv"]


def test_train_and_test_streams_differ_and_do_not_depend_on_counts(tmp_path, karyogram_set):
    out, _ = karyogram_set
    files = _files(out)
    assert files["images/train_00000.png"] != files["images/test_00000.png"]
    assert files["images/train_00000.png"] != files["images/train_00001.png"]
    generate_dataset(tmp_path, 1, 0, mode="karyogram", seed=7, abnormal_rate=0.5)
    assert _files(str(tmp_path))["images/train_00000.png"] == files["images/train_00000.png"]


# --- karyotypes and labels ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["karyogram", "metaphase"])
@pytest.mark.parametrize("karyotype", ["46,XX", "46,XY"])
def test_normal_karyotype_has_46_distinct_known_labels(mode, karyotype):
    image, boxes, labels, name = render_image(
        np.random.default_rng(3), mode, karyotype=karyotype, exception_rate=0.0
    )
    assert name == karyotype
    assert image.dtype == np.uint8 and image.ndim == 2
    assert image.shape == ((480, 640) if mode == "karyogram" else (576, 768))
    assert boxes.dtype == np.float32 and boxes.shape == (46, 4)
    assert len(labels) == 46
    assert set(labels) <= LABELS
    assert max(Counter(labels).values()) == 1
    height, width = image.shape
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 2] <= width)
    assert np.all(boxes[:, 1] >= 0) and np.all(boxes[:, 3] <= height)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])


def test_male_has_y_and_no_x_r_female_has_both_x():
    _, _, male, _ = render_image(np.random.default_rng(1), "karyogram", karyotype="46,XY", exception_rate=0)
    assert "Y" in male and "X-l" in male and "X-r" not in male
    _, _, female, _ = render_image(np.random.default_rng(1), "karyogram", karyotype="46,XX", exception_rate=0)
    assert "Y" not in female and {"X-l", "X-r"} <= set(female)


@pytest.mark.parametrize("mode", ["karyogram", "metaphase"])
def test_trisomy_21_has_47_boxes_and_three_21s(mode):
    _, boxes, labels, name = render_image(
        np.random.default_rng(2), mode, karyotype="47,XY,+21", exception_rate=0
    )
    assert name == "47,XY,+21" and len(boxes) == 47 and len(labels) == 47
    assert sorted(label for label in labels if label.startswith("21-")) == ["21-l", "21-r", "21-r"]
    assert set(labels) <= LABELS


def test_other_aneuploidies_parse_and_count():
    assert len(parse_karyotype("45,X").chromosomes) == 45
    assert parse_karyotype("45,X").sex == "female"
    xxy = parse_karyotype("47,XXY")
    assert xxy.sex == "male" and xxy.count("X") == 2 and xxy.count("Y") == 1
    assert parse_karyotype("47,XX,+18").count("18") == 3
    with pytest.raises(Exception):
        parse_karyotype("46,XY,+21")  # count does not match


def test_left_copy_is_leftmost_and_exceptions_relabel_one_5_or_x():
    rng = np.random.default_rng(0)
    names = ["5", "5", "X", "Y", "21", "21", "21"]
    xs = [30.0, 10.0, 5.0, 1.0, 7.0, 3.0, 9.0]
    assert assign_labels(names, xs, rng, 0.0) == ["5-r", "5-l", "X-l", "Y", "21-r", "21-l", "21-r"]
    for seed in range(20):
        labels = assign_labels(names, xs, np.random.default_rng(seed), 1.0)
        odd = [label for label in labels if label.endswith("-?")]
        assert len(odd) == 1 and odd[0] in ("5-?", "X-?")


def test_karyogram_left_label_is_left_member():
    _, boxes, labels, _ = render_image(np.random.default_rng(4), "karyogram", karyotype="46,XX", exception_rate=0)
    centre = {label: (b[0] + b[2]) / 2 for b, label in zip(boxes, labels)}
    for name in [str(n) for n in range(1, 23)] + ["X"]:
        assert centre[f"{name}-l"] < centre[f"{name}-r"]


def test_sampled_karyotype_rates():
    rng = np.random.default_rng(0)
    names = Counter(sample_karyotype(rng, 0.2).name for _ in range(2000))
    normal = names["46,XX"] + names["46,XY"]
    assert 0.75 < normal / 2000 < 0.85
    assert abs(names["46,XX"] - names["46,XY"]) < 150
    assert {"47,XXY", "45,X"} <= set(names)
    assert all(sample_karyotype(rng, 0.0).normal for _ in range(50))


# --- boxes are tight around the drawn pixels -------------------------------------------------


@pytest.mark.parametrize("blur", [0.0, 0.8])
def test_single_chromosome_box_is_tight(blur):
    rng = np.random.default_rng(5)
    bands = load_bands()
    for _ in range(25):
        name = CHROMOSOMES[int(rng.integers(len(CHROMOSOMES)))]
        look = Appearance(
            length=float(rng.uniform(15, 80)),
            width=float(rng.uniform(6, 11)),
            angle=float(rng.uniform(0, 360)),
            curvature=float(rng.uniform(-0.8, 0.8) / 50),
            splay=float(rng.uniform(0, 0.2)),
        )
        od = np.zeros((120, 120), dtype=np.float32)
        rc = render_chromosome(bands[name], (60.3, 59.7), look, rng)
        paste(od, rc)
        image = develop(od, Imaging(background=230, blur=blur, noise=0, illumination=0), rng).astype(int)
        inside = image[rc.y0 : rc.y0 + rc.shape[0], rc.x0 : rc.x0 + rc.shape[1]][rc.mask]
        threshold = 230 - 0.25 * (230 - np.percentile(inside, 10)) if blur else 229
        ys, xs = np.nonzero(image < threshold)
        measured = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert np.abs(measured - rc.box).max() <= 1.0, (name, look, measured, rc.box)


def test_box_follows_mask_convention():
    rc = render_chromosome(load_bands()["1"], (40.0, 40.0), Appearance(length=50, width=8), np.random.default_rng(0))
    rows, cols = np.nonzero(rc.mask)
    assert rc.box.tolist() == [rc.x0 + cols.min(), rc.y0 + rows.min(), rc.x0 + cols.max() + 1, rc.y0 + rows.max() + 1]


@pytest.mark.parametrize("mode", ["karyogram", "metaphase"])
def test_every_box_border_touches_chromosome_pixels(mode):
    scene = render_scene(np.random.default_rng(8), mode, exception_rate=0)
    image = cv2.blur(scene.image.astype(np.float32), (3, 3))  # tame the noise
    boxes = scene.boxes.astype(int)
    loose = sides = 0
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        ring = image[max(y1 - 4, 0) : y2 + 4, max(x1 - 4, 0) : x2 + 4]
        background = float(np.percentile(ring, 90))  # the slide around the chromosome
        darkness = background - image[y1:y2, x1:x2]
        visible = 0.12 * float(np.percentile(darkness, 95))  # a chromosome pixel, not noise
        assert visible > 6
        for border in (darkness[0], darkness[-1], darkness[:, 0], darkness[:, -1]):
            assert border.max() >= visible
        # 3 px outside the box there is only slide (where no other box reaches).
        others = np.zeros(image.shape, dtype=bool)
        for j, (a1, b1, a2, b2) in enumerate(boxes):
            if j != i:
                others[max(b1 - 3, 0) : b2 + 3, max(a1 - 3, 0) : a2 + 3] = True
        for line in (np.s_[y1 - 3, x1:x2], np.s_[y2 + 2, x1:x2], np.s_[y1:y2, x1 - 3], np.s_[y1:y2, x2 + 2]):
            free = ~others[line]
            if free.any():
                sides += 1
                loose += int((background - image[line][free]).max() >= visible)
    assert sides > len(boxes) and loose <= 0.05 * sides


# --- lengths --------------------------------------------------------------------------------


def test_relative_lengths():
    lengths = defaultdict(list)
    for seed in range(6):
        scene = render_scene(np.random.default_rng(seed), "karyogram", karyotype="46,XY", exception_rate=0)
        for name, box in zip(scene.chromosomes, scene.boxes):
            lengths[name].append(float(box[3] - box[1]))  # upright in a karyogram
    mean = {name: np.mean(values) for name, values in lengths.items()}
    for longer, shorter in [("1", "2"), ("2", "3"), ("3", "4"), ("5", "6"), ("7", "8"), ("13", "14"),
                            ("16", "18"), ("19", "20"), ("22", "21"), ("X", "8"), ("1", "X")]:
        assert mean[longer] > mean[shorter], (longer, shorter, mean[longer], mean[shorter])
    assert 55 <= mean["1"] <= 85
    assert 12 <= min(mean.values()) <= 22
    order = [str(n) for n in range(1, 23)]
    ranks = np.argsort(np.argsort([-mean[n] for n in order]))
    assert np.corrcoef(ranks, np.arange(22))[0, 1] > 0.95


def test_band_table_centromeres():
    bands = load_bands()
    assert set(bands) == set(CHROMOSOMES)
    assert all(bands[n].acrocentric for n in ("13", "14", "15", "21", "22"))
    assert not any(bands[n].acrocentric for n in ("1", "9", "19", "X", "Y"))
    assert 0.4 < bands["1"].centromere < 0.55 and bands["13"].centromere < 0.2
    assert 0.3 < bands["X"].centromere < 0.45


# --- files and command line -----------------------------------------------------------------


def test_csv_format(karyogram_set):
    out, manifest = karyogram_set
    for split, count in (("train", 3), ("test", 2)):
        with open(os.path.join(out, f"{split}.csv"), newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["filepath", "x1", "y1", "x2", "y2", "class_name"]
        files = Counter(row[0] for row in rows[1:])
        assert len(files) == count
        for row in rows[1:]:
            assert len(row) == 6 and row[5] in LABELS
            x1, y1, x2, y2 = map(float, row[1:5])
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        for path, n in files.items():
            assert path.startswith("images/") and not os.path.isabs(path)
            image = cv2.imread(os.path.join(out, path), cv2.IMREAD_UNCHANGED)
            assert image.shape == (480, 640) and image.dtype == np.uint8
            entry = next(e for e in manifest["images"] if e["file"] == path)
            assert entry["boxes"] == n


def test_manifest(karyogram_set):
    out, manifest = karyogram_set
    with open(os.path.join(out, "manifest.json")) as handle:
        assert json.load(handle) == manifest
    assert manifest["seed"] == 7
    assert manifest["options"] == {
        "mode": "karyogram", "n_train": 3, "n_test": 2, "width": 640, "height": 480,
        "abnormal_rate": 0.5, "exception_rate": 0.02, "style": "gband",
    }
    assert manifest["classes"] == list(chromosome_labels())
    assert [e["split"] for e in manifest["images"]] == ["train"] * 3 + ["test"] * 2
    for entry in manifest["images"]:
        karyotype = parse_karyotype(entry["karyotype"])
        assert entry["sex"] == karyotype.sex
        assert entry["boxes"] == len(karyotype.chromosomes)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "keras_frcnn.synthetic", *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def test_cli_writes_a_data_set(tmp_path):
    result = _cli("--out", str(tmp_path), "--train", "1", "--test", "1", "--mode", "metaphase", "--seed", "3",
                  "--width", "384", "--height", "288")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["options"]["width"] == 384 and manifest["options"]["mode"] == "metaphase"
    assert cv2.imread(str(tmp_path / "images" / "test_00000.png"), cv2.IMREAD_UNCHANGED).shape == (288, 384)


@pytest.mark.parametrize(
    "args",
    [
        ["--train", "-1"],
        ["--mode", "spread"],
        ["--abnormal-rate", "2"],
        ["--width", "10"],
        ["--test", "x"],
        ["--mode", "metaphase", "--style", "framed"],
    ],
)
def test_cli_bad_arguments_give_one_line_error(tmp_path, args):
    result = _cli("--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_csv_reads_with_the_project_reader(karyogram_set):
    csv_format = pytest.importorskip("keras_frcnn.annotations.csv_format")
    from keras_frcnn.annotations.classes import ClassMap

    out, manifest = karyogram_set
    records = csv_format.read_csv(os.path.join(out, "train.csv"), classes=ClassMap.chromosomes())
    assert [r.num_boxes for r in records] == [e["boxes"] for e in manifest["images"][:3]]
    assert records[0].width == 640 and records[0].height == 480


def test_render_image_is_a_function_of_the_generator_state():
    a = render_image(np.random.default_rng(9), "metaphase")
    b = render_image(np.random.default_rng(9), "metaphase")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def test_qband_style_is_bright_on_dark():
    scene = render_scene(np.random.default_rng(2), "metaphase", style="qband")
    x1, y1, x2, y2 = scene.boxes[0].astype(int)
    assert np.median(scene.image) < 30
    assert scene.image[y1:y2, x1:x2].max() > np.median(scene.image) + 60


# --- the framed style (real karyogram exports) ----------------------------------------------


@pytest.fixture(scope="module")
def framed_scenes():
    karyotypes = ["46,XX", "46,XY", "47,XY,+21", "45,X"]
    return [
        render_scene(np.random.default_rng(seed), "karyogram", style="framed", karyotype=k, exception_rate=0)
        for seed, k in enumerate(karyotypes)
    ]


def test_framed_style_is_416_square_with_all_labels_and_pairs_side_by_side(framed_scenes):
    for scene in framed_scenes:
        assert scene.image.shape == (416, 416) and scene.image.dtype == np.uint8
        boxes = scene.boxes
        assert boxes.shape == (len(scene.karyotype.chromosomes), 4)
        assert set(scene.labels) <= LABELS
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= 416)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        by_label = defaultdict(list)
        for box, label in zip(boxes, scene.labels):
            by_label[label].append(box)
        for name in [str(n) for n in range(1, 23)] + ["X"]:
            if f"{name}-r" not in by_label:
                continue
            left = by_label[f"{name}-l"][0]
            for right in by_label[f"{name}-r"]:
                assert (left[0] + left[2]) / 2 < (right[0] + right[2]) / 2
                assert min(left[3], right[3]) > max(left[1], right[1])  # same height: side by side


@pytest.mark.parametrize("size", [(416, 416), (640, 480)])
def test_framed_boxes_stay_inside_their_frames(size):
    width, height = size
    karyotype = parse_karyotype("47,XX,+13")
    for seed in range(3):
        frames = framed.sample_frames(np.random.default_rng(seed), width, height)
        assert [f.name for f in frames] == list(CHROMOSOMES)
        od = np.zeros((height, width), dtype=np.float32)
        placed = framed.karyogram(od, karyotype, np.random.default_rng(seed), frames=frames)
        assert [name for name, _ in placed] == list(karyotype.chromosomes)
        frame_of = {f.name: f for f in frames}
        for name, rc in placed:
            f = frame_of[name]
            x1, y1, x2, y2 = rc.box.tolist()
            assert f.x0 < x1 and x2 <= f.x1 and f.y0 < y1 and y2 <= f.y1, (name, rc.box, f)
        for f in frames:  # the frame lines are drawn, the tick lies inside the frame
            assert 0 <= f.x0 < f.x1 <= width and 0 <= f.y0 < f.tick < f.y1 <= height
            assert np.count_nonzero(od[int(round(f.y0)), int(round(f.x0)) : int(round(f.x1))]) > 0.9 * (f.x1 - f.x0)


def test_framed_style_is_bright_chromosomes_on_a_dark_field(framed_scenes):
    means = []
    for scene in framed_scenes:
        inside = np.zeros(scene.image.shape, dtype=bool)
        for x1, y1, x2, y2 in scene.boxes.astype(int):
            inside[y1:y2, x1:x2] = True
        field = float(np.median(scene.image[~inside]))
        assert np.percentile(scene.image[inside], 90) > field + 10
        means.append(scene.image.mean())
    assert np.mean(means) < 90


def test_framed_style_data_set_is_deterministic(tmp_path):
    def make(name: str, seed: int) -> dict[str, bytes]:
        generate_dataset(tmp_path / name, 2, 1, seed=seed, style="framed")
        return _files(str(tmp_path / name))

    a, b, c = make("a", 4), make("b", 4), make("c", 5)
    assert a == b
    assert a["images/train_00000.png"] != c["images/train_00000.png"]
    manifest = json.loads(a["manifest.json"])
    assert manifest["options"]["style"] == "framed"
    assert (manifest["options"]["width"], manifest["options"]["height"]) == (416, 416)
    image = cv2.imdecode(np.frombuffer(a["images/test_00000.png"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape == (416, 416)


def test_framed_style_size_can_be_overridden_and_needs_karyogram_mode(tmp_path, capsys):
    scene = render_scene(np.random.default_rng(0), "karyogram", 320, 240, style="framed")
    assert scene.image.shape == (240, 320)
    assert np.all(scene.boxes[:, 2] <= 320) and np.all(scene.boxes[:, 3] <= 240)
    out = tmp_path / "out"
    assert synthetic_main(["--out", str(out), "--mode", "metaphase", "--style", "framed"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "framed" in error and "karyogram" in error and "\n" not in error
    assert not out.exists()


def test_defects_darken_lift_and_speckle():
    rng = np.random.default_rng(0)
    image = np.full((64, 64), 100, dtype=np.uint8)
    assert np.array_equal(apply_defects(image, Defects(), rng), image)
    assert apply_defects(image, Defects(contrast=0.2), rng).max() == 20
    assert apply_defects(np.zeros_like(image), Defects(offset=80.0), rng).min() == 80
    speckled = apply_defects(image, Defects(salt=0.05, pepper=0.05), rng)
    assert 0.03 < np.mean(speckled == 255) < 0.07 and 0.03 < np.mean(speckled == 0) < 0.07
    jpeg = apply_defects(speckled, Defects(jpeg_quality=60), rng)
    assert jpeg.shape == image.shape and jpeg.dtype == np.uint8 and not np.array_equal(jpeg, speckled)
