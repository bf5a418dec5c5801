"""The tf.data pipeline: decoding, resizing, padding, augmentation, labels, determinism."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.annotations.classes import ClassMap
from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.config import Config
from keras_frcnn.data.augment import transform_swaps_lr
from keras_frcnn.data.pipeline import (
    image_dataset,
    make_dataset,
    resize_scale,
    resize_scale_tf,
    resized_shape,
    resized_shape_tf,
)
from keras_frcnn.errors import UserError

CLASSES = ClassMap.chromosomes()


def write_image(tmp_path, name: str, height: int, width: int, grey: bool = False, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    shape = (height, width) if grey else (height, width, 3)
    path = os.path.join(str(tmp_path), name)
    assert cv2.imwrite(path, rng.integers(0, 256, size=shape).astype(np.uint8))
    return path


def record(path: str, boxes=(), labels=(), **kwargs) -> ImageRecord:
    return ImageRecord(path=path, boxes=np.asarray(boxes, np.float32).reshape(-1, 4), labels=labels, **kwargs)


def first(dataset) -> dict:
    return {k: v.numpy() for k, v in next(iter(dataset)).items()}


def test_element_spec_shapes_and_dtypes(tmp_path):
    path = write_image(tmp_path, "a.png", 30, 40)
    config = Config(im_size=60, max_size=100, max_boxes=5)
    ds = make_dataset([record(path, [[1, 2, 10, 20]], ["1-l"])], CLASSES, config, training=False)
    spec = ds.element_spec
    assert spec["images"].shape.as_list() == [None, None, None, 3] and spec["images"].dtype == tf.float32
    assert spec["image_shape"].shape.as_list() == [None, 2] and spec["image_shape"].dtype == tf.int32
    assert spec["boxes"].shape.as_list() == [None, 5, 4] and spec["boxes"].dtype == tf.float32
    assert spec["labels"].shape.as_list() == [None, 5] and spec["labels"].dtype == tf.int32
    for key, dtype in (("scale", tf.float32), ("image_index", tf.int32), ("transform_id", tf.int32)):
        assert spec[key].shape.as_list() == [None] and spec[key].dtype == dtype
    batch = first(ds)
    assert batch["images"].shape == (1, 60, 80, 3)
    assert batch["image_shape"].tolist() == [[60, 80]]
    assert ds.cardinality().numpy() == 1  # one pass, known length, for evaluation loops


def test_resize_scale_and_boxes(tmp_path):
    path = write_image(tmp_path, "a.png", 300, 400)
    boxes = [[10, 20, 110, 220], [0, 0, 400, 300]]
    ds = make_dataset([record(path, boxes, ["1-l", "Y"])], CLASSES, Config(), training=False)
    batch = first(ds)
    assert batch["scale"].tolist() == [2.0]
    assert batch["image_shape"].tolist() == [[600, 800]]
    np.testing.assert_allclose(batch["boxes"][0, :2], np.asarray(boxes) * 2.0)
    assert batch["labels"][0, :2].tolist() == [0, CLASSES.index("Y")]
    assert batch["transform_id"].tolist() == [0]


def test_max_size_caps_the_longer_side(tmp_path):
    path = write_image(tmp_path, "wide.png", 100, 400)
    rec = record(path, [[0, 0, 400, 100]], ["2-r"])
    batch = first(make_dataset([rec], CLASSES, Config(), training=False))
    assert batch["scale"][0] == pytest.approx(2.5)  # 600 / 100 = 6 would make it 2400 wide
    assert batch["image_shape"].tolist() == [[250, 1000]]
    np.testing.assert_allclose(batch["boxes"][0, 0], [0, 0, 1000, 250])
    assert resize_scale(100, 400, 600, 1000) == 2.5
    assert resize_scale(300, 400, 600, 1000) == 2.0
    assert resized_shape(100, 400, 600, 1000) == (250, 1000)


def test_python_and_tf_resize_rules_agree(tmp_path):
    sizes = [(37, 53), (53, 37), (101, 333), (480, 640), (17, 1000)]
    boxes = lambda h, w: [[0, 0, w, h], [w / 2, h / 4, w, h]]  # noqa: E731
    paths = [write_image(tmp_path, f"{h}x{w}.png", h, w) for h, w in sizes]
    records = [record(path, boxes(h, w), ["1-l", "1-r"]) for path, (h, w) in zip(paths, sizes)]
    config = Config(im_size=97, max_size=160)
    ds = make_dataset(records, CLASSES, config, training=False)
    for batch in ds:
        h, w = sizes[int(batch["image_index"][0])]
        new_h, new_w = resized_shape(h, w, 97, 160)
        assert tuple(batch["image_shape"].numpy()[0]) == (new_h, new_w)
        assert float(batch["scale"][0]) == pytest.approx(resize_scale(h, w, 97, 160))
        # Boxes follow the exact per-axis ratio of the rounded size.
        expected = [[0, 0, new_w, new_h], [new_w / 2, new_h / 4, new_w, new_h]]
        np.testing.assert_allclose(batch["boxes"].numpy()[0, :2], expected, rtol=1e-5)


def test_python_and_tf_resize_rules_are_bit_identical():
    rng = np.random.default_rng(0)
    n = 3000
    h, w = rng.integers(1, 3000, n), rng.integers(1, 3000, n)
    im_size = rng.integers(16, 1000, n)
    max_size = im_size + rng.integers(0, 800, n)
    tf_h, tf_w = (v.numpy() for v in resized_shape_tf(h, w, im_size, max_size))
    tf_scale = resize_scale_tf(h, w, im_size, max_size).numpy()
    for i in range(n):
        args = (int(h[i]), int(w[i]), int(im_size[i]), int(max_size[i]))
        assert resized_shape(*args) == (tf_h[i], tf_w[i])
        assert resize_scale(*args) == tf_scale[i]
        new_h, new_w = resized_shape(*args)
        assert min(new_h, new_w) <= args[2] + 0.5 and max(new_h, new_w) <= args[3] + 0.5


def test_padding_values_and_mixed_sizes_in_a_batch(tmp_path):
    small = write_image(tmp_path, "small.png", 20, 30, seed=1)
    tall = write_image(tmp_path, "tall.png", 40, 20, seed=2)
    records = [
        record(small, [[1, 1, 5, 5]], ["3-l"]),
        record(tall, [[2, 2, 6, 8], [0, 0, 20, 40]], ["3-r", "X-?"]),
    ]
    config = Config(im_size=20, max_size=1000, max_boxes=4)
    batch = first(make_dataset(records, CLASSES, config, training=False, batch_size=2))
    assert batch["images"].shape == (2, 40, 30, 3)
    assert batch["image_shape"].tolist() == [[20, 30], [40, 20]]
    assert batch["image_index"].tolist() == [0, 1]
    assert (batch["images"][0, 20:] == 0).all() and (batch["images"][1, :, 20:] == 0).all()
    assert batch["images"][0, :20, :30].any() and batch["images"][1, :40, :20].any()
    expected = cv2.imread(small)[..., ::-1].astype(np.float32)  # scale 1: the pixels, RGB
    np.testing.assert_array_equal(batch["images"][0, :20, :30], expected)
    ids = {name: CLASSES.index(name) for name in ("3-l", "3-r", "X-?")}
    assert batch["labels"].tolist() == [[ids["3-l"], -1, -1, -1], [ids["3-r"], ids["X-?"], -1, -1]]
    assert (batch["boxes"][0, 1:] == 0).all() and (batch["boxes"][1, 2:] == 0).all()
    np.testing.assert_array_equal(batch["boxes"][1, 1], [0, 0, 20, 40])


def test_grey_image_gives_three_identical_channels(tmp_path):
    path = write_image(tmp_path, "grey.png", 25, 35, grey=True)
    batch = first(make_dataset([record(path)], CLASSES, Config(im_size=25), training=False))
    image = batch["images"][0]
    assert image.shape == (25, 35, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    np.testing.assert_array_equal(image[..., 0], cv2.imread(path, cv2.IMREAD_GRAYSCALE))


@pytest.mark.parametrize("ext", ["jpg", "bmp"])
def test_other_formats_decode(tmp_path, ext):
    path = write_image(tmp_path, f"a.{ext}", 24, 32)
    batch = first(make_dataset([record(path)], CLASSES, Config(im_size=24), training=False))
    assert batch["image_shape"].tolist() == [[24, 32]]
    reference = cv2.imread(path)[..., ::-1].astype(np.float32)
    assert np.abs(batch["images"][0] - reference).mean() < 3  # JPEG decoders may differ slightly


def test_sixteen_bit_png_is_brought_to_the_8_bit_range(tmp_path):
    values = np.array([[0, 255, 256, 32768, 65535]], np.uint16)
    path = os.path.join(str(tmp_path), "deep.png")
    assert cv2.imwrite(path, values)
    batch = first(make_dataset([record(path)], CLASSES, Config(im_size=1, max_size=5), training=False))
    assert batch["image_shape"].tolist() == [[1, 5]]
    assert batch["images"][0, 0, :, 0].tolist() == [0, 0, 1, 128, 255]  # the high byte, as cv2.imread


def test_embedded_image_bytes(tmp_path):
    path = write_image(tmp_path, "a.png", 20, 30, seed=5)
    with open(path, "rb") as handle:
        data = handle.read()
    os.remove(path)  # only the embedded copy is left
    rec = record(str(tmp_path / "missing.png"), [[1, 2, 3, 4]], ["Y"], image_bytes=data)
    batch = first(make_dataset([rec], CLASSES, Config(im_size=20), training=False))
    assert batch["image_shape"].tolist() == [[20, 30]]
    assert batch["images"].any()


def test_image_with_zero_boxes(tmp_path):
    path = write_image(tmp_path, "empty.png", 20, 30)
    config = Config(im_size=20, hflip=True, rot90=True, max_boxes=3)
    batch = first(make_dataset([record(path)], CLASSES, config, training=True))
    assert (batch["labels"] == -1).all() and (batch["boxes"] == 0).all()


def test_too_many_boxes_raises_user_error(tmp_path):
    path = write_image(tmp_path, "crowded.png", 20, 30)
    rec = record(path, [[1, 1, 2, 2]] * 4, ["1-l"] * 4)
    with pytest.raises(UserError, match=r"crowded\.png.*4 boxes"):
        make_dataset([rec], CLASSES, Config(max_boxes=3), training=False)


def test_unknown_label_and_bad_options_raise_user_error(tmp_path):
    path = write_image(tmp_path, "a.png", 20, 30)
    with pytest.raises(UserError, match="a.png.*chr99"):
        make_dataset([record(path, [[1, 1, 2, 2]], ["chr99"])], CLASSES, Config(), training=False)
    with pytest.raises(UserError, match="expansion"):
        make_dataset([record(path)], CLASSES, Config(), training=True, expansion="twice")
    with pytest.raises(UserError, match="paper16"):
        make_dataset([record(path)], CLASSES, Config(), training=True, augment=False, expansion="paper16")
    with pytest.raises(UserError):
        make_dataset([], CLASSES, Config(), training=False)


@pytest.mark.parametrize("scale", [1, 2])
def test_boxes_follow_pixels_through_the_augmented_pipeline(tmp_path, scale):
    records = []
    for i, (x1, y1, x2, y2) in enumerate([(3, 4, 9, 7), (20, 10, 29, 19), (0, 12, 5, 20)]):
        image = np.zeros((20, 30), np.uint8)
        image[y1:y2, x1:x2] = 255
        path = os.path.join(str(tmp_path), f"r{i}.png")
        cv2.imwrite(path, image)
        records.append(record(path, [[x1, y1, x2, y2]], ["7-l"]))
    # Scale 1 keeps the pixels; scale 2 (bilinear, half-pixel centres) puts the 50% level exactly
    # on the doubled edges.
    config = Config(im_size=20 * scale, max_size=1000, hflip=True, vflip=True, rot90=True)
    ds = make_dataset(records, CLASSES, config, training=True, seed=3).take(30)
    seen = set()
    for batch in ds:
        b = {k: v.numpy()[0] for k, v in batch.items()}
        seen.add(int(b["transform_id"]))
        h, w = b["image_shape"]
        rows, cols = np.nonzero(b["images"][:h, :w, 0] > 127.5)
        assert [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1] == b["boxes"][0].tolist()
        assert b["scale"] == scale
        assert b["labels"][0] == CLASSES.index("7-l")  # follow_object: the label never changes
    assert len(seen) >= 6  # the augmentation really ran


def test_swap_lr_versus_follow_object(tmp_path):
    path = write_image(tmp_path, "a.png", 20, 30)
    names = ["1-l", "1-r", "X-l", "5-?", "Y"]
    rec = record(path, [[1, 1, 5, 5]] * len(names), names)
    ids = CLASSES.to_ids(names).tolist()
    swapped_ids = CLASSES.to_ids(["1-r", "1-l", "X-r", "5-?", "Y"]).tolist()
    saw = {True: 0, False: 0}
    for mode in ("follow_object", "swap_lr"):
        config = Config(im_size=20, hflip=True, rot90=True, mirror_labels=mode)
        for batch in make_dataset([rec], CLASSES, config, training=True, seed=1).take(24):
            t = int(batch["transform_id"][0])
            labels = batch["labels"].numpy()[0, : len(names)].tolist()
            swaps = bool(transform_swaps_lr(t))
            if mode == "follow_object":
                assert labels == ids
            else:
                assert labels == (swapped_ids if swaps else ids), t
                saw[swaps] += 1
    assert saw[True] and saw[False]


def test_paper16_expansion_gives_every_transform_twice_per_image(tmp_path):
    records = [record(write_image(tmp_path, f"{i}.png", 10, 12, seed=i)) for i in range(2)]
    ds = make_dataset(records, CLASSES, Config(im_size=10), training=False, augment=True, expansion="paper16")
    pairs = [(int(b["image_index"][0]), int(b["transform_id"][0])) for b in ds]
    assert len(pairs) == 32
    for index in (0, 1):
        ids = [t for i, t in pairs if i == index]
        assert np.bincount(ids, minlength=8).tolist() == [2] * 8


def test_same_seed_same_batches_and_other_seed_differs(tmp_path):
    paths = [write_image(tmp_path, f"{i}.png", 16 + i, 20, seed=i) for i in range(6)]
    records = [record(path, [[1, 1, 8, 8]], ["1-l"]) for path in paths]
    config = Config(im_size=16, hflip=True, vflip=True, rot90=True, mirror_labels="swap_lr")

    def batches(seed):
        ds = make_dataset(records, CLASSES, config, training=True, batch_size=2, seed=seed)
        return [{k: v.numpy() for k, v in b.items()} for b in ds.take(6)]

    a, b, c = batches(11), batches(11), batches(12)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    order = lambda run: [i for batch in run for i in batch["image_index"].tolist()]  # noqa: E731
    transforms = lambda run: [t for batch in run for t in batch["transform_id"].tolist()]  # noqa: E731
    assert order(a) != order(c) and transforms(a) != transforms(c)
    # Every epoch is a permutation of all images; epochs differ in order; transforms vary within one.
    assert sorted(order(a)[:6]) == list(range(6)) and sorted(order(a)[6:]) == list(range(6))
    assert order(a)[:6] != order(a)[6:]
    assert len(set(transforms(a)[:6])) > 1


def test_training_dataset_repeats_and_evaluation_does_not(tmp_path):
    records = [record(write_image(tmp_path, f"{i}.png", 10, 10, seed=i)) for i in range(3)]
    config = Config(im_size=10)
    train = make_dataset(records, CLASSES, config, training=True)
    assert train.cardinality().numpy() == tf.data.INFINITE_CARDINALITY
    assert len(list(train.take(10))) == 10
    evaluation = make_dataset(records, CLASSES, config, training=False)
    indices = [int(b["image_index"][0]) for b in evaluation]
    assert indices == [0, 1, 2]  # no shuffle, one pass
    assert all(int(b["transform_id"][0]) == 0 for b in evaluation)


def test_skip_continues_the_same_stream(tmp_path):
    """A resumed run skips what it consumed: skip=k gives elements k, k+1, ... of the full stream."""
    records = []
    for i in range(3):
        path = tmp_path / f"s{i}.png"
        cv2.imwrite(str(path), np.full((20 + 4 * i, 30, 3), 10 * i, np.uint8))
        records.append(ImageRecord(str(path), [[1, 1, 5, 5]], ["a"]))
    config = Config(im_size=20, max_size=40, hflip=True, vflip=True, rot90=True)
    classes = ClassMap(("a",))
    full = list(make_dataset(records, classes, config, training=True, seed=3).take(7))
    resumed = list(make_dataset(records, classes, config, training=True, seed=3, skip=4).take(3))
    for expected, actual in zip(full[4:], resumed):
        for key in ("image_index", "transform_id", "boxes", "images"):
            np.testing.assert_array_equal(expected[key].numpy(), actual[key].numpy())


def test_the_inference_images_equal_the_training_pipeline_without_augmentation(tmp_path):
    """image_dataset reads no boxes, but resizes and pads exactly as the training pipeline does."""
    a = write_image(tmp_path, "a.png", 30, 40, seed=1)
    b = write_image(tmp_path, "b.png", 50, 20, grey=True, seed=2)
    with open(a, "rb") as handle:
        embedded = record("a-embedded.png", image_bytes=handle.read())
    records = [record(a, [[1, 2, 10, 12]], ["1-l"]), record(b), embedded]
    config = Config(class_names=CLASSES.names, im_size=60, max_size=100)
    expected = list(make_dataset(records, CLASSES, config, training=False, batch_size=2))
    found = list(image_dataset(records, config, batch_size=2))
    assert len(found) == len(expected) == 2
    for got, want in zip(found, expected):
        assert set(got) == {"images", "image_shape", "scale", "image_index"}
        for key in got:
            np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), err_msg=key)
    # a: 30 x 40 -> 60 x 80; b: 50 x 20 would be 150 x 60, but the longer side is capped: 100 x 40
    assert found[0]["images"].shape == (2, 100, 80, 3)
    assert found[0]["image_shape"].numpy().tolist() == [[60, 80], [100, 40]]


def test_the_library_datasets_run_without_the_autotuning_thread(tmp_path):
    """With tf.data's autotuning on, deleting an iterator can wait for that thread's next wake-up
    (up to 60 s; benchmarks/tfdata_iterator_end.py): every pass over a folder or a validation set
    ended late. Both datasets turn it off, and still prepare images in parallel."""
    records = [record(write_image(tmp_path, f"{i}.png", 10, 10, seed=i)) for i in range(2)]
    config = Config(class_names=CLASSES.names, im_size=10)
    for dataset in (make_dataset(records, CLASSES, config, training=True),
                    make_dataset(records, CLASSES, config, training=False),
                    image_dataset(records, config)):
        assert dataset.options().autotune.enabled is False
        graph = dataset._as_serialized_graph().numpy()
        assert b"ParallelMapDatasetV2" in graph and b"PrefetchDataset" in graph
