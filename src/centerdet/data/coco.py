"""COCO-format annotation reader for real COCO 2017 and any custom COCO-style dataset.

Categories are mapped to contiguous indices in ascending id order (COCO's 80 ids 1..90 → 0..79)
and back when writing results. Boxes are returned as float32 [x1, y1, x2, y2] in pixels.
Problems that make the file unusable are errors naming the file and the offending entry; boxes
that are merely degenerate or overflow the image are clipped or dropped and counted.
"""
import os
from dataclasses import dataclass, field

import numpy as np

from centerdet.errors import CenterDetError
from centerdet.fileio import read_json


@dataclass
class BoxStats:
    clipped: int = 0
    dropped: int = 0
    crowd: int = 0

    def summary(self):
        return f"{self.clipped} boxes clipped to the image, {self.dropped} degenerate boxes dropped"


@dataclass
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    crowd: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))


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


def _clean_box(xywh, width, height, stats):
    """xywh → clipped xyxy, or None when nothing of positive size is left inside the image (also
    once stored as float32, which is what the caller keeps)."""
    x, y, w, h = xywh
    if not np.isfinite([x, y, w, h]).all() or w <= 0 or h <= 0:
        stats.dropped += 1
        return None
    x1, y1, x2, y2 = x, y, x + w, y + h
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    with np.errstate(over="ignore"):
        f32 = np.array([cx1, cy1, cx2, cy2], np.float32)
    if not np.isfinite(f32).all() or f32[2] <= f32[0] or f32[3] <= f32[1]:
        stats.dropped += 1
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        stats.clipped += 1
    return [cx1, cy1, cx2, cy2]


class CocoDataset:
    """Images and their boxes from one COCO json + image folder.

    ``require_annotations``: keep only images with at least one box (training); evaluation keeps
    every image so that missed detections count.
    """

    def __init__(self, ann_file, img_dir, require_annotations=False):
        self.ann_file, self.img_dir = ann_file, img_dir
        data = read_json(ann_file, "annotation file")
        if not isinstance(data, dict):
            raise CenterDetError(f"{ann_file}: expected a COCO json object with 'images' and 'categories'")
        for key in ("images", "categories"):
            if key not in data:
                raise CenterDetError(f"{ann_file}: missing top-level key '{key}'")
        for key in ("images", "categories", "annotations"):
            if key in data and not isinstance(data[key], list):
                raise CenterDetError(f"{ann_file}: top-level '{key}' must be a list, got {type(data[key]).__name__}")
        cats = {}
        for c in data["categories"]:
            _require(c, ("id", "name"), ann_file, "category")
            cid = _int_field(c, "id", ann_file, "category")
            if cid in cats:
                raise CenterDetError(f"{ann_file}: category id {cid} is listed twice; give every category "
                                     "one unique id")
            cats[cid] = str(c["name"])
        if not cats:
            raise CenterDetError(f"{ann_file}: 'categories' is empty")
        self.cat_ids = sorted(cats)
        self.class_names = [cats[cid] for cid in self.cat_ids]
        self.cat_to_label = {cid: i for i, cid in enumerate(self.cat_ids)}
        self.stats = BoxStats()

        images = {}
        for im in data["images"]:
            _require(im, ("id", "file_name", "width", "height"), ann_file, "image")
            image_id = _int_field(im, "id", ann_file, "image")
            if image_id in images:
                raise CenterDetError(f"{ann_file}: image id {image_id} is listed twice; give every image "
                                     "one unique id")
            images[image_id] = CocoImage(image_id, str(im["file_name"]), _int_field(im, "width", ann_file, "image"),
                                         _int_field(im, "height", ann_file, "image"))
        per_image = {}
        for ann in data.get("annotations", []):
            _require(ann, ("id", "image_id", "category_id", "bbox"), ann_file, "annotation")
            label = _lookup(self.cat_to_label, ann["category_id"])
            if label is None:
                raise CenterDetError(f"{ann_file}: annotation id {ann['id']} has category_id "
                                     f"{_short(ann['category_id'])}, which is not in 'categories' "
                                     f"{_short(self.cat_ids)}")
            image = images.get(_int_field(ann, "image_id", ann_file, "annotation"))
            if image is None:
                raise CenterDetError(f"{ann_file}: annotation id {ann['id']} refers to image_id "
                                     f"{ann['image_id']}, which is not in 'images'")
            bbox = ann["bbox"]
            if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
                raise CenterDetError(f"{ann_file}: annotation id {ann['id']} bbox must be [x, y, w, h]")
            try:
                xywh = [float(v) for v in bbox]
            except (TypeError, ValueError, OverflowError):
                raise CenterDetError(f"{ann_file}: annotation id {ann['id']} bbox {_short(bbox)} must be 4 numbers "
                                     "[x, y, w, h]") from None
            box = _clean_box(xywh, image.width, image.height, self.stats)
            if box is None:
                continue
            crowd = bool(ann.get("iscrowd", 0))
            self.stats.crowd += crowd
            per_image.setdefault(image.id, []).append((box, label, crowd))
        for image_id, items in per_image.items():
            im = images[image_id]
            im.boxes = np.array([b for b, _, _ in items], np.float32).reshape(-1, 4)
            im.labels = np.array([lab for _, lab, _ in items], np.int32)
            im.crowd = np.array([c for _, _, c in items], bool)
        # Images left without a box (none annotated, or all dropped): skipped for training, counted.
        self.num_without_boxes = sum(1 for im in images.values() if not len(im.boxes))
        self.images = [images[i] for i in sorted(images)
                       if not require_annotations or len(images[i].boxes)]

    @property
    def num_classes(self):
        return len(self.cat_ids)

    def __len__(self):
        return len(self.images)

    def image_path(self, image):
        return os.path.join(self.img_dir, image.file_name)

    def label_to_cat_id(self, label):
        return self.cat_ids[int(label)]


def resolve(data_dir, path):
    """Config paths are relative to data_dir unless absolute."""
    return path if os.path.isabs(path) or not data_dir else os.path.join(data_dir, path)


def split_paths(cfg, split):
    """(annotation json, image folder) of split 'train' | 'val' | 'test' from the config."""
    ann = getattr(cfg, f"{split}_ann_file")
    img = getattr(cfg, f"{split}_img_dir")
    return resolve(cfg.data_dir, ann), resolve(cfg.data_dir, img)
