"""COCO-format reader: category mapping, box cleaning with counts, and errors naming the culprit."""
import json

import numpy as np
import pytest

from centerdet.data.coco import DetectionDataset
from centerdet.errors import CenterDetError


def write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def base():
    return {
        "images": [{"id": 5, "file_name": "a.jpg", "width": 100, "height": 80},
                   {"id": 9, "file_name": "b.jpg", "width": 50, "height": 50}],
        "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 44, "name": "bottle"}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 44, "bbox": [10, 10, 20, 30], "iscrowd": 0},
            {"id": 2, "image_id": 5, "category_id": 90, "bbox": [90, 70, 20, 20], "iscrowd": 1},   # clipped
            {"id": 3, "image_id": 5, "category_id": 1, "bbox": [5, 5, 0, 10]},                     # zero width
            {"id": 4, "image_id": 5, "category_id": 1, "bbox": [200, 5, 10, 10]},                  # outside
            {"id": 5, "image_id": 5, "category_id": 1, "bbox": [1, 2, float("nan"), 3]},           # NaN
        ],
    }


def test_categories_map_to_contiguous_labels_in_id_order(tmp_path):
    data = DetectionDataset(write(tmp_path, base()), str(tmp_path))
    assert data.cat_ids == [1, 44, 90] and data.class_names == ["person", "bottle", "toothbrush"]
    assert data.label_to_cat_id(2) == 90
    image = data.images[0]
    assert image.labels.tolist() == [1, 2]
    np.testing.assert_allclose(image.boxes, [[10, 10, 30, 40], [90, 70, 100, 80]])
    assert image.crowd.tolist() == [False, True]
    assert (data.stats.clipped, data.stats.dropped, data.stats.crowd) == (1, 3, 1)
    assert len(data) == 2  # images without boxes stay for evaluation
    assert len(DetectionDataset(write(tmp_path, base()), str(tmp_path), require_annotations=True)) == 1


def test_unknown_category_names_the_annotation(tmp_path):
    data = base()
    data["annotations"][0]["category_id"] = 12
    with pytest.raises(CenterDetError, match="annotation id 1 has category_id 12"):
        DetectionDataset(write(tmp_path, data), str(tmp_path))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("images"), "missing top-level key 'images'"),
    (lambda d: d.pop("categories"), "missing top-level key 'categories'"),
    (lambda d: d["annotations"][1].pop("bbox"), "annotation id 2 has no 'bbox'"),
    (lambda d: d["images"][0].pop("width"), "image id 5 has no 'width'"),
    (lambda d: d["annotations"][0].update(image_id=77), "annotation id 1 refers to image_id 77"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"annotation id 1 bbox must be \[x, y, w, h\]"),
    (lambda d: d.update(categories=[]), "'categories' is empty"),
])
def test_malformed_json_is_a_one_line_error(tmp_path, mutate, message):
    data = base()
    mutate(data)
    with pytest.raises(CenterDetError, match=message):
        DetectionDataset(write(tmp_path, data), str(tmp_path))


def test_unreadable_files(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(CenterDetError, match="empty"):
        DetectionDataset(str(empty), str(tmp_path))
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(CenterDetError, match="not valid json.*broken.json"):
        DetectionDataset(str(broken), str(tmp_path))
    with pytest.raises(CenterDetError, match="not found"):
        DetectionDataset(str(tmp_path / "nope.json"), str(tmp_path))
