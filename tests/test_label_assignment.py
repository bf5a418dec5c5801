"""Per-image label assignment: optimal against brute force, and the model's class-agnostic objects."""

import itertools

import numpy as np
import pytest

from keras_frcnn.model.label_assignment import assign_labels, assigned_detections


def test_two_homologues_that_both_look_like_the_left_one_get_both_labels():
    # Object 0 prefers 1-l more strongly than object 1 does: 0.6 * 0.45 > 0.55 * 0.4.
    scores = np.array([[0.6, 0.4], [0.55, 0.45]])
    assert list(scores.argmax(1)) == [0, 0]
    assert list(assign_labels(scores)) == [0, 1]


def _best_log_product(scores):
    """Brute force: the best log-product over all ways to give the objects distinct classes."""
    objects, classes = scores.shape
    return max(np.log(scores[np.arange(objects), list(labels)]).sum()
               for labels in itertools.permutations(range(classes), objects))


@pytest.mark.parametrize("objects, classes", [(3, 3), (3, 5), (4, 4), (5, 6)])
def test_assignment_is_optimal_against_brute_force(objects, classes):
    rng = np.random.default_rng(objects * 10 + classes)
    for _ in range(20):
        scores = rng.dirichlet(np.ones(classes + 1), size=objects)[:, 1:]  # background column dropped
        labels = assign_labels(scores)
        assert len(set(labels)) == objects  # each class at most once
        assert np.log(scores[np.arange(objects), labels]).sum() == pytest.approx(_best_log_product(scores), abs=1e-9)


def test_objects_beyond_the_number_of_classes_keep_their_most_likely_class():
    scores = np.array([[0.9, 0.05], [0.8, 0.1], [0.7, 0.2]])
    # Best: object 0 -> class 0 and object 2 -> class 1 (0.9 * 0.2 > 0.9 * 0.1, > 0.8 * 0.2);
    # object 1 is left over and keeps class 0.
    assert list(assign_labels(scores)) == [0, 0, 1]


def test_assigned_detections_take_their_class_box_and_probability():
    scores = np.array([[0.6, 0.4], [0.55, 0.45]], np.float32)
    class_boxes = np.arange(16, dtype=np.float32).reshape(2, 2, 4)
    boxes, det_scores, classes = assigned_detections(scores, class_boxes)
    assert list(classes) == [0, 1]
    np.testing.assert_array_equal(boxes, [class_boxes[0, 0], class_boxes[1, 1]])
    np.testing.assert_allclose(det_scores, [0.6, 0.45])
    empty = assigned_detections(np.zeros((0, 2)), np.zeros((0, 2, 4)))
    assert empty[0].shape == (0, 4) and len(empty[1]) == len(empty[2]) == 0


def test_object_candidates_suppress_across_classes_and_keep_every_class_score():
    from keras_frcnn.model.proposals import object_candidates

    # Proposals 0 and 1 overlap (IoU 0.81) with different best classes; proposal 2 is elsewhere.
    boxes = np.array([[[0, 0, 10, 10], [0, 0, 10, 10]],
                      [[0, 0, 10, 9], [1, 0, 10, 9]],
                      [[50, 50, 60, 70], [50, 50, 60, 72]]], np.float32)
    scores = np.array([[0.5, 0.4], [0.2, 0.3], [0.1, 0.6]], np.float32)
    out = {k: v.numpy() for k, v in object_candidates(boxes, scores, iou_threshold=0.5, score_threshold=0.05,
                                                      max_detections=4).items()}
    assert list(out["valid"]) == [True, True, False, False]
    np.testing.assert_allclose(out["scores"][:2], [0.9, 0.7])  # 1 - background, by descending score
    assert list(out["classes"][:2]) == [0, 1]
    np.testing.assert_array_equal(out["boxes"][:2], [[0, 0, 10, 10], [50, 50, 60, 72]])
    np.testing.assert_allclose(out["class_scores"][:2], scores[[0, 2]])
    np.testing.assert_array_equal(out["class_boxes"][:2], boxes[[0, 2]])
    assert not out["class_scores"][2:].any() and not out["boxes"][2:].any()


def test_model_with_optimal_assignment_gives_each_label_at_most_once():
    import keras

    from keras_frcnn.inference.detector import detect_images
    from keras_frcnn.model.faster_rcnn import build_model
    from model_fixtures import scene, tiny_config

    keras.utils.set_random_seed(0)
    model = build_model(tiny_config(score_threshold=0.0, nms_iou=0.7, max_detections=10))
    image = scene([(10, 12, 30, 52, 0), (50, 20, 90, 40, 1), (60, 70, 100, 110, 2)])
    plain = detect_images(model, image)[0]
    model.set_label_assignment("optimal")
    assigned = detect_images(model, image)[0]
    assert len(plain["classes"]) > 3 and len(np.unique(plain["classes"])) < len(plain["classes"])
    # 10 objects, 3 classes: three of them hold distinct classes chosen by the assignment
    assert len(assigned["classes"]) == 10 and set(assigned["classes"]) == {0, 1, 2}
    with pytest.raises(Exception, match="label_assignment must be"):
        model.set_label_assignment("greedy")


