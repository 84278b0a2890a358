"""Training augmentation (CenterNet recipe) and input normalisation, as pure numpy functions.

Random crop = pick a centre and a scale for the affine warp; flip mirrors image and boxes; colour
jitter + PCA lighting on the [0, 1] image. Everything takes an explicit ``rng``.
"""
import cv2
import numpy as np

from centerdet.geometry import affine_transform, get_affine_transform


def _border(border, size):
    i = 1
    while size - border // i <= border // i:
        i *= 2
    return border // i


def random_center_scale(rng, height, width, rand_crop=True, scale=0.4, shift=0.1):
    """Crop centre (x, y) and side length for one training sample."""
    c = np.array([width / 2.0, height / 2.0], np.float32)
    s = float(max(height, width))
    if rand_crop:
        s *= rng.choice(np.arange(0.6, 1.4, 0.1))
        wb, hb = _border(128, width), _border(128, height)
        c[0] = rng.integers(low=wb, high=max(width - wb, wb + 1))
        c[1] = rng.integers(low=hb, high=max(height - hb, hb + 1))
    else:
        c[0] += s * np.clip(rng.standard_normal() * shift, -2 * shift, 2 * shift)
        c[1] += s * np.clip(rng.standard_normal() * shift, -2 * shift, 2 * shift)
        s *= np.clip(rng.standard_normal() * scale + 1, 1 - scale, 1 + scale)
    return c, s


def flip_boxes(boxes, width):
    """Mirror xyxy boxes in an image of the given width (pixel-index convention: x → W − x − 1)."""
    out = boxes.copy()
    out[:, 0] = width - boxes[:, 2] - 1
    out[:, 2] = width - boxes[:, 0] - 1
    return out


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


def train_sample(rng, img, boxes, cfg_aug, input_size, down_ratio):
    """One augmented training sample: returns (image float [0,1] HWC, boxes in output-map pixels, kept mask).

    ``cfg_aug`` holds rand_crop, scale, shift, flip_prop, rotate (max degrees), aug_rot (its
    probability), color_aug, eig_val, eig_vec.
    """
    height, width = img.shape[:2]
    in_h, in_w = input_size
    c, s = random_center_scale(rng, height, width, cfg_aug["rand_crop"], cfg_aug["scale"], cfg_aug["shift"])
    rot = 0.0
    if cfg_aug["aug_rot"] > 0 and rng.random() < cfg_aug["aug_rot"]:
        rot = float(np.clip(rng.standard_normal() * cfg_aug["rotate"], -2 * cfg_aug["rotate"], 2 * cfg_aug["rotate"]))
    if rng.random() < cfg_aug["flip_prop"]:
        img = img[:, ::-1]
        boxes = flip_boxes(boxes, width)
        c[0] = width - c[0] - 1
    trans_in = get_affine_transform(c, s, rot, (in_w, in_h))
    inp = warp(np.ascontiguousarray(img), trans_in, in_w, in_h).astype(np.float32) / 255.0
    if cfg_aug["color_aug"]:
        inp = color_aug(rng, inp, cfg_aug["eig_val"], cfg_aug["eig_vec"])
    out_w, out_h = in_w // down_ratio, in_h // down_ratio
    trans_out = get_affine_transform(c, s, rot, (out_w, out_h))
    out_boxes = transform_boxes(boxes, trans_out, out_w, out_h)
    keep = (out_boxes[:, 2] > out_boxes[:, 0]) & (out_boxes[:, 3] > out_boxes[:, 1])
    return inp, out_boxes, keep
