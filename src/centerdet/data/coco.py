"""COCO-format annotation files, with or without keypoints: real COCO 2017, the CenterFace face
json (one category, five keypoints per face) and any custom COCO-style data set.

Categories are mapped to contiguous labels in ascending id order (COCO's 80 ids 1..90 → 0..79)
and back when results are written; an annotation may leave out ``category_id`` where there is only
one category, and a file whose annotations name none may leave out ``categories`` (one class). Boxes are float32 [x1, y1, x2, y2] pixels, keypoints (x, y) pixels with a visibility
flag (COCO's v > 0; missing or non-finite points are (0, 0) and not visible). Problems that make
the file unusable are one-line errors naming the file and the entry; boxes that are degenerate or
overflow the image are dropped or clipped and counted, keypoints outside the image hidden.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from centerdet.errors import CenterDetError
from centerdet.fileio import read_json, write_json


@dataclasses.dataclass
class BoxStats:
    clipped: int = 0
    dropped: int = 0
    crowd: int = 0

    def summary(self):
        return f"{self.clipped} boxes clipped to the image, {self.dropped} degenerate boxes dropped"


@dataclasses.dataclass
class ImageRecord:
    """One annotated image: what every reader returns and the MindRecord writer stores."""
    id: int
    file_name: str                  # relative to the image folder
    width: int                      # 0 when the file gives no size (WIDER label.txt)
    height: int
    boxes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.int32))
    crowd: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), bool))
    keypoints: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 2), np.float32))
    visible: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), bool))

    def target(self) -> Dict[str, np.ndarray]:
        """The sample's target dict: boxes, labels, crowd, and keypoints + visible if it has any."""
        t = {"boxes": self.boxes, "labels": self.labels, "crowd": self.crowd}
        if self.keypoints.shape[1]:
            t.update(keypoints=self.keypoints, visible=self.visible)
        return t


def make_record(image_id, file_name, width, height, boxes, labels=None, crowd=None, keypoints=None,
                visible=None, num_keypoints=0) -> ImageRecord:
    """An ImageRecord from array-likes; labels default to 0, crowd to False, keypoints to missing."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return ImageRecord(
        int(image_id), str(file_name), int(width), int(height), boxes,
        np.zeros(n, np.int32) if labels is None else np.asarray(labels, np.int32).reshape(n),
        np.zeros(n, bool) if crowd is None else np.asarray(crowd, bool).reshape(n),
        np.zeros((n, num_keypoints, 2), np.float32) if keypoints is None
        else np.asarray(keypoints, np.float32).reshape(n, num_keypoints, 2),
        np.zeros((n, num_keypoints), bool) if visible is None else np.asarray(visible, bool).reshape(n, num_keypoints))


def clean_record(record: ImageRecord, width: int, height: int, stats: BoxStats) -> ImageRecord:
    """Boxes clipped to the image (counted), those with nothing left inside it (also once stored as
    float32) dropped (counted); keypoints outside the image keep their coordinates but are hidden."""
    boxes = record.boxes.astype(np.float64)
    finite = np.isfinite(boxes).all(axis=1)
    clipped = np.clip(np.where(finite[:, None], boxes, 0.0), 0, [width, height, width, height])
    f32 = clipped.astype(np.float32)
    keep = finite & (f32[:, 2] > f32[:, 0]) & (f32[:, 3] > f32[:, 1])
    stats.dropped += int(np.count_nonzero(~keep))
    stats.clipped += int(np.count_nonzero(keep & (clipped != boxes).any(axis=1)))
    points = record.keypoints[keep]
    inside = ((points[..., 0] >= 0) & (points[..., 0] < width) & (points[..., 1] >= 0) & (points[..., 1] < height))
    return dataclasses.replace(record, width=int(width), height=int(height), boxes=f32[keep],
                               labels=record.labels[keep], crowd=record.crowd[keep], keypoints=points.copy(),
                               visible=record.visible[keep] & inside)


def valid_box(xywh, stats: BoxStats) -> bool:
    """False (and counted) for a box the file gives with no area, also once stored as float32
    corners (a huge x overflows, a tiny w vanishes next to a large x); such objects are dropped."""
    with np.errstate(over="ignore", invalid="ignore"):
        x1, y1, x2, y2 = np.array([xywh[0], xywh[1], xywh[0] + xywh[2], xywh[1] + xywh[3]], np.float32)
    if (not np.isfinite(xywh).all() or xywh[2] <= 0 or xywh[3] <= 0
            or not np.isfinite([x1, y1, x2, y2]).all() or x2 <= x1 or y2 <= y1):
        stats.dropped += 1
        return False
    return True


def clean_keypoints(points: np.ndarray, visible: np.ndarray):
    """Missing or non-finite points (also once stored as float32) become (0, 0), not visible."""
    with np.errstate(over="ignore", invalid="ignore"):
        visible = visible & np.isfinite(points.astype(np.float32)).all(axis=1)
    return np.where(visible[:, None], points, 0.0), visible


def _short(value, limit=60):
    """repr of a json value cut to ``limit`` characters, for one-line messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _require(entry, keys, path, what):
    if not isinstance(entry, dict):
        raise CenterDetError(f"{path}: every {what} must be a json object, got {type(entry).__name__} "
                             f"{_short(entry)}")
    for key in keys:
        if key not in entry:
            raise CenterDetError(f"{path}: {what} id {entry.get('id', '?')} has no '{key}' field")