def test_export_refuses_a_model_that_assigns_labels_after_the_graph():
    from keras_frcnn.errors import UserError
    from keras_frcnn.inference.export import detection_function
    from keras_frcnn.model.faster_rcnn import build_model
    from model_fixtures import tiny_config

    model = build_model(tiny_config(label_assignment="optimal"))
    with pytest.raises(UserError, match="cannot be exported; call model.set_label_assignment"):
        detection_function(model)


def _best_with_capacity(scores, capacity):
    """Brute force: the best log-product over all class choices that respect the capacities (every
    object assigned while places remain)."""
    objects, classes = scores.shape
    best = -np.inf
    for labels in itertools.product(range(classes), repeat=objects):
        if all(labels.count(c) <= capacity[c] for c in range(classes)):
            best = max(best, np.log(scores[np.arange(objects), list(labels)]).sum())
    return best


@pytest.mark.parametrize("objects, capacity", [(3, (2, 1)), (4, (2, 2, 1)), (5, (2, 2, 1, 1)), (4, (1, 3, 0))])
def test_capacity_assignment_is_optimal_against_brute_force(objects, capacity):
    rng = np.random.default_rng(objects + sum(capacity))
    for _ in range(20):
        scores = rng.dirichlet(np.ones(len(capacity) + 1), size=objects)[:, 1:]
        labels = assign_labels(scores, capacity)
        assert all(np.sum(labels == c) <= capacity[c] for c in range(len(capacity)))
        best = _best_with_capacity(scores, capacity)
        assert np.log(scores[np.arange(objects), labels]).sum() == pytest.approx(best, abs=1e-9)


def test_three_sevens_and_no_six_become_two_sevens_and_a_six():
    from keras_frcnn.model.label_assignment import karyotype_capacities

    names = ("6", "7", "Y")
    scores = np.array([[0.3, 0.7, 0.0], [0.1, 0.9, 0.0], [0.2, 0.8, 0.0]])
    assert list(assign_labels(scores)) == [0, 1, 2]  # each class once: the third object is forced onto Y
    capacity = karyotype_capacities(names)
    assert list(capacity) == [2, 2, 1]
    # The object that loses least by becoming a 6 (0.3 / 0.7 beats 0.2 / 0.8 and 0.1 / 0.9) becomes the 6.
    assert list(assign_labels(scores, capacity)) == [0, 1, 1]


def test_karyotype_capacities_of_both_schemes():
    from keras_frcnn.annotations.classes import chromosome_classes, chromosome_labels
    from keras_frcnn.model.label_assignment import capacities, karyotype_capacities

    assert list(karyotype_capacities(chromosome_classes())) == [2] * 23 + [1]
    assert set(karyotype_capacities(chromosome_labels())) == {1}
    assert list(capacities("optimal", ("7", "Y"))) == [1, 1]
    with pytest.raises(ValueError):
        capacities("none", ("7",))


def test_a_sure_third_copy_is_reported_as_a_trisomy_and_an_unsure_one_is_not():
    from keras_frcnn.model.label_assignment import karyotype_capacities

    names = ("21", "22", "X", "Y")
    capacity = karyotype_capacities(names)  # 2, 2, 2, 1
    # 47,XY,+21: three objects sure of 21; two 22s, one X, one Y.
    scores = np.array([[0.97, 0.01, 0.01, 0.01], [0.96, 0.02, 0.01, 0.01], [0.95, 0.03, 0.01, 0.01],
                       [0.02, 0.95, 0.02, 0.01], [0.03, 0.94, 0.02, 0.01], [0.01, 0.01, 0.97, 0.01],
                       [0.01, 0.01, 0.01, 0.97]])
    forced = assign_labels(scores, capacity)
    assert list(forced) == [0, 0, 2, 1, 1, 2, 3]  # the third 21 is pushed onto the cell's free X place
    assert list(assign_labels(scores, capacity, extra_copy_score=0.9)) == [0, 0, 0, 1, 1, 2, 3]
    # Below the threshold the model is not sure enough: the free place keeps it.
    assert list(assign_labels(scores, capacity, extra_copy_score=0.99)) == list(forced)
    # At most one extra copy per class: a fourth sure 21 is not a tetrasomy here.
    four = np.vstack([scores, [[0.94, 0.04, 0.01, 0.01]]])
    assert np.sum(assign_labels(four, capacity, extra_copy_score=0.9) == 0) == 3
