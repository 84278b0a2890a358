"""Synthetic WIDER FACE: cartoon heads with five known landmarks, for training CenterFace on a CPU.

Layout written by :func:`generate_widerface` (the CenterFace model-zoo layout plus RetinaFace files):

    images/{train,val}/images/<event>/<k>_<Event>_<index>.jpg   six events named like WIDER's
    annotations/{train,val}.json          CenterFace keypoint json (+ 'blur', 'occlusion' per face)
    annotations/{train,val}/label.txt     RetinaFace label.txt with the five landmarks
    ground_truth/wider_{face,easy,medium,hard}_val.mat   official evaluation files for val

A face is a skin-toned, shaded head ellipse (1.18-1.4 times taller than wide) with optional hair
and ears, two eyes, a nose and a mouth line, tilted in-plane by up to +-25 degrees and turned
(yaw) by up to +-35 degrees (features slide across the head as on a sphere; the nose tip, which
sticks out, slides furthest). Head heights are drawn log-uniformly between ``min_face`` and
``max_face``. Skin-coloured ellipses without features (and backs of heads) are drawn first as
distractors, on the cluttered backgrounds of ``textures``.

Conventions. Coordinates are continuous with pixel (c, r) covering [c, c+1) x [r, r+1). The box is
the tight box of the rasterised head ellipse (pixels whose centre lies inside it): x1 = first
column, x2 = last column + 1. Hair and ears lie outside the ellipse and so outside the box, as
WIDER boxes stop at the hairline and ears. The landmarks (left eye, right eye, nose tip, left and
right mouth corner; "left" = image left) are exactly where drawn: the iris centres, the centre of
the nose-tip shadow and the two ends of the mouth line, on a 1/16-pixel grid.

Attributes, as in WIDER's labels: blur 0 (sharp), 1 (gaussian sigma max(0.8, 0.03 h)),
2 (sigma max(1.6, 0.08 h)); occlusion from the covered fraction c of the head ellipse (by
occluders, or by later faces, which may cover at most 40% of an earlier head): 0 if c < 0.1,
1 if c < 0.35, else 2. A landmark whose pixel is covered is not visible (written as missing).

Evaluation settings, with h the box height in pixels (nested: easy within medium within hard):

    hard    h >= 10
    medium  h >= 25 and occlusion < 2
    easy    h >= 50 and occlusion < 2 and blur < 2

Faces under 10 px are in no list, so the evaluation treats them as ignore regions, like WIDER's.
Every image is drawn from its own generator seeded by (seed, split, index), as in ``shapes``.
"""
import dataclasses
import os

import cv2
import numpy as np

from centerdet.data.synthetic.textures import add_noise, clutter_background
from centerdet.data.coco import make_record, write_coco_json
from centerdet.data.widerface import FACE_CATEGORY, write_ground_truth_mats, write_label_txt
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir

EVENTS = ("0--Parade", "1--Handshaking", "2--Demonstration", "3--Riot", "4--Dancing", "5--Car_Accident")
SPLIT_IDS = {"train": 0, "val": 1}
FACES_STREAM = 7  # keeps face images independent of shapes images generated with the same seed
MIN_SIZE = 64
MAX_FACE_FRAC = 0.5  # head height vs image width: the shortest image (0.6 x width) must hold a head
EXTRA_FACE_PROB = 0.4
PLACEMENT_TRIES = 20
MAX_HIDDEN = 0.4  # a later face may cover at most this fraction of an earlier head
MAX_TILT, MAX_YAW = np.deg2rad(25.0), np.deg2rad(35.0)
OCCLUSION_LEVELS = (0.1, 0.35)
HARD_MIN_H, MEDIUM_MIN_H, EASY_MIN_H = 10, 25, 50
JPEG_QUALITY = 90
SHIFT = 4  # cv2 fixed-point bits: features are placed to 1/16 pixel
OUTER = (1.16, 1.12)  # hair and ears stay inside this multiple of the head ellipse

