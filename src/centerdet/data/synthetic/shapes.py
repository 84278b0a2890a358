"""Synthetic COCO-format shape detection data: a data set a small detector can learn on a CPU.

Categories (ids are stable; they are written to every annotation file):

    1 circle     circle or ellipse, stretched up to 2:1, any rotation
    2 rectangle  square or rectangle, stretched up to 2:1, rotated up to +-25 degrees
    3 triangle   irregular (non-degenerate) triangle, any rotation
    4 star       five-pointed star, mild stretch, any rotation
    5 cross      plus sign with arms of random thickness, stretched, any rotation
    6 ring       annulus (the background shows through the hole), mild stretch

Classes differ by geometry only: an object's colour is random, independent of its class, and
chosen far from the local background colour; most objects also get a dark or bright outline.

By default each image holds 1 to 8 objects (mean 4) whose tight boxes span ~0.08 to 0.5 of the image
side, on backgrounds of random clutter density; ``SceneOptions`` changes these (the demo uses a
gentler setting so that a detector trained from scratch learns it within minutes on a CPU).
Objects may overlap, but a placement is rejected if it would leave any earlier object less than
``MIN_VISIBLE`` visible. A box is the tight box of the object's full drawn mask (before later
objects occlude it), in COCO pixels: ``[x, y, w, h]`` with the mask covering columns
``x .. x + w - 1``.

Every image is drawn from its own generator seeded by ``(seed, split, index)``, so the output does
not depend on generation order, train and val never share an image, and a given seed reproduces
identical files.
"""
import dataclasses
import os

import cv2
import numpy as np

from centerdet.data.synthetic.textures import add_noise, clutter_background
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir, write_json

MIN_VISIBLE = 0.6
MIN_BOX_FRAC, MAX_BOX_FRAC = 0.08, 0.5
MAX_OBJECTS = 8
EXTRA_OBJECT_PROB = 3.0 / 7.0  # each image holds 1 + Binomial(max_objects - 1, p) objects: mean 4 of 8
MIN_SIZE = 64
SPLIT_IDS = {"train": 0, "val": 1}
JPEG_QUALITY = 90
PLACEMENT_TRIES = 20
SUBPIXEL_SHIFT = 4  # cv2 fixed-point bits: polygon vertices are placed to 1/16 pixel


def _unit_circle(n=72):
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _circle(rng):
    return _unit_circle(), None


def _rectangle(rng):
    return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64), None


def _triangle(rng):
    # Vertices near 120 degrees apart keep every interior angle well away from zero.
    angles = np.deg2rad(np.array([0.0, 120.0, 240.0]) + rng.uniform(-25, 25, size=3))
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), None


def _star(rng):
    inner = rng.uniform(0.38, 0.5)
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 1.0, inner)
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1), None


def _cross(rng):
    t = rng.uniform(0.22, 0.38)  # half arm thickness relative to half arm length
    pts = [(t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1),
           (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t), (-t, -1)]
    return np.array(pts, dtype=np.float64), None


def _ring(rng):
    circle = _unit_circle()
    return circle, circle * rng.uniform(0.45, 0.7)


@dataclasses.dataclass(frozen=True)
class ShapeKind:
    """One category: how to outline it in a unit frame and how far it may be stretched/rotated."""
    id: int
    name: str
    outline: object  # rng -> (outer polygon, hole polygon or None), coordinates in [-1, 1]
    max_aspect: float  # stretch factor drawn log-uniformly in [1/max_aspect, max_aspect]
    max_rotation_deg: float  # rotation drawn uniformly in [-max, max]


SHAPES = (
    ShapeKind(1, "circle", _circle, 2.0, 90.0),
    ShapeKind(2, "rectangle", _rectangle, 2.0, 25.0),
    ShapeKind(3, "triangle", _triangle, 1.6, 180.0),
    ShapeKind(4, "star", _star, 1.25, 180.0),
    ShapeKind(5, "cross", _cross, 1.6, 90.0),
    ShapeKind(6, "ring", _ring, 1.33, 90.0),
)
CLASSES = tuple(kind.name for kind in SHAPES)


@dataclasses.dataclass(frozen=True)
class Scene:
    """One rendered image with its ground truth; masks let tests check that boxes are tight."""
    image: np.ndarray       # (H, W, 3) uint8 BGR, what is written to disk
    background: np.ndarray  # (H, W, 3) uint8 BGR, the clutter before any object was drawn
    labels: np.ndarray      # (N,) int category ids
    boxes: np.ndarray       # (N, 4) float [x, y, w, h] tight boxes of the full masks
    masks: np.ndarray       # (N, H, W) bool full drawn masks
    visible: np.ndarray     # (N, H, W) bool parts not covered by later objects


