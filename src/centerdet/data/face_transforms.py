"""CenterFace training augmentation (model-zoo recipe, centerface.md §3), pure numpy + OpenCV.

Data-anchor-sampling rescales the image so a random face lands near an anchor size, then the
CenterNet-style affine crop, flip and colour jitter follow. Landmarks ride along with the boxes;
their visibility is what the landmark loss mask is built from.
"""
import math

import cv2
import numpy as np

from centerdet.data.transforms import (_border, color_aug, flip_boxes, random_center_scale,
                                       transform_boxes, warp)
from centerdet.geometry import affine_transform, get_affine_transform

# Mirroring turns the left eye / mouth corner into the right one, so the points swap slots.
LANDMARK_FLIP = (1, 0, 2, 4, 3)
DAS_ANCHORS = (16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 128, 256, 512)
_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)


def data_anchor_sampling(rng, img, boxes, landmarks, anchors=DAS_ANCHORS, max_pixels=12000 ** 2):
    """Resize the whole image so one random face matches an anchor no larger than its nearest one.

    Returns (img, boxes, landmarks, ratio); without faces the inputs come back with ratio 1.
    """
    if len(boxes) == 0:
        return img, boxes, landmarks, 1.0
    height, width = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in boxes[rng.integers(len(boxes))])
    side = math.sqrt((x2 - x1 + 1) * (y2 - y1 + 1))
    anchors = np.asarray(anchors, np.float64)
    k = int(np.argmin(np.abs(anchors - side)))
    # Targets never exceed the nearest anchor (nor 96 px): DAS shifts the size distribution to small faces.
    target = float(rng.choice(anchors[:min(k + 1, 11)]))
    ratio = target / side * 2.0 ** rng.uniform(-1, 1)
    if height * width * ratio * ratio > max_pixels:
        ratio = math.sqrt(max_pixels / (height * width))
    # Floor keeps the resized image within max_pixels; annotations use the exact ratio.
    size = (max(1, int(width * ratio)), max(1, int(height * ratio)))
    img = cv2.resize(img, size, interpolation=_INTERPOLATIONS[rng.integers(len(_INTERPOLATIONS))])
    return img, boxes * ratio, landmarks * ratio, ratio


def random_face_crop(rng, height, width, crop_scales):
    """Crop centre (x, y) and side for the affine: scale from ``crop_scales``, centre kept a border away."""
    s = float(max(height, width)) * float(rng.choice(crop_scales))
    border = s * float(rng.choice([0.1, 0.2, 0.25]))
    c = np.zeros(2, np.float32)
    for axis, size in enumerate((width, height)):
        b = int(_border(border, size))
        c[axis] = rng.integers(b, size - b)
    return c, s


def flip_faces(boxes, landmarks, visible, width):
    """Mirror boxes and landmarks (x → W − x − 1) and swap left/right landmark slots."""
    landmarks = landmarks.copy()
    landmarks[..., 0] = width - landmarks[..., 0] - 1
    order = list(LANDMARK_FLIP)
    return flip_boxes(boxes, width), landmarks[:, order], visible[:, order]


def face_train_sample(rng, img, boxes, landmarks, visible, aug, input_size, down_ratio):
    """One augmented CenterFace sample.

    Returns (image float32 HWC ~[0, 1], boxes (N, 4) and landmarks (N, 5, 2) in output-map pixels,
    landmark visibility (N, 5) bool, keep (N,) bool for boxes with positive size after clipping).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    landmarks = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    visible = np.asarray(visible, bool).reshape(-1, 5)
    if aug["anchor_sampling"]:
        img, boxes, landmarks, _ = data_anchor_sampling(rng, img, boxes, landmarks)
    height, width = img.shape[:2]
    in_h, in_w = input_size
    if aug["rand_crop"]:
        c, s = random_face_crop(rng, height, width, aug["crop_scales"])
    else:
        c, s = random_center_scale(rng, height, width, False, aug["scale"], aug["shift"])
    # Landmarks of faces this small are mostly annotation noise; measured before the warp, as the zoo does.
    big = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > aug.get("min_landmark_area", 8.0)
    if rng.random() < aug["flip_prop"]:
        img = img[:, ::-1]
        boxes, landmarks, visible = flip_faces(boxes, landmarks, visible, width)
        c[0] = width - c[0] - 1
    trans_in = get_affine_transform(c, s, 0, (in_w, in_h))
    inp = warp(np.ascontiguousarray(img), trans_in, in_w, in_h).astype(np.float32) / 255.0
    if aug["color_aug"]:
        inp = color_aug(rng, inp, aug["eig_val"], aug["eig_vec"])
    out_w, out_h = in_w // down_ratio, in_h // down_ratio
    trans_out = get_affine_transform(c, s, 0, (out_w, out_h))
    out_boxes = transform_boxes(boxes, trans_out, out_w, out_h)
    out_lms = affine_transform(landmarks, trans_out).reshape(-1, 5, 2)
    inside = ((out_lms[..., 0] >= 0) & (out_lms[..., 0] < out_w)
              & (out_lms[..., 1] >= 0) & (out_lms[..., 1] < out_h))
    out_vis = visible & inside & big[:, None]
    keep = (out_boxes[:, 2] > out_boxes[:, 0]) & (out_boxes[:, 3] > out_boxes[:, 1])
    return inp, out_boxes, out_lms, out_vis, keep