def _int_field(entry, key, path, what):
    """``entry[key]`` as an int, or an error naming the file, the entry and the field."""
    try:
        return int(entry[key])
    except (TypeError, ValueError, OverflowError):
        raise CenterDetError(f"{path}: {what} id {_short(entry.get('id', '?'))} has '{key}' {_short(entry[key])}; "
                             "expected an integer") from None


def _lookup(mapping, key):
    """``mapping.get(key)``, None for keys json can give that are not hashable (lists, objects)."""
    try:
        return mapping.get(key)
    except TypeError:
        return None


def _categories(data, path):
    cats = {}
    for c in data["categories"]:
        _require(c, ("id", "name"), path, "category")
        cid = _int_field(c, "id", path, "category")
        if cid in cats:
            raise CenterDetError(f"{path}: category id {cid} is listed twice; give every category one unique id")
        cats[cid] = str(c["name"])
    if not cats:
        raise CenterDetError(f"{path}: 'categories' is empty")
    return cats


def _box_and_points(ann, path, num_keypoints):
    """(xywh float64, (K, 2) keypoints, (K,) visible) of one annotation."""
    bbox = ann["bbox"]
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise CenterDetError(f"{path}: annotation id {ann['id']} bbox must be [x, y, w, h]")
    try:
        xywh = np.array([float(v) for v in bbox], np.float64)
    except (TypeError, ValueError, OverflowError):
        raise CenterDetError(f"{path}: annotation id {ann['id']} bbox {_short(bbox)} must be 4 numbers "
                             "[x, y, w, h]") from None
    kps = ann.get("keypoints", [0] * 3 * num_keypoints) if num_keypoints else []
    if not isinstance(kps, (list, tuple)) or len(kps) != 3 * num_keypoints:
        n = len(kps) if isinstance(kps, (list, tuple)) else type(kps).__name__
        raise CenterDetError(f"{path}: annotation id {ann['id']} has {n} keypoint values; expected "
                             f"{3 * num_keypoints} (x, y, v for each of {num_keypoints} points)")
    try:
        triples = np.array(kps, np.float64).reshape(num_keypoints, 3)
    except (TypeError, ValueError, OverflowError):
        raise CenterDetError(f"{path}: annotation id {ann['id']} has non-numeric keypoints") from None
    points, visible = clean_keypoints(triples[:, :2], triples[:, 2] > 0)
    return xywh, points, visible