# Skin from dark to light (BGR endpoints), hair, iris: fixed palettes varied per face.
SKIN_DARK, SKIN_LIGHT = np.array([45.0, 62.0, 95.0]), np.array([185.0, 210.0, 245.0])
HAIR = np.array([[25, 25, 30], [30, 45, 70], [45, 80, 120], [110, 180, 215], [170, 170, 175], [40, 70, 160]],
                np.float64)
IRIS = np.array([[30, 40, 60], [60, 45, 25], [20, 20, 20], [35, 55, 40]], np.float64)


@dataclasses.dataclass(frozen=True)
class FaceSceneOptions:
    """How hard the scenes are: head heights in pixels, faces per image, how often faces are blurred
    or occluded, how many featureless skin blobs are added, and the background clutter range."""
    min_face: float = 8.0
    max_face: float = 300.0
    max_faces: int = 12
    blur_prob: float = 0.25
    occlusion_prob: float = 0.25
    distractors: int = 3
    clutter: tuple = (0.25, 1.0)

    def check(self):
        if not 4 <= self.min_face <= self.max_face:
            raise CenterDetError(f"face sizes must satisfy 4 <= min_face ({self.min_face}) <= "
                                 f"max_face ({self.max_face}) pixels")
        if not 1 <= self.max_faces <= 64:
            raise CenterDetError(f"max_faces must be in 1..64, got {self.max_faces}")
        for name in ("blur_prob", "occlusion_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise CenterDetError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.distractors <= 32:
            raise CenterDetError(f"distractors must be in 0..32, got {self.distractors}")
        lo, hi = self.clutter
        if not 0 <= lo <= hi <= 1:
            raise CenterDetError(f"clutter range must satisfy 0 <= low <= high <= 1, got {self.clutter}")


@dataclasses.dataclass(frozen=True)
class FaceScene:
    """One rendered image with its ground truth; masks and skin colours let tests check the drawing."""
    image: np.ndarray       # (H, W, 3) uint8 BGR, what is written to disk
    background: np.ndarray  # (H, W, 3) uint8 BGR, the clutter before distractors and faces
    boxes: np.ndarray       # (N, 4) float64 [x1, y1, x2, y2] tight boxes of the head ellipses
    landmarks: np.ndarray   # (N, 5, 2) float64 drawn positions (also where not visible)
    lm_visible: np.ndarray  # (N, 5) bool
    blur: np.ndarray        # (N,) int 0/1/2
    occlusion: np.ndarray   # (N,) int 0/1/2
    skin: np.ndarray        # (N, 3) float64 BGR base skin colour before shading
    masks: np.ndarray       # (N, H, W) bool head ellipses
    visible: np.ndarray     # (N, H, W) bool parts of the ellipses not covered later


def keep_indices(boxes, blur, occlusion):
    """0-based indices of the faces counted in each setting (see the module docstring)."""
    h = np.asarray(boxes, np.float64).reshape(-1, 4)
    h = h[:, 3] - h[:, 1]
    blur, occlusion = np.asarray(blur), np.asarray(occlusion)
    rules = {"easy": (h >= EASY_MIN_H) & (occlusion < 2) & (blur < 2),
             "medium": (h >= MEDIUM_MIN_H) & (occlusion < 2),
             "hard": h >= HARD_MIN_H}
    return {name: np.flatnonzero(rule) for name, rule in rules.items()}


# ---------------------------------------------------------------- geometry


@dataclasses.dataclass
class _Head:
    centre: np.ndarray  # (2,) continuous image coordinates
    a: float            # half width of the head ellipse
    b: float            # half height
    theta: float        # in-plane tilt, radians

    @property
    def axes(self):
        c, s = np.cos(self.theta), np.sin(self.theta)
        return np.array([c, s]), np.array([-s, c])  # image directions of the face's u (right) and v (down)

    def to_image(self, u, v):
        eu, ev = self.axes
        return self.centre + np.multiply.outer(u, eu) + np.multiply.outer(v, ev)

    def extent(self, scale=OUTER):
        """Half extents (x, y) of the head ellipse scaled by ``scale`` after the tilt."""
        a, b = self.a * scale[0], self.b * scale[1]
        c, s = np.cos(self.theta), np.sin(self.theta)
        return np.array([np.hypot(a * c, b * s), np.hypot(a * s, b * c)])

    def roi(self, shape, scale=OUTER, pad=2):
        h, w = shape
        ex, ey = self.extent(scale)
        x0, x1 = int(np.floor(self.centre[0] - ex)) - pad, int(np.ceil(self.centre[0] + ex)) + pad
        y0, y1 = int(np.floor(self.centre[1] - ey)) - pad, int(np.ceil(self.centre[1] + ey)) + pad
        return slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))

    def frame(self, roi):
        """Face-frame (u, v) of the pixel centres in ``roi``, in units of the semi-axes."""
        ys = np.arange(roi[0].start, roi[0].stop) + 0.5 - self.centre[1]
        xs = np.arange(roi[1].start, roi[1].stop) + 0.5 - self.centre[0]
        c, s = np.cos(self.theta), np.sin(self.theta)
        u = (xs[None, :] * c + ys[:, None] * s) / self.a
        v = (-xs[None, :] * s + ys[:, None] * c) / self.b
        return u, v


