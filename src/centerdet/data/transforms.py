"""Training augmentation and input normalisation, as pure numpy + OpenCV functions.

One pipeline for every task, acting on whatever a sample's target holds (boxes, and keypoints
with their visibility): optional data-anchor-sampling, a random crop (the affine warp's centre and
scale), rotation, horizontal flip (keypoints swap left/right slots by the task's flip order),
colour jitter + PCA lighting on the [0, 1] image. Everything takes an explicit ``rng``.
"""
import math
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from centerdet.geometry import affine_transform, get_affine_transform

DAS_ANCHORS = (16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 128, 256, 512)
_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)


def aug_params(cfg) -> Dict:
    """The augmentation settings of a config, as train_sample takes them."""
    keys = ("rand_crop", "crop_scales", "crop_border", "scale", "shift", "flip_prop", "rotate", "aug_rot",
            "color_aug", "eig_val", "eig_vec", "anchor_sampling", "min_landmark_area")
    return {k: getattr(cfg, k) for k in keys}


def _border(border, size):
    i = 1
    while size - border // i <= border // i:
        i *= 2
    return border // i


def random_crop(rng, height, width, crop_scales, crop_border=(128,)):
    """Crop centre (x, y) and side: the side is max(height, width) times a scale from
    ``crop_scales``; the centre stays a border away from the edges, the border picked from
    ``crop_border`` (pixels when >= 1, else a fraction of the side) and halved until it fits."""
    s = float(max(height, width)) * float(rng.choice(crop_scales))
    b = float(rng.choice(crop_border)) if len(crop_border) > 1 else float(crop_border[0])
    border = b if b >= 1 else s * b
    c = np.zeros(2, np.float32)
    for axis, size in enumerate((width, height)):
        edge = int(_border(border, size))
        c[axis] = rng.integers(edge, size - edge)
    return c, s


def random_center_scale(rng, height, width, scale=0.4, shift=0.1):
    """Without a random crop: the image centre shifted and the side scaled by clipped gaussians."""
    c = np.array([width / 2.0, height / 2.0], np.float32)
    s = float(max(height, width))
    c[0] += s * np.clip(rng.standard_normal() * shift, -2 * shift, 2 * shift)
    c[1] += s * np.clip(rng.standard_normal() * shift, -2 * shift, 2 * shift)
    s *= np.clip(rng.standard_normal() * scale + 1, 1 - scale, 1 + scale)
    return c, s


def data_anchor_sampling(rng, img, boxes, points=None, anchors=DAS_ANCHORS, max_pixels=12000 ** 2):
    """Resize the whole image so one random object matches an anchor no larger than its nearest one.

    Returns (img, boxes, points, ratio); without objects the inputs come back with ratio 1.
    """
    if len(boxes) == 0:
        return img, boxes, points, 1.0
    height, width = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in boxes[rng.integers(len(boxes))])
    side = math.sqrt((x2 - x1 + 1) * (y2 - y1 + 1))
    anchors = np.asarray(anchors, np.float64)
    k = int(np.argmin(np.abs(anchors - side)))
    # Targets never exceed the nearest anchor (nor 96 px): DAS shifts the size distribution to small objects.
    target = float(rng.choice(anchors[:min(k + 1, 11)]))
    ratio = target / side * 2.0 ** rng.uniform(-1, 1)
    if height * width * ratio * ratio > max_pixels:
        ratio = math.sqrt(max_pixels / (height * width))
    # Floor keeps the resized image within max_pixels; annotations use the exact ratio.
    size = (max(1, int(width * ratio)), max(1, int(height * ratio)))
    img = cv2.resize(img, size, interpolation=_INTERPOLATIONS[rng.integers(len(_INTERPOLATIONS))])
    return img, boxes * ratio, None if points is None else points * ratio, ratio


def flip_boxes(boxes, width):
    """Mirror xyxy boxes in an image of the given width (pixel-index convention: x → W − x − 1)."""
    out = boxes.copy()
    out[:, 0] = width - boxes[:, 2] - 1
    out[:, 2] = width - boxes[:, 0] - 1
    return out


def flip_points(points, visible, width, order):
    """Mirror (N, K, 2) keypoints (x → W − x − 1) and put them into their mirrored slots ``order``."""
    points = points.copy()
    points[..., 0] = width - points[..., 0] - 1
    order = list(order)
    return points[:, order], visible[:, order]