def read_coco_json(path: str, num_keypoints: int = 0, stats: Optional[BoxStats] = None, keep_crowd: bool = True):
    """(records in image id order, {category id: name}) of a COCO-format json as written, but for
    boxes without area (dropped, counted). Without ``keep_crowd``, crowd annotations are left out."""
    stats = BoxStats() if stats is None else stats
    data = read_json(path, "annotation file")
    if not isinstance(data, dict):
        raise CenterDetError(f"{path}: expected a COCO json object with 'images' and 'categories'")
    if "images" not in data:
        raise CenterDetError(f"{path}: missing top-level key 'images'")
    for key in ("images", "categories", "annotations"):
        if key in data and not isinstance(data[key], list):
            raise CenterDetError(f"{path}: top-level '{key}' must be a list, got {type(data[key]).__name__}")
    named = any(isinstance(a, dict) and "category_id" in a for a in data.get("annotations", []))
    if "categories" not in data and named:
        raise CenterDetError(f"{path}: missing top-level key 'categories'")
    cats = _categories(data, path) if "categories" in data else {1: "object"}
    cat_to_label = {cid: i for i, cid in enumerate(sorted(cats))}
    images, names = {}, {}
    for im in data["images"]:
        _require(im, ("id", "file_name", "width", "height"), path, "image")
        image_id = _int_field(im, "id", path, "image")
        if image_id in images:
            raise CenterDetError(f"{path}: image id {image_id} is listed twice; give every image one unique id")
        name = str(im["file_name"])
        if name in names:
            raise CenterDetError(f"{path}: image file_name '{name}' is listed twice (image ids {names[name]} and "
                                 f"{image_id}); give every image one entry")
        names[name] = image_id
        images[image_id] = (name, _int_field(im, "width", path, "image"), _int_field(im, "height", path, "image"), [])
    single = next(iter(cats)) if len(cats) == 1 else None
    required = ("id", "image_id", "bbox") if single is not None else ("id", "image_id", "category_id", "bbox")
    for ann in data.get("annotations", []):
        _require(ann, required, path, "annotation")
        label = _lookup(cat_to_label, ann.get("category_id", single))
        if label is None:
            raise CenterDetError(f"{path}: annotation id {ann['id']} has category_id {_short(ann['category_id'])}, "
                                 f"which is not in 'categories' {_short(sorted(cats))}")
        image = _lookup(images, ann["image_id"]) if isinstance(ann["image_id"], (list, dict)) else \
            images.get(_int_field(ann, "image_id", path, "annotation"))
        if image is None:
            raise CenterDetError(f"{path}: annotation id {ann['id']} refers to image_id {_short(ann['image_id'])}, "
                                 "which is not in 'images'")
        xywh, points, visible = _box_and_points(ann, path, num_keypoints)
        crowd = bool(ann.get("iscrowd", 0))
        if not valid_box(xywh, stats):
            continue
        stats.crowd += crowd
        if crowd and not keep_crowd:
            continue
        image[3].append((xywh, label, crowd, points, visible))
    records = []
    for image_id in sorted(images):
        name, width, height, anns = images[image_id]
        boxes = np.array([[x, y, x + w, y + h] for (x, y, w, h), *_ in anns], np.float64)
        records.append(ImageRecord(image_id, name, width, height, boxes.astype(np.float32).reshape(-1, 4),
                                   np.array([a[1] for a in anns], np.int32), np.array([a[2] for a in anns], bool),
                                   np.array([a[3] for a in anns], np.float32).reshape(len(anns), num_keypoints, 2),
                                   np.array([a[4] for a in anns], bool).reshape(len(anns), num_keypoints)))
    return records, cats


