"""Per-image label assignment: optimal against brute force, and the model's class-agnostic objects."""

import itertools

import numpy as np
import pytest

from keras_frcnn.label_assignment import assign_labels, assigned_detections


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
    from keras_frcnn.proposals import object_candidates

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

    from keras_frcnn.inference import detect_images
    from keras_frcnn.model import build_model
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
    from keras_frcnn.export import detection_function
    from keras_frcnn.model import build_model
    from model_fixtures import tiny_config

    model = build_model(tiny_config(label_assignment="optimal"))
    with pytest.raises(UserError, match="cannot be exported; call model.set_label_assignment"):
        detection_function(model)