def _random_head(rng, shape, opts, aspect=(1.18, 1.4), tilt=MAX_TILT):
    """A head of log-uniform height placed fully inside the image (hair and ears included)."""
    h, w = shape
    height = np.exp(rng.uniform(np.log(opts.min_face), np.log(opts.max_face)))
    b = height / 2
    head = _Head(np.zeros(2), b / rng.uniform(*aspect), b, rng.uniform(-tilt, tilt))
    fit = np.min((np.array([w, h]) - 4) / (2 * head.extent()))
    if fit < 1:  # only when max_face is near the image size: shrink rather than leave the image
        head.a, head.b = head.a * fit, head.b * fit
    ex, ey = head.extent()
    head.centre = np.array([rng.uniform(ex + 1, w - ex - 1), rng.uniform(ey + 1, h - ey - 1)])
    return head


def _grid(points):
    """Snap to the 1/16-pixel grid cv2 draws on, so that a landmark is exactly where it is drawn."""
    return np.round(np.asarray(points) * (1 << SHIFT)) / (1 << SHIFT)


def _cv(point):
    """Continuous coordinates → cv2 fixed point (cv2 puts pixel centres on integers)."""
    return tuple(int(round(v)) for v in (np.asarray(point) - 0.5) * (1 << SHIFT))


def _cv_len(length):
    return max(int(round(length * (1 << SHIFT))), 1)


def _features(rng, head):
    """Face-frame feature layout turned by a random yaw; returns landmark points and drawing info."""
    yaw = rng.uniform(-MAX_YAW, MAX_YAW)
    eye_u, eye_v = rng.uniform(0.33, 0.42), rng.uniform(-0.2, -0.08)
    mouth_u, mouth_v = rng.uniform(0.25, 0.36), rng.uniform(0.42, 0.52)
    nose_v, nose_out = rng.uniform(0.15, 0.28), rng.uniform(1.0, 1.25)
    # On a sphere a feature at angle alpha moves to sin(alpha + yaw); it is foreshortened by cos.
    turn = lambda u0: np.sin(np.arcsin(u0) + yaw)  # noqa: E731
    uv = np.array([[turn(-eye_u), eye_v], [turn(eye_u), eye_v], [nose_out * np.sin(yaw), nose_v],
                   [turn(-mouth_u), mouth_v], [turn(mouth_u), mouth_v]])
    points = _grid(head.to_image(uv[:, 0] * head.a, uv[:, 1] * head.b))
    squeeze = np.cos(np.arcsin([-eye_u, eye_u]) + yaw)
    return points, {"yaw": yaw, "squeeze": squeeze, "eye_v": eye_v, "smile": rng.uniform(-0.05, 0.1)}


