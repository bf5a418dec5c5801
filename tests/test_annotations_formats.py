"""LabelMe, Pascal VOC and COCO readers, format detection, and image loading."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations import (
    ImageRecord,
    collect_problems,
    detect_format,
    load_image,
    read_annotations,
    read_image_size,
)
from keras_frcnn.errors import UserError


def png_bytes(width: int, height: int, channels: int = 3, dtype=np.uint8, value: int = 90) -> bytes:
    shape = (height, width) if channels == 1 else (height, width, channels)
    ok, encoded = cv2.imencode(".png", np.full(shape, value, dtype=dtype))
    assert ok
    return encoded.tobytes()


def write_png(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height))
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- LabelMe ---------------------------------------------------------------------------------


def labelme(shapes: list, width: int = 120, height: int = 90, embed: bool = True, image_path: str = "x.png"):
    data = {"version": "5.0.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageHeight": height, "imageWidth": width}
    data["imageData"] = base64.b64encode(png_bytes(width, height)).decode("ascii") if embed else None
    return data


def shape(label: str, points: list, shape_type: str = "polygon") -> dict:
    return {"label": label, "points": points, "group_id": None, "shape_type": shape_type, "flags": {}}


def test_labelme_polygons_become_tight_boxes_and_the_image_is_embedded(tmp_path: Path):
    shapes = [
        shape("5-?", [[30.5, 12.0], [41.25, 20.0], [36.0, 55.5], [28.0, 40.0]]),
        shape("Y", [[80, 10], [100, 30]], "rectangle"),
        shape("X-l", [[60, 50], [63, 54]], "circle"),  # radius 5
    ]
    path = write_json(tmp_path / "cell.json", labelme(shapes))
    assert detect_format(path) == "labelme"
    data = read_annotations(path)
    (record,) = data.records
    np.testing.assert_allclose(record.boxes, [[28.0, 12.0, 41.25, 55.5], [80, 10, 100, 30], [55, 45, 65, 55]])
    assert record.labels == ("5-?", "Y", "X-l")
    assert record.path == str(path) and (record.width, record.height) == (120, 90)
    assert record.image_bytes == png_bytes(120, 90)
    assert load_image(record).shape == (90, 120, 3)
    assert data.class_map.names == ("5-?", "X-l", "Y")


def test_labelme_image_path_is_relative_to_the_json_file(tmp_path: Path):
    write_png(tmp_path / "images" / "cell.png", 120, 90)
    path = write_json(tmp_path / "json" / "cell.json",
                      labelme([shape("1-l", [[1, 2], [3, 4]])], embed=False, image_path="../images/cell.png"))
    (record,) = read_annotations(path).records
    assert record.path == os.path.normpath(str(tmp_path / "images" / "cell.png"))
    assert record.image_bytes is None


def test_labelme_folder_reads_every_file_in_name_order(tmp_path: Path):
    write_json(tmp_path / "b.json", labelme([shape("chr", [[1, 1], [5, 9]])]))
    write_json(tmp_path / "a.json", labelme([shape("chr", [[2, 2], [6, 6]]), shape("chr", [[7, 7], [9, 9]])]))
    assert detect_format(tmp_path) == "labelme"
    data = read_annotations(tmp_path)
    assert [os.path.basename(r.path) for r in data.records] == ["a.json", "b.json"]
    assert data.num_boxes == 3


def test_labelme_problems_name_the_shape(tmp_path: Path):
    shapes = [
        shape("chr", [[1, 1], [5, 9]]),
        shape("chr", [[5, 1], [5, 9]], "line"),
        shape("chr", [[1, 1], ["a", 9]]),
        shape("chr", [[110, 80], [130, 85]]),
    ]
    path = write_json(tmp_path / "cell.json", labelme(shapes))
    bad_size = write_json(tmp_path / "size.json", labelme([], width=50))
    write_json(tmp_path / "size.json", {**json.loads(bad_size.read_text()), "imageWidth": 64})
    (tmp_path / "broken.json").write_text('{"shapes": [\n  1,\n', encoding="utf-8")
    assert [str(p) for p in collect_problems(tmp_path)] == [
        f"{tmp_path / 'broken.json'}:3: invalid JSON (Expecting value)",
        f"{path}: shape 2: x2 (5.0) must be greater than x1 (5.0)",
        f"{path}: shape 3: point 2 x is not a number ('a')",
        f"{path}: shape 4: box (110.0, 80.0, 130.0, 85.0) extends outside the 120x90 image "
        "(--clip / clip_boxes=True clips it)",
        f"{bad_size}: image {bad_size} is 50x90 pixels but the annotation says 64x90",
    ]
    with pytest.raises(UserError) as raised:
        read_annotations(path)
    assert str(raised.value).startswith(f"{path}: shape 2: x2 (5.0) must be greater than x1 (5.0) (and 2 more")


# --- Pascal VOC ------------------------------------------------------------------------------

VOC = """<annotation>
  <folder>VOC</folder>
  <filename>{filename}</filename>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
  {objects}
