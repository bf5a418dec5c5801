"""D4 augmentation: boxes and pixels move together, inverses, subgroups, left/right label swaps."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_frcnn.annotations.classes import chromosome_labels
from keras_frcnn.data.augment import (
    apply_transform,
    inverse_transform_id,
    lr_swap_table,
    paper_expansion_ids,
    random_transform_id,
    transform_boxes,
    transform_subgroup,
    transform_swaps_lr,
    transformed_size,
)

IDS = list(range(8))
HEIGHT, WIDTH = 37, 52  # distinct, so a missed width/height swap shows


def random_boxes(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    xs = np.sort(rng.uniform(0, width, size=(n, 2)), axis=1)
    ys = np.sort(rng.uniform(0, height, size=(n, 2)), axis=1)
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1).astype(np.float32)


def pixel_box(image: np.ndarray) -> list[float]:
    """Continuous box enclosing the nonzero pixels."""
    rows, cols = np.nonzero(image[..., 0])
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize("t", IDS)
def test_inverse_restores_boxes_and_image(t):
    rng = np.random.default_rng(t)
    boxes = random_boxes(rng, 20, HEIGHT, WIDTH)
    image = rng.integers(0, 255, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)
    out_image, out_boxes = apply_transform(image, boxes, t)
    back_image, back_boxes = apply_transform(out_image, out_boxes, inverse_transform_id(t))
    np.testing.assert_allclose(back_boxes.numpy(), boxes, atol=1e-4)
    np.testing.assert_array_equal(back_image.numpy(), image)
    if t != 0:  # the transform really did something
        assert out_image.shape != image.shape or not np.array_equal(out_image.numpy(), image)


def test_inverse_id_as_tensor_matches_python():
    got = inverse_transform_id(tf.constant(IDS)).numpy().tolist()
    assert got == [inverse_transform_id(t) for t in IDS] == [0, 3, 2, 1, 4, 5, 6, 7]


@pytest.mark.parametrize("t", IDS)
def test_boxes_stay_inside_keep_area_and_sizes_swap(t):
    rng = np.random.default_rng(100 + t)
    boxes = random_boxes(rng, 50, HEIGHT, WIDTH)
    out = transform_boxes(boxes, HEIGHT, WIDTH, t).numpy()
    new_h, new_w = (int(v) for v in transformed_size(HEIGHT, WIDTH, t))
    assert (new_h, new_w) == ((WIDTH, HEIGHT) if t % 2 else (HEIGHT, WIDTH))
    assert (out[:, 0] >= 0).all() and (out[:, 1] >= 0).all()
    assert (out[:, 2] <= new_w).all() and (out[:, 3] <= new_h).all()
    assert (out[:, 2] >= out[:, 0]).all() and (out[:, 3] >= out[:, 1]).all()
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    np.testing.assert_allclose(area(out), area(boxes), rtol=1e-4)


@pytest.mark.parametrize("t", IDS)
def test_box_encloses_exactly_the_transformed_pixels(t):
    # Several rectangles, each in a different corner region, so a wrong direction shows.
    for x1, y1, x2, y2 in [(3, 5, 11, 9), (30, 2, 50, 6), (1, 20, 4, 36), (40, 25, 41, 30)]:
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        image[y1:y2, x1:x2] = 255
        box = np.array([[x1, y1, x2, y2]], np.float32)
        out_image, out_box = apply_transform(image, box, t)
        assert pixel_box(out_image.numpy()) == pytest.approx(out_box.numpy()[0].tolist(), abs=1e-4)


def test_table_of_the_docstring():
    # A single point as a degenerate box: (x, y) = (3, 5) in a W=52, H=37 image.
    expect = {0: (3, 5), 1: (5, 49), 2: (49, 32), 3: (32, 3), 4: (49, 5), 5: (32, 49), 6: (3, 32), 7: (5, 3)}
    for t, (x, y) in expect.items():
        out = transform_boxes([[3, 5, 3, 5]], HEIGHT, WIDTH, t).numpy()[0]
        assert out.tolist() == [x, y, x, y], t


def test_vflip_is_id_6_and_hflip_is_id_4():
    image = np.arange(HEIGHT * WIDTH * 3, dtype=np.int32).reshape(HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(apply_transform(image, np.zeros((0, 4), np.float32), 6)[0], image[::-1])
    np.testing.assert_array_equal(apply_transform(image, np.zeros((0, 4), np.float32), 4)[0], image[:, ::-1])
    # id 1 is counter-clockwise as displayed: the top-right pixel ends up top-left.
    rotated = apply_transform(image, np.zeros((0, 4), np.float32), 1)[0].numpy()
    np.testing.assert_array_equal(rotated[0, 0], image[0, -1])


def test_works_inside_tf_function_with_tensor_id():
    @tf.function
    def run(image, boxes, t):
        return apply_transform(image, boxes, t)

    image = np.random.default_rng(0).random((HEIGHT, WIDTH, 3)).astype(np.float32)
    boxes = random_boxes(np.random.default_rng(1), 4, HEIGHT, WIDTH)
    for t in IDS:
        graph_image, graph_boxes = run(image, boxes, tf.constant(t))
        eager_image, eager_boxes = apply_transform(image, boxes, t)
        np.testing.assert_array_equal(graph_image.numpy(), eager_image.numpy())
        np.testing.assert_array_equal(graph_boxes.numpy(), eager_boxes.numpy())


@pytest.mark.parametrize(
    "flags, expected",
    [
        ((False, False, False), {0}),
        ((True, False, False), {0, 4}),
        ((False, True, False), {0, 6}),
        ((True, True, False), {0, 2, 4, 6}),
        ((False, False, True), {0, 1, 2, 3}),
        ((True, False, True), set(IDS)),
        ((False, True, True), set(IDS)),
        ((True, True, True), set(IDS)),
    ],
)
def test_random_transform_id_draws_the_whole_subgroup(flags, expected):
    assert set(transform_subgroup(*flags)) == expected
    draws = [int(random_transform_id(*flags, seed=tf.constant([7, i]))) for i in range(200)]
    assert set(draws) == expected
    # Roughly uniform: every member at least a third of its fair share.
    counts = np.bincount(draws, minlength=8)
    assert all(counts[t] > 200 / len(expected) / 3 for t in expected)


def test_random_transform_id_is_reproducible_with_a_seed():
    first = [int(random_transform_id(True, True, True, seed=[3, i])) for i in range(20)]
    again = [int(random_transform_id(True, True, True, seed=[3, i])) for i in range(20)]
    assert first == again
    assert 0 <= int(random_transform_id(True, False, True)) < 8  # stateful path


def test_paper_expansion_ids():
    ids = paper_expansion_ids()
    assert len(ids) == 16
    assert sorted(set(ids)) == IDS
    assert np.bincount(ids).tolist() == [2] * 8
    # Rotation k with no flip, hflip, vflip (= id 6 after the rotation), h+v (= rot180).
    assert ids[:4] == (0, 4, 6, 2)


def test_swap_rule():
    swaps = [bool(transform_swaps_lr(t)) for t in IDS]
    # identity, ccw90 (+x -> up), rot180, cw90 (+x -> down), hflip, id5 (+x -> up), vflip, transpose
    assert swaps == [False, True, True, False, True, True, False, False]
    # The rule as stated: +x ends up pointing to -x or -y. Check from the box transform itself.
    for t in IDS:
        a, b = transform_boxes([[10, 10, 10, 10], [11, 10, 11, 10]], HEIGHT, WIDTH, t).numpy()[:, :2]
        dx, dy = b - a
        assert swaps[t] == (dx < 0 or dy < 0), t


def test_lr_swap_table_on_chromosome_labels():
    names = chromosome_labels()
    table = lr_swap_table(names)
    assert table.dtype == np.int32 and table.shape == (49,)
    pos = {name: i for i, name in enumerate(names)}
    partner = lambda name: names[table[pos[name]]]  # noqa: E731
    assert partner("1-l") == "1-r" and partner("1-r") == "1-l"
    assert partner("22-l") == "22-r" and partner("12-r") == "12-l"
    assert partner("X-l") == "X-r" and partner("X-r") == "X-l"
    for name in ("5-?", "X-?", "Y"):
        assert partner(name) == name
    np.testing.assert_array_equal(table[table], np.arange(49))  # an involution
    assert (table != np.arange(49)).sum() == 46  # 23 pairs


def test_lr_swap_table_other_names():
    table = lr_swap_table(["cat", "1-l", "dog-l", "dog-r", "23-l", "23-r", "Y"])
    assert table.tolist() == [0, 1, 2, 3, 4, 5, 6]  # no partner / not a chromosome -> itself