# ---------------------------------------------------------------- painting


def _skin_colour(rng):
    return SKIN_DARK + rng.uniform(0, 1) * (SKIN_LIGHT - SKIN_DARK) + rng.uniform(-12, 12, size=3)


def _shaded(rng, base, u, v):
    """Base colour lit like a sphere from a random direction, with a little grain."""
    depth = np.sqrt(np.clip(1.0 - u * u - v * v, 0.0, 1.0))
    angle = rng.uniform(0, 2 * np.pi)
    shade = 0.74 + 0.26 * depth + 0.1 * (u * np.cos(angle) + v * np.sin(angle))
    out = base[None, None, :] * shade[..., None] + 3 * rng.standard_normal(u.shape + (3,), dtype=np.float32)
    return np.clip(out, 0, 255)


def _paint(canvas, roi, mask, colours):
    region = canvas[roi]
    region[mask] = colours[mask].astype(np.uint8)


def _paint_head(rng, canvas, head, skin, yaw=0.0, hair=True, ears=True):
    """Ears, shaded skin ellipse and hair; returns (roi, ellipse mask, footprint mask) in the roi."""
    roi = head.roi(canvas.shape[:2])
    u, v = head.frame(roi)
    ellipse = u * u + v * v <= 1.0
    footprint = ellipse.copy()
    if ears:
        for side in (-1.0, 1.0):
            if side * yaw < np.deg2rad(12):  # the ear on the side the face turns to is hidden
                ear = ((u - side * 0.97) / 0.16) ** 2 + ((v - 0.02) / 0.24) ** 2 <= 1.0
                _paint(canvas, roi, ear, _shaded(rng, skin * 0.85, u, v))
                footprint |= ear
    _paint(canvas, roi, ellipse, _shaded(rng, skin, u, v))
    if hair:
        colour = HAIR[rng.integers(len(HAIR))] + rng.uniform(-10, 10, size=3)
        hairline = rng.uniform(-0.62, -0.4) + 0.06 * np.sin(u * rng.uniform(3, 9) + rng.uniform(0, 6))
        cap = (u / 1.07) ** 2 + ((v + 0.03) / 1.08) ** 2 <= 1.0
        region = cap & (v < hairline)
        if rng.random() < 0.5:  # longer hair framing the face, outside the skin
            region |= ((u / 1.14) ** 2 + (v / 1.1) ** 2 <= 1.0) & ~ellipse & (v < rng.uniform(0, 0.6))
        texture = colour[None, None, :] * (0.85 + 0.3 * rng.random(u.shape))[..., None]
        _paint(canvas, roi, region, np.clip(texture, 0, 255))
        footprint |= region
    return roi, ellipse, footprint


