"""Cluttered backgrounds for synthetic detection data.

A plain background lets a detector fire on "anything that is not background"; these backgrounds
carry edges, curves, colour changes and small blobs so that the network has to learn the object's
shape. All clutter is kept either thin (lines, curves) or small (specks under ``SPECK_MAX_FRAC`` of
the image side), so that nothing in the background looks like an annotated object at object scale.

Every function takes an ``np.random.Generator`` and is otherwise pure, so a caller that seeds the
generator per image gets reproducible, order-independent images. Images are BGR uint8 (OpenCV).
Shapes are ``(height, width)`` so that non-square generators (e.g. faces) can reuse them.
"""
import cv2
import numpy as np

# Largest speck diameter as a fraction of the shorter image side; annotated objects start at ~0.08.
SPECK_MAX_FRAC = 0.04


def linear_gradient(rng, shape):
    """A two-colour ramp in a random direction: the large-scale illumination change."""
    h, w = shape
    c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.arange(w, dtype=np.float32)[None, :] * np.float32(np.cos(angle))
         + np.arange(h, dtype=np.float32)[:, None] * np.float32(np.sin(angle)))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + t[..., None] * (c1 - c0)


def smooth_field(rng, shape, cell_px, channels=3):
    """Random values on a grid of ``cell_px`` spacing, bicubically upsampled; values roughly in [0, 1].

    Large cells give soft colour blotches, small cells a fine grain.
    """
    h, w = shape
    gh = max(2, int(round(h / cell_px)) + 1)
    gw = max(2, int(round(w / cell_px)) + 1)
    grid = rng.uniform(0, 1, size=(gh, gw, channels)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field.reshape(h, w, channels)


def add_noise(rng, image, sigma):
    """Gaussian pixel noise, returned as a new uint8 image."""
    noise = rng.standard_normal(size=image.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    noise += image
    return np.clip(noise, 0, 255, out=noise).astype(np.uint8)


def _random_colours(rng, n):
    return [tuple(int(v) for v in c) for c in rng.integers(0, 256, size=(n, 3))]


def draw_lines(rng, image, count):
    """Thin straight lines whose ends may leave the image: long edges that belong to no object."""
    h, w = image.shape[:2]
    ends = rng.uniform(-0.2, 1.2, size=(count, 4)) * np.array([w, h, w, h])
    thick = np.where(rng.random(count) < 0.3, 2, 1)
    for (x0, y0, x1, y1), t, colour in zip(ends.astype(int), thick, _random_colours(rng, count)):
        cv2.line(image, (int(x0), int(y0)), (int(x1), int(y1)), colour, int(t), cv2.LINE_AA)
    return image


def draw_curves(rng, image, count, samples=24):
    """Thin open quadratic Bezier curves: curved edges, so 'curved' alone does not mean circle/ring."""
    h, w = image.shape[:2]
    t = np.linspace(0, 1, samples)[:, None]
    for colour in _random_colours(rng, count):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, size=(3, 2)) * np.array([w, h])
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
        thick = 2 if rng.random() < 0.3 else 1
        cv2.polylines(image, [np.round(pts).astype(np.int32)], False, colour, thick, cv2.LINE_AA)
    return image


def draw_specks(rng, image, count, max_diameter):
    """Small irregular blobs (jittered polygons), too small and too ragged to pass for an object."""
    h, w = image.shape[:2]
    max_r = max(1.0, max_diameter / 2.0)
    for colour in _random_colours(rng, count):
        centre = rng.uniform(0, 1, size=2) * np.array([w, h])
        radius = rng.uniform(1.0, max_r)
        k = int(rng.integers(4, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=k))
        radii = radius * rng.uniform(0.4, 1.0, size=k)
        pts = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
        cv2.fillPoly(image, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)
    return image


def clutter_background(rng, shape, density=None):
    """A full background: gradient + colour blotches + grain, then lines, curves, specks and noise.

    ``density`` in [0, 1] scales the amount of drawn clutter; by default it is drawn per image so
    the data set spans clean to busy backgrounds.
    """
    h, w = shape
    side = min(h, w)
    if density is None:
        density = rng.uniform(0.25, 1.0)

    base = linear_gradient(rng, shape)
    blotch_mix = rng.uniform(0.2, 0.7)
    blotches = smooth_field(rng, shape, cell_px=side / rng.uniform(1.5, 5.0)) * 255.0
    base = (1.0 - blotch_mix) * base + blotch_mix * blotches
    grain_cell = rng.uniform(3.0, max(3.0, SPECK_MAX_FRAC * side))
    grain_amp = rng.uniform(0.0, 40.0)
    base += (smooth_field(rng, shape, cell_px=grain_cell) - 0.5) * grain_amp
    image = np.clip(base, 0, 255).astype(np.uint8)

    draw_lines(rng, image, int(rng.integers(0, int(10 * density) + 1)))
    draw_curves(rng, image, int(rng.integers(0, int(6 * density) + 1)))
    draw_specks(rng, image, int(rng.integers(0, int(50 * density) + 1)), SPECK_MAX_FRAC * side)
    return add_noise(rng, image, rng.uniform(2.0, 8.0))