</annotation>
"""


def voc_object(name: str, xmin, ymin, xmax, ymax, difficult: int = 0) -> str:
    return (f"<object><name>{name}</name><truncated>1</truncated><difficult>{difficult}</difficult>"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def write_voc(path: Path, objects: list[str], filename: str = "cell.png", width: int = 120, height: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VOC.format(filename=filename, width=width, height=height, objects="\n".join(objects)))
    return path


def test_voc_one_based_indices_become_continuous_coordinates(tmp_path: Path):
    write_png(tmp_path / "cell.png", 120, 90)
    path = write_voc(tmp_path / "cell.xml", [
        voc_object("1-l", 1, 1, 1, 1),  # the first pixel only
        voc_object("5-?", 11, 21, 40, 60, difficult=1),
        voc_object("Y", 1, 1, 120, 90),  # the whole image
    ])
    assert detect_format(path) == "pascal_voc"
    (record,) = read_annotations(path).records
    np.testing.assert_array_equal(record.boxes, [[0, 0, 1, 1], [10, 20, 40, 60], [0, 0, 120, 90]])
    assert record.difficult.tolist() == [False, True, False]
    assert record.labels == ("1-l", "5-?", "Y")
    assert record.path == str(tmp_path / "cell.png")


def test_voc_standard_layout_finds_images_in_jpegimages(tmp_path: Path):
    write_png(tmp_path / "JPEGImages" / "cell.png", 120, 90)
    write_voc(tmp_path / "Annotations" / "cell.xml", [voc_object("Y", 2, 3, 4, 5)])
    for path in (tmp_path, tmp_path / "Annotations"):
        (record,) = read_annotations(path).records
        assert record.path == os.path.normpath(str(tmp_path / "JPEGImages" / "cell.png"))


def test_voc_zero_based_boxes_are_outside_unless_clipped_and_bad_objects_are_named(tmp_path: Path):
    write_png(tmp_path / "cell.png", 120, 90)
    path = write_voc(tmp_path / "cell.xml", [voc_object("Y", 0, 5, 10, 20), voc_object("Y", 30, 5, 20, 20)])
    assert [str(p) for p in collect_problems(path)] == [
        f"{path}: object 1: box (-1.0, 4.0, 10.0, 20.0) extends outside the 120x90 image "
        "(--clip / clip_boxes=True clips it)",
        f"{path}: object 2: xmax (20.0) must not be less than xmin (30.0)",
    ]
    assert [str(p) for p in collect_problems(path, clip_boxes=True)][0] == (
        f"{path}: object 1: warning: box (-1.0, 4.0, 10.0, 20.0) clipped to the 120x90 image"
    )


# --- COCO ------------------------------------------------------------------------------------


def coco(annotations: list) -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 120, "height": 90},
                   {"id": 2, "file_name": "b.png", "width": 120, "height": 90}],
        "categories": [{"id": 7, "name": "5-?"}, {"id": 3, "name": "1-r"}],
        "annotations": annotations,
    }


def test_coco_boxes_categories_crowds_and_empty_images(tmp_path: Path):
    write_png(tmp_path / "a.png", 120, 90)
    write_png(tmp_path / "b.png", 120, 90)
    path = write_json(tmp_path / "train.json", coco([
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10.5, 20, 30, 40.25], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1},
    ]))
    assert detect_format(path) == "coco"
    data = read_annotations(path)
    first, second = data.records
    np.testing.assert_allclose(first.boxes, [[10.5, 20, 40.5, 60.25], [0, 0, 5, 5]])
    assert first.labels == ("5-?", "1-r") and first.difficult.tolist() == [False, True]
    assert second.num_boxes == 0 and second.path == str(tmp_path / "b.png")


def test_coco_problems_name_the_annotation_id(tmp_path: Path):
    write_png(tmp_path / "a.png", 120, 90)
    write_png(tmp_path / "b.png", 120, 90)
    path = write_json(tmp_path / "train.json", coco([
        {"id": 17, "image_id": 9, "category_id": 7, "bbox": [1, 2, 3, 4]},
        {"id": 18, "image_id": 1, "category_id": 8, "bbox": [1, 2, 3, 4]},
        {"id": 19, "image_id": 1, "category_id": 7, "bbox": [1, 2, 0, 4]},
        {"id": 20, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3]},
        {"id": 21, "image_id": 2, "category_id": 7, "bbox": [100, 2, 30, 4]},
    ]))
    assert [str(p) for p in collect_problems(path)] == [
        f"{path}: annotation 17: image_id 9 is not in 'images'",
        f"{path}: annotation 18: category_id 8 is not in 'categories'",
        f"{path}: annotation 19: bbox width (0.0) must be positive",
        f"{path}: annotation 20: bbox must be [x, y, width, height], not [1, 2, 3]",
        f"{path}: annotation 21: box (100.0, 2.0, 130.0, 6.0) extends outside the 120x90 image "
        "(--clip / clip_boxes=True clips it)",
    ]
    with pytest.raises(UserError) as raised:
        read_annotations(path)
    assert str(raised.value).startswith(f"{path}: annotation 17: image_id 9 is not in 'images' (and 4 more problems")


def test_a_folder_with_json_and_xml_needs_a_format(tmp_path: Path):
    write_json(tmp_path / "a.json", labelme([]))
    write_voc(tmp_path / "a.xml", [])
    with pytest.raises(UserError, match="both .json and .xml"):
        read_annotations(tmp_path)
    with pytest.raises(UserError, match="name the COCO file itself"):
        read_annotations(tmp_path, format="coco")


# --- images ----------------------------------------------------------------------------------


def record_for(path: Path, data: bytes | None = None) -> ImageRecord:
    return ImageRecord(path=str(path), boxes=np.zeros((0, 4)), labels=(), image_bytes=data)


def test_load_image_makes_every_image_8_bit_rgb(tmp_path: Path):
    grey = tmp_path / "grey.png"
    grey.write_bytes(png_bytes(7, 5, channels=1, value=200))
    image = load_image(record_for(grey))
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8 and (image == 200).all()

    deep = record_for(tmp_path / "deep.png", png_bytes(7, 5, channels=1, dtype=np.uint16, value=0x12F0))
    assert (load_image(deep) == 0x12).all() and load_image(deep).shape == (5, 7, 3)  # the high byte

    bgra = np.zeros((5, 7, 4), dtype=np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 10  # blue, nearly transparent
    rgba_path = tmp_path / "rgba.png"
    assert cv2.imwrite(str(rgba_path), bgra)
    image = load_image(record_for(rgba_path))
    assert image.shape == (5, 7, 3) and image[0, 0].tolist() == [0, 0, 255]
    assert read_image_size(record_for(rgba_path)) == (5, 7)


def test_unreadable_images_raise_a_user_error_naming_the_file(tmp_path: Path):
    missing = tmp_path / "missing.png"
    with pytest.raises(UserError, match=rf"^{missing}: cannot read image \(No such file or directory\)$"):
        load_image(record_for(missing))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(UserError, match=rf"^{junk}: cannot read image \("):
        read_image_size(record_for(junk))
    with pytest.raises(UserError, match="cannot read image"):
        load_image(record_for(missing, data=b""))