def _paint_features(rng, canvas, head, points, info, skin):
    """Eyes (sclera, iris, brows), nose (bridge, tip shadow, nostrils) and mouth at the landmarks."""
    a, b = head.a, head.b
    eu, ev = head.axes
    deg = np.rad2deg(head.theta)
    aa = lambda width: cv2.LINE_AA if width >= 2 else cv2.LINE_8  # noqa: E731  (AA leaves thin ends faint)
    for eye, squeeze in zip(points[:2], info["squeeze"]):
        half_w, half_h = 0.15 * a * squeeze, 0.075 * b
        if half_w >= 1.2:
            white = tuple(float(c) for c in rng.uniform(215, 245, size=3))
            cv2.ellipse(canvas, _cv(eye), (_cv_len(half_w), _cv_len(half_h)), deg, 0, 360, white, -1,
                        cv2.LINE_AA, SHIFT)
        radius = max(0.6, 0.07 * b)
        iris = tuple(float(c) for c in IRIS[rng.integers(len(IRIS))])
        cv2.circle(canvas, _cv(eye), _cv_len(radius), iris, -1, aa(2 * radius), SHIFT)
        if b >= 8:
            brow = [eye + ev * (-0.14 * b) + eu * (t * 0.17 * a * squeeze) for t in (-1.0, 1.0)]
            width = max(1, int(round(0.035 * b)))
            cv2.line(canvas, _cv(brow[0]), _cv(brow[1]), (30, 30, 35), width, aa(width), SHIFT)
    tip = points[2]
    shadow = tuple(float(c) for c in skin * 0.62)
    if b >= 10:
        top = (points[0] + points[1]) / 2 + ev * (0.08 * b)  # the bridge starts between the eyes
        width = max(1, int(round(0.04 * a)))
        cv2.line(canvas, _cv(top), _cv(tip), tuple(float(c) for c in skin * 0.82), width, aa(width), SHIFT)
    if b >= 12:
        for side in (-1.0, 1.0):
            nostril = tip + eu * (side * 0.1 * a) + ev * (0.04 * b)
            cv2.circle(canvas, _cv(nostril), _cv_len(max(0.6, 0.035 * b)), tuple(float(c) for c in skin * 0.4),
                       -1, cv2.LINE_8, SHIFT)
    cv2.circle(canvas, _cv(tip), _cv_len(max(0.6, 0.05 * b)), shadow, -1, cv2.LINE_8, SHIFT)
    left, right = points[3], points[4]
    middle = (left + right) / 2 + ev * (info["smile"] * b)
    t = np.linspace(0, 1, 9)[:, None]
    curve = (1 - t) ** 2 * left + 2 * (1 - t) * t * middle + t ** 2 * right
    curve[0], curve[-1] = left, right
    width = max(1, int(round(0.045 * b)))
    lips = tuple(float(c) for c in skin * np.array([0.45, 0.42, 0.7]))
    cv2.polylines(canvas, [np.array([_cv(p) for p in curve], np.int32)], False, lips, width, aa(width), SHIFT)


def _occluder(rng, shape, box, skin):
    """A rectangle entering from one side or a blob over part of the face: (roi, mask, colours)
    within the image, or None if nothing of it lands inside."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    mask = np.zeros(shape, np.uint8)
    if rng.random() < 0.5:
        cover, reach = rng.uniform(0.25, 0.7), rng.uniform(0.2, 1.0)
        lo, hi = rng.uniform(-0.3, 0.3, size=2)
        side = int(rng.integers(4))
        if side < 2:  # from the left / right
            xa, xb = (x1 - reach * w, x1 + cover * w) if side == 0 else (x2 - cover * w, x2 + reach * w)
            ya, yb = y1 + lo * h, y2 - hi * h
        else:         # from the top / bottom
            ya, yb = (y1 - reach * h, y1 + cover * h) if side == 2 else (y2 - cover * h, y2 + reach * h)
            xa, xb = x1 + lo * w, x2 - hi * w
        corners = np.array([[xa, ya], [xb, ya], [xb, yb], [xa, yb]])
        cv2.fillPoly(mask, [np.array([_cv(p) for p in corners], np.int32)], 1, cv2.LINE_8, SHIFT)
    else:
        t = rng.uniform(0, 2 * np.pi)
        centre = np.array([(x1 + x2) / 2 + 0.4 * w * np.cos(t), (y1 + y2) / 2 + 0.4 * h * np.sin(t)])
        axes = (_cv_len(rng.uniform(0.25, 0.5) * w), _cv_len(rng.uniform(0.2, 0.45) * h))
        cv2.ellipse(mask, _cv(centre), axes, rng.uniform(0, 180), 0, 360, 1, -1, cv2.LINE_8, SHIFT)
    if not mask.any():
        return None
    x0, y0, x1, y1 = (int(v) for v in _mask_box(mask))
    roi = (slice(y0, y1), slice(x0, x1))
    colour = rng.uniform(0, 255, size=3)
    for _ in range(8):  # not skin-like: an occluder must not read as more face
        if np.linalg.norm(colour - skin) > 90:
            break
        colour = rng.uniform(0, 255, size=3)
    ramp = np.linspace(-25, 25, x1 - x0)[None, :, None] * rng.choice([-1.0, 1.0])
    grain = rng.standard_normal((y1 - y0, x1 - x0, 3), dtype=np.float32) * 4
    return roi, mask[roi].astype(bool), np.clip(colour[None, None, :] + ramp + grain, 0, 255)


def _blur(canvas, roi, footprint, height, level):
    """Gaussian blur of the face region; the face's edge is softened from the inside only, so the
    blur never smears pixels outside the face (an earlier face's visible landmarks stay sharp)."""
    sigma = max(0.8, 0.03 * height) if level == 1 else max(1.6, 0.08 * height)
    pad = int(np.ceil(3 * sigma))
    h, w = canvas.shape[:2]
    big = (slice(max(roi[0].start - pad, 0), min(roi[0].stop + pad, h)),
           slice(max(roi[1].start - pad, 0), min(roi[1].stop + pad, w)))
    weight = np.zeros(canvas[big].shape[:2], np.float32)
    weight[roi[0].start - big[0].start:roi[0].stop - big[0].start,
           roi[1].start - big[1].start:roi[1].stop - big[1].start] = footprint
    weight = (np.clip(2 * cv2.GaussianBlur(weight, (0, 0), sigma), 0, 1) * weight)[..., None]
    patch = canvas[big].astype(np.float32)
    blurred = cv2.GaussianBlur(patch, (0, 0), sigma)
    canvas[big] = np.clip(weight * blurred + (1 - weight) * patch + 0.5, 0, 255).astype(np.uint8)


def _mask_box(mask):
    xs = np.flatnonzero(mask.any(axis=0))
    ys = np.flatnonzero(mask.any(axis=1))
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float64)