class DetectionDataset:
    """Images and their annotations from one annotation file + image folder: a COCO-format json,
    or (with five keypoints) a WIDER FACE RetinaFace label.txt.

    ``require_annotations``: keep only images with at least one box (training); evaluation keeps
    every image so that missed detections and false positives count. ``keep_crowd``: crowd boxes
    stay (flagged) or are left out. label.txt gives no image sizes: its boxes are clipped once the
    image is decoded (:meth:`sized`).
    """

    def __init__(self, ann_file: str, img_dir: str, require_annotations: bool = False, num_keypoints: int = 0,
                 keep_crowd: bool = True):
        self.ann_file, self.img_dir, self.num_keypoints = ann_file, img_dir, num_keypoints
        self.stats = BoxStats()
        if os.path.splitext(os.fspath(ann_file))[1].lower() == ".txt":
            from centerdet.data.widerface import FACE_CATEGORY, read_label_txt

            if num_keypoints not in (0, 5):
                raise CenterDetError(f"{ann_file}: a label.txt holds five landmarks per face, this task reads "
                                     f"{num_keypoints} keypoints; use a COCO-format json")
            images, cats = read_label_txt(ann_file, self.stats), {FACE_CATEGORY["id"]: FACE_CATEGORY["name"]}
            if not num_keypoints:
                images = [dataclasses.replace(im, keypoints=im.keypoints[:, :0], visible=im.visible[:, :0])
                          for im in images]
        else:
            images, cats = read_coco_json(ann_file, num_keypoints, self.stats, keep_crowd)
        images = [clean_record(im, im.width, im.height, self.stats) if _has_size(im) else im for im in images]
        self.cat_ids = sorted(cats)
        self.class_names = [cats[cid] for cid in self.cat_ids]
        # Images left without a box (none annotated, or all dropped): skipped for training, counted.
        self.num_without_boxes = sum(1 for im in images if not len(im.boxes))
        self.images = [im for im in images if not require_annotations or len(im.boxes)]

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def __len__(self):
        return len(self.images)

    def image_path(self, image: ImageRecord) -> str:
        return os.path.join(self.img_dir, image.file_name)

    def label_to_cat_id(self, label) -> int:
        return self.cat_ids[int(label)]

    def sized(self, image: ImageRecord, width: int, height: int) -> ImageRecord:
        """The record for its decoded image of width × height: a record that states its size was
        cleaned when read; one without (label.txt) is cleaned now (clip, drop, hide: clean_record)."""
        return image if _has_size(image) else clean_record(image, width, height, self.stats)


def _has_size(image: ImageRecord) -> bool:
    return image.width > 0 and image.height > 0


def write_coco_json(path: str, images: Sequence[ImageRecord], categories: List[Dict], info: Optional[Dict] = None,
                    attrs: Optional[Sequence[Dict]] = None) -> None:
    """Write a COCO-format json (atomic), keypoints as (x, y, 2) when visible and (0, 0, 0) when
    not; ``attrs``: per-image {key: per-object values} copied into each annotation."""
    from centerdet.data.widerface import box_texts, f32_text

    cat_ids = sorted(c["id"] for c in categories)
    out_images, annotations = [], []
    for index, im in enumerate(images):
        out_images.append({"id": int(im.id), "file_name": im.file_name, "width": int(im.width),
                           "height": int(im.height)})
        for k, box in enumerate(im.boxes):
            x, y, w, h = (float(t) for t in box_texts(box))
            ann = {"id": len(annotations) + 1, "image_id": int(im.id), "category_id": cat_ids[int(im.labels[k])],
                   "iscrowd": int(im.crowd[k]), "bbox": [x, y, w, h], "area": w * h}
            if im.keypoints.shape[1]:
                kps = []
                for (px, py), vis in zip(im.keypoints[k], im.visible[k]):
                    kps += [float(f32_text(px)), float(f32_text(py)), 2] if vis else [0, 0, 0]
                ann.update(keypoints=kps, num_keypoints=int(np.count_nonzero(im.visible[k])))
            if attrs is not None:
                ann.update({key: int(values[k]) for key, values in attrs[index].items()})
            annotations.append(ann)
    data = {"images": out_images, "annotations": annotations, "categories": list(categories)}
    write_json(path, data if info is None else {"info": info, **data})


def resolve(data_dir: str, path: str) -> str:
    """Config paths are relative to data_dir unless absolute."""
    return path if os.path.isabs(path) or not data_dir else os.path.join(data_dir, path)


def split_paths(cfg, split: str):
    """(annotation file, image folder) of split 'train' | 'val' | 'test' from the config."""
    ann = getattr(cfg, f"{split}_ann_file")
    img = getattr(cfg, f"{split}_img_dir")
    return resolve(cfg.data_dir, ann), resolve(cfg.data_dir, img)