def mask_box(mask):
    """Tight COCO box [x, y, w, h] of a non-empty boolean mask."""
    xs = np.flatnonzero(mask.any(axis=0))
    ys = np.flatnonzero(mask.any(axis=1))
    return np.array([xs[0], ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class SceneOptions:
    """How hard the scenes are: object size range (fraction of the image side), object count,
    and the range the per-image clutter density is drawn from (0 = plain gradient background)."""
    min_box_frac: float = MIN_BOX_FRAC
    max_box_frac: float = MAX_BOX_FRAC
    max_objects: int = MAX_OBJECTS
    clutter: tuple = (0.25, 1.0)

    def check(self):
        if not 0 < self.min_box_frac <= self.max_box_frac <= 1:
            raise CenterDetError(f"box size fractions must satisfy 0 < min ({self.min_box_frac}) <= "
                                 f"max ({self.max_box_frac}) <= 1")
        if not 1 <= self.max_objects <= 32:
            raise CenterDetError(f"max_objects must be in 1..32, got {self.max_objects}")
        lo, hi = self.clutter
        if not 0 <= lo <= hi <= 1:
            raise CenterDetError(f"clutter range must satisfy 0 <= low <= high <= 1, got {self.clutter}")


def _place_polygons(rng, kind, size, opts=SceneOptions()):
    """Stretch, rotate, scale and translate a shape's outline to a random spot inside the image."""
    outer, hole = kind.outline(rng)
    aspect = np.exp(rng.uniform(-np.log(kind.max_aspect), np.log(kind.max_aspect)))
    theta = np.deg2rad(rng.uniform(-kind.max_rotation_deg, kind.max_rotation_deg))
    stretch = np.array([np.sqrt(aspect), 1.0 / np.sqrt(aspect)])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    polys = [p for p in (outer, hole) if p is not None]
    polys = [(p * stretch) @ rot.T for p in polys]
    lo, hi = polys[0].min(axis=0), polys[0].max(axis=0)
    # Box sizes log-uniform: small objects are as common per octave as large ones.
    box_side = size * np.exp(rng.uniform(np.log(opts.min_box_frac), np.log(opts.max_box_frac)))
    scale = box_side / float((hi - lo).max())
    lo, hi = lo * scale, hi * scale
    offset = np.array([rng.uniform(-lo[0], size - 1 - hi[0]), rng.uniform(-lo[1], size - 1 - hi[1])])
    return [p * scale + offset for p in polys]


def _rasterize(polys, size):
    """Binary mask of the outer polygon minus the optional hole, at sub-pixel vertex precision."""
    mask = np.zeros((size, size), dtype=np.uint8)
    fixed = [np.round(p * (1 << SUBPIXEL_SHIFT)).astype(np.int32) for p in polys]
    cv2.fillPoly(mask, [fixed[0]], 1, cv2.LINE_8, shift=SUBPIXEL_SHIFT)
    if len(fixed) > 1:
        cv2.fillPoly(mask, [fixed[1]], 0, cv2.LINE_8, shift=SUBPIXEL_SHIFT)
    return mask.astype(bool)


def _contrasting_colour(rng, reference, candidates=16, min_distance=120.0):
    """A random colour at least ``min_distance`` (RGB L2) from ``reference``, else the farthest tried."""
    colours = rng.uniform(0, 255, size=(candidates, 3))
    dist = np.linalg.norm(colours - reference, axis=1)
    ok = np.flatnonzero(dist >= min_distance)
    return colours[ok[0]] if ok.size else colours[np.argmax(dist)]


def _paint(rng, canvas, mask, box):
    """Fill ``mask`` on ``canvas`` (in place) with a shaded, noisy colour and maybe an outline."""
    x, y, w, h = (int(v) for v in box)
    pad = 3
    y0, y1 = max(0, y - pad), min(canvas.shape[0], y + h + pad)
    x0, x1 = max(0, x - pad), min(canvas.shape[1], x + w + pad)
    region = canvas[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    colour = _contrasting_colour(rng, region.reshape(-1, 3).mean(axis=0))

    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xx * np.cos(angle) + yy * np.sin(angle)
    ramp = (ramp - ramp.mean()) / max(float(np.abs(ramp).max()), 1.0)
    fill = colour[None, None, :] + rng.uniform(0, 35) * ramp[..., None]
    fill += rng.normal(0, rng.uniform(0, 8), size=fill.shape)

    if rng.random() < 0.7:
        thickness = 2 if min(w, h) >= 24 else 1
        inner = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=thickness)
        edge = m & ~inner.astype(bool)
        bright = colour.mean() < 128
        fill[edge] = colour * 0.4 + 255 * 0.6 if bright else colour * 0.25
    region[m] = np.clip(fill, 0, 255).astype(np.uint8)[m]


def render_scene(rng, size, num_classes=len(SHAPES), opts=SceneOptions()):
    """Draw one image with 1..max_objects objects of the first ``num_classes`` categories."""
    background = clutter_background(rng, (size, size), density=rng.uniform(*opts.clutter))
    canvas = background.copy()
    n_wanted = 1 + int(rng.binomial(opts.max_objects - 1, EXTRA_OBJECT_PROB))
    labels, boxes, masks, visible = [], [], [], []
    for _ in range(n_wanted):
        kind = SHAPES[int(rng.integers(0, num_classes))]
        for _ in range(PLACEMENT_TRIES):
            mask = _rasterize(_place_polygons(rng, kind, size, opts), size)
            if not mask.any():
                continue
            box = mask_box(mask)
            if box[2] < 2 or box[3] < 2:
                continue
            if visible:
                still = np.stack(visible) & ~mask
                if np.any(still.sum(axis=(1, 2)) < MIN_VISIBLE * np.stack(masks).sum(axis=(1, 2))):
                    continue
                visible = list(still)
            _paint(rng, canvas, mask, box)
            labels.append(kind.id)
            boxes.append(box)
            masks.append(mask)
            visible.append(mask.copy())
            break
    image = add_noise(rng, canvas, rng.uniform(1.0, 4.0))
    empty = np.zeros((0, size, size), dtype=bool)
    return Scene(
        image=image,
        background=background,
        labels=np.array(labels, dtype=np.int64),
        boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
        masks=np.stack(masks) if masks else empty,
        visible=np.stack(visible) if visible else empty,
    )


def scene_rng(seed, split, index):
    """The generator for one image: independent of every other (seed, split, index)."""
    return np.random.default_rng([int(seed), SPLIT_IDS[split], int(index)])


def render_coco_image(seed, split, index, size=256, num_classes=len(SHAPES), opts=SceneOptions()):
    """Re-render exactly the scene that ``generate_coco`` wrote for image ``index`` (0-based) of ``split``."""
    return render_scene(scene_rng(seed, split, index), size, num_classes, opts)


def _categories(num_classes):
    return [{"id": k.id, "name": k.name, "supercategory": "shape"} for k in SHAPES[:num_classes]]


def _write_split(out_dir, split, n, size, seed, num_classes, progress, opts):
    image_dir = ensure_writable_dir(os.path.join(out_dir, "images", split))
    digits = max(6, len(str(n)))
    images, annotations = [], []
    indices = range(n)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc=split, unit="img", disable=n < 100, leave=False)
    for index in indices:
        scene = render_coco_image(seed, split, index, size, num_classes, opts)
        image_id = index + 1
        file_name = f"{image_id:0{digits}d}.jpg"
        path = os.path.join(image_dir, file_name)
        if not cv2.imwrite(path, scene.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise CenterDetError(f"could not write image: {path}")
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for label, box in zip(scene.labels, scene.boxes):
            x, y, w, h = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
            })
    info = {"description": "centerdet synthetic shapes", "version": "1.0", "split": split,
            "seed": seed, "size": size, "options": dataclasses.asdict(opts)}
    coco = {"info": info, "images": images, "annotations": annotations,
            "categories": _categories(num_classes)}
    json_path = os.path.join(out_dir, "annotations", f"{split}.json")
    write_json(json_path, coco)
    per_class = {k.name: 0 for k in SHAPES[:num_classes]}
    for ann in annotations:
        per_class[SHAPES[ann["category_id"] - 1].name] += 1
    return {"images": n, "objects": len(annotations), "per_class": per_class, "json": json_path}


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_args(n_train, n_val, size, seed, num_classes):
    for name, value in (("n_train (--train)", n_train), ("n_val (--val)", n_val), ("seed", seed)):
        if not _is_int(value) or value < 0:
            raise CenterDetError(f"{name} must be a non-negative integer, got {value!r}")
    if not _is_int(size) or size < MIN_SIZE:
        raise CenterDetError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")
    if not _is_int(num_classes) or not 1 <= num_classes <= len(SHAPES):
        raise CenterDetError(f"num_classes must be an integer in 1..{len(SHAPES)}, got {num_classes!r}")


def generate_coco(out_dir, n_train, n_val, size=256, seed=0, num_classes=None, progress=False,
                  opts=SceneOptions()):
    """Write the train and val splits under ``out_dir``; returns a summary per split.

    Layout: ``annotations/{split}.json`` and ``images/{split}/NNNNNN.jpg`` (file_name in the json
    is relative to the image folder).
    """
    num_classes = len(SHAPES) if num_classes is None else num_classes
    _check_args(n_train, n_val, size, seed, num_classes)
    opts.check()
    out_dir = ensure_writable_dir(os.fspath(out_dir))
    return {split: _write_split(out_dir, split, int(n), int(size), int(seed), int(num_classes), progress, opts)
            for split, n in (("train", n_train), ("val", n_val))}