# ---------------------------------------------------------------- scenes


def _distractors(rng, canvas, opts):
    """Skin-coloured ellipses without features, some with hair (a head seen from behind)."""
    for _ in range(int(rng.integers(0, opts.distractors + 1))):
        head = _random_head(rng, canvas.shape[:2], opts, aspect=(0.5, 2.5), tilt=np.pi)
        _paint_head(rng, canvas, head, _skin_colour(rng), hair=rng.random() < 0.3, ears=False)


def _fits(masks, covers, roi, footprint):
    """False if the new footprint would leave an earlier head more than MAX_HIDDEN covered."""
    for mask, cover in zip(masks, covers):
        newly = np.count_nonzero(mask[roi] & footprint & ~cover[roi])
        if newly and np.count_nonzero(mask & cover) + newly > MAX_HIDDEN * np.count_nonzero(mask):
            return False
    return True


def _place_face(rng, canvas, shape, opts, masks, covers):
    """Try to paint one head; returns (landmarks, skin, roi, footprint) or None if it would hide
    too much of an earlier face (the canvas is then left as it was)."""
    head = _random_head(rng, shape, opts)
    points, info = _features(rng, head)
    skin = _skin_colour(rng)
    roi = head.roi(shape)
    saved = canvas[roi].copy()
    roi, ellipse, footprint = _paint_head(rng, canvas, head, skin, info["yaw"])
    if not ellipse.any() or not _fits(masks, covers, roi, footprint):
        canvas[roi] = saved
        return None
    for cover in covers:
        cover[roi] |= footprint
    mask = np.zeros(shape, bool)
    mask[roi] = ellipse
    masks.append(mask)
    covers.append(np.zeros(shape, bool))
    _paint_features(rng, canvas, head, points, info, skin)
    return points, skin, roi, footprint


def _occlude(rng, canvas, shape, box, skin, masks, covers):
    drawn = _occluder(rng, shape, box, skin)
    if drawn is None:
        return
    roi, occ, colours = drawn
    # Occluders must not bury earlier faces either (they were placed to stay visible).
    for mask, cover in zip(masks[:-1], covers[:-1]):
        hidden = np.count_nonzero(mask[roi] & occ & ~cover[roi])
        if np.count_nonzero(mask & ~cover) - hidden < 0.5 * np.count_nonzero(mask):
            return
    _paint(canvas, roi, occ, colours)
    for cover in covers:
        cover[roi] |= occ