def transform_boxes(boxes, trans, out_w, out_h):
    """Map xyxy boxes through an affine (the box enclosing all four mapped corners, so rotations
    are covered) and clip to the output; returns float32 (N, 4)."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x1, y2], 1),
                        np.stack([x2, y2], 1)], 1)
    mapped = affine_transform(corners, trans)
    out = np.concatenate([mapped.min(1), mapped.max(1)], 1)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, out_w - 1)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, out_h - 1)
    return out


def color_aug(rng, img, eig_val, eig_vec):
    """Brightness, contrast, saturation (random order, ±0.4 each) then PCA lighting; img is BGR float [0, 1]."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    gray_mean = float(gray.mean())
    gray3 = gray[:, :, None]

    def brightness(x):
        return x * (1 + rng.uniform(-0.4, 0.4))

    def contrast(x):
        a = 1 + rng.uniform(-0.4, 0.4)
        return x * a + (1 - a) * gray_mean

    def saturation(x):
        a = 1 + rng.uniform(-0.4, 0.4)
        return x * a + (1 - a) * gray3

    ops = [brightness, contrast, saturation]
    for i in rng.permutation(3):
        img = ops[i](img)
    alpha = rng.normal(scale=0.1, size=(3,))
    img = img + (np.asarray(eig_vec, np.float32) @ (np.asarray(eig_val, np.float32) * alpha)).astype(np.float32)
    return img.astype(np.float32)


def normalize(img, mean, std):
    """BGR float [0, 1] HWC → normalised CHW float32 (COCO mean/std in BGR order, as CenterNet)."""
    img = (img - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def warp(img, trans, out_w, out_h):
    return cv2.warpAffine(img, trans, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR)


def train_sample(rng, img, target: Dict[str, np.ndarray], aug: Dict, input_size: Tuple[int, int], down_ratio: int,
                 keypoint_flip: Sequence[int] = ()):
    """One augmented training sample: (image float32 HWC ~[0, 1], target in output-map pixels, keep).

    ``target`` holds boxes (N, 4) xyxy and optionally keypoints (N, K, 2) with visible (N, K);
    other per-object arrays (labels, crowd) come back unchanged. The returned target has every
    object, boxes clipped to the output map; ``keep`` (N,) marks the boxes with positive size left.
    A keypoint stays visible only inside the output map and on objects larger than
    ``min_landmark_area`` px² (measured before the warp: smaller ones are mostly annotation noise).
    ``aug`` holds aug_params' keys; anchor_sampling, aug_rot and min_landmark_area may be left out.
    """
    target = dict(target)
    boxes = np.asarray(target["boxes"], np.float32).reshape(-1, 4)
    points = target.get("keypoints")
    visible = target.get("visible")
    if points is not None:
        visible = np.asarray(visible, bool)
        k = visible.shape[-1]
        points = np.asarray(points, np.float32).reshape(len(boxes), k, 2)
        visible = visible.reshape(len(boxes), k)
    if aug.get("anchor_sampling"):
        img, boxes, points, _ = data_anchor_sampling(rng, img, boxes, points)
    height, width = img.shape[:2]
    in_h, in_w = input_size
    if aug["rand_crop"]:
        c, s = random_crop(rng, height, width, aug["crop_scales"], aug.get("crop_border", (128,)))
    else:
        c, s = random_center_scale(rng, height, width, aug["scale"], aug["shift"])
    rot = 0.0
    if aug.get("aug_rot", 0) > 0 and rng.random() < aug["aug_rot"]:
        rot = float(np.clip(rng.standard_normal() * aug["rotate"], -2 * aug["rotate"], 2 * aug["rotate"]))
    big = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > aug.get("min_landmark_area", 0.0)
    if rng.random() < aug["flip_prop"]:
        img = img[:, ::-1]
        boxes = flip_boxes(boxes, width)
        if points is not None:
            points, visible = flip_points(points, visible, width, keypoint_flip)
        c[0] = width - c[0] - 1
    trans_in = get_affine_transform(c, s, rot, (in_w, in_h))
    inp = warp(np.ascontiguousarray(img), trans_in, in_w, in_h).astype(np.float32) / 255.0
    if aug["color_aug"]:
        inp = color_aug(rng, inp, aug["eig_val"], aug["eig_vec"])
    out_w, out_h = in_w // down_ratio, in_h // down_ratio
    trans_out = get_affine_transform(c, s, rot, (out_w, out_h))
    target["boxes"] = transform_boxes(boxes, trans_out, out_w, out_h)
    if points is not None:
        pts = affine_transform(points, trans_out).reshape(points.shape)
        inside = (pts[..., 0] >= 0) & (pts[..., 0] < out_w) & (pts[..., 1] >= 0) & (pts[..., 1] < out_h)
        target["keypoints"], target["visible"] = pts, visible & inside & big[:, None]
    out = target["boxes"]
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return inp, target, keep