def render_face_scene(rng, size=640, opts=FaceSceneOptions()):
    """Draw one image of width ``size`` (height 0.6-1.0 x size) with 1..max_faces faces."""
    shape = (int(round(size * rng.uniform(0.6, 1.0))), int(size))
    background = clutter_background(rng, shape, density=rng.uniform(*opts.clutter))
    canvas = background.copy()
    _distractors(rng, canvas, opts)
    faces, masks, covers = [], [], []  # covers: what was drawn over each face after it
    for _ in range(1 + int(rng.binomial(opts.max_faces - 1, EXTRA_FACE_PROB))):
        for _ in range(PLACEMENT_TRIES):
            placed = _place_face(rng, canvas, shape, opts, masks, covers)
            if placed is None:
                continue
            points, skin, roi, footprint = placed
            box = _mask_box(masks[-1])
            if rng.random() < opts.occlusion_prob:
                _occlude(rng, canvas, shape, box, skin, masks, covers)
            blur = 0
            if rng.random() < opts.blur_prob:
                blur = 1 + int(rng.random() < 0.5)
                _blur(canvas, roi, footprint, box[3] - box[1], blur)
            faces.append((box, points, skin, blur))
            break
    image = add_noise(rng, canvas, rng.uniform(1.0, 3.0))
    return _scene(image, background, faces, masks, covers)


def _scene(image, background, faces, masks, covers):
    n = len(faces)
    landmarks = np.array([p for _, p, _, _ in faces], np.float64).reshape(n, 5, 2)
    visible = [m & ~c for m, c in zip(masks, covers)]
    covered = np.array([1.0 - np.count_nonzero(v) / np.count_nonzero(m) for m, v in zip(masks, visible)])
    lm_visible = np.zeros((n, 5), bool)
    for i, cover in enumerate(covers):
        cols, rows = np.floor(landmarks[i]).astype(int).T
        lm_visible[i] = ~cover[rows, cols]
    empty = np.zeros((0,) + image.shape[:2], bool)
    return FaceScene(
        image=image, background=background,
        boxes=np.array([b for b, _, _, _ in faces], np.float64).reshape(n, 4),
        landmarks=landmarks, lm_visible=lm_visible,
        blur=np.array([bl for _, _, _, bl in faces], np.int64),
        occlusion=np.searchsorted(OCCLUSION_LEVELS, covered, side="right").astype(np.int64).reshape(n),
        skin=np.array([s for _, _, s, _ in faces], np.float64).reshape(n, 3),
        masks=np.stack(masks) if masks else empty, visible=np.stack(visible) if visible else empty)


# ---------------------------------------------------------------- files


def scene_rng(seed, split, index):
    """The generator for one image: independent of every other (seed, split, index)."""
    return np.random.default_rng([int(seed), FACES_STREAM, SPLIT_IDS[split], int(index)])


def render_widerface_image(seed, split, index, size=640, opts=FaceSceneOptions()):
    """Re-render exactly the scene ``generate_widerface`` wrote for image ``index`` (0-based) of ``split``."""
    return render_face_scene(scene_rng(seed, split, index), size, opts)


def image_name(index, n):
    """(event, file name without '.jpg') of image ``index`` of ``n``: events take contiguous blocks."""
    k = min(index * len(EVENTS) // max(n, 1), len(EVENTS) - 1)
    event = EVENTS[k]
    return event, f"{k}_{event.split('--', 1)[1]}_{index}"


def face_image(scene, file_name, image_id=1):
    """The annotation record of a scene (landmarks that are not visible are written as missing)."""
    landmarks = np.where(scene.lm_visible[..., None], scene.landmarks, 0.0)
    return make_record(image_id, file_name, scene.image.shape[1], scene.image.shape[0], scene.boxes,
                       keypoints=landmarks, visible=scene.lm_visible, num_keypoints=5)


def _write_split(out_dir, split, n, size, seed, opts, progress):
    image_root = ensure_writable_dir(os.path.join(out_dir, "images", split, "images"))
    records, attrs, events = [], [], {}
    counts = {"faces": 0, "easy": 0, "medium": 0, "hard": 0, "ignored": 0, "blurred": 0, "occluded": 0}
    indices = range(n)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc=split, unit="img", disable=n < 100, leave=False)
    for index in indices:
        scene = render_widerface_image(seed, split, index, size, opts)
        event, name = image_name(index, n)
        path = os.path.join(ensure_writable_dir(os.path.join(image_root, event)), name + ".jpg")
        if not cv2.imwrite(path, scene.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise CenterDetError(f"could not write image: {path}")
        records.append(face_image(scene, f"{event}/{name}.jpg", index + 1))
        attrs.append({"blur": scene.blur, "occlusion": scene.occlusion})
        keep = keep_indices(scene.boxes, scene.blur, scene.occlusion)
        xywh = np.concatenate([scene.boxes[:, :2], scene.boxes[:, 2:] - scene.boxes[:, :2]], axis=1)
        events.setdefault(event, []).append((name, xywh, keep["easy"], keep["medium"], keep["hard"]))
        counts["faces"] += len(scene.boxes)
        for setting in ("easy", "medium", "hard"):
            counts[setting] += len(keep[setting])
        counts["ignored"] += len(scene.boxes) - len(keep["hard"])
        counts["blurred"] += int(np.count_nonzero(scene.blur))
        counts["occluded"] += int(np.count_nonzero(scene.occlusion))
    info = {"description": "centerdet synthetic WIDER FACE", "version": "1.0", "split": split, "seed": seed,
            "size": size, "options": dataclasses.asdict(opts),
            "settings": {"hard": f"height >= {HARD_MIN_H}",
                         "medium": f"height >= {MEDIUM_MIN_H} and occlusion < 2",
                         "easy": f"height >= {EASY_MIN_H} and occlusion < 2 and blur < 2"}}
    files = {"json": os.path.join(out_dir, "annotations", f"{split}.json"),
             "label_txt": os.path.join(out_dir, "annotations", split, "label.txt"),
             "images_dir": image_root}
    write_coco_json(files["json"], records, [FACE_CATEGORY], info=info, attrs=attrs)
    write_label_txt(files["label_txt"], records)
    if split == "val":
        gt_dir = ensure_writable_dir(os.path.join(out_dir, "ground_truth"))
        write_ground_truth_mats(gt_dir, [(event, events[event]) for event in EVENTS if event in events])
        files["ground_truth"] = gt_dir
    return {"images": n, **counts, **files}


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def generate_widerface(out_dir, n_train, n_val, seed=0, size=640, opts=FaceSceneOptions(), progress=False):
    """Write the train and val splits under ``out_dir`` (layout in the module docstring).

    Returns a summary per split: image and face counts, faces per evaluation setting, faces in no
    setting ('ignored'), blurred and occluded faces, and the paths written.
    """
    for name, value in (("n_train (--train)", n_train), ("n_val (--val)", n_val), ("seed", seed)):
        if not _is_int(value) or value < 0:
            raise CenterDetError(f"{name} must be a non-negative integer, got {value!r}")
    if not _is_int(size) or size < MIN_SIZE:
        raise CenterDetError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")
    opts.check()
    if opts.max_face > MAX_FACE_FRAC * size:
        raise CenterDetError(f"max_face {opts.max_face} px does not fit images of width {size} (height down to "
                             f"0.6 x width); use max_face <= {MAX_FACE_FRAC * size:g} or a larger size")
    out_dir = ensure_writable_dir(os.fspath(out_dir))
    return {split: _write_split(out_dir, split, int(n), int(size), int(seed), opts, progress)
            for split, n in (("train", n_train), ("val", n_val))}
