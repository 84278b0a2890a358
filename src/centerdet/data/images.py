"""Image file reading with errors that name the file."""
import os

import cv2
import numpy as np

from centerdet.errors import CenterDetError


def decode_image(data, source="<bytes>"):
    """JPEG/PNG bytes → BGR uint8 HWC; a corrupt or truncated file is an error naming ``source``."""
    arr = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(arr, cv2.IMREAD_COLOR) if arr.size else None
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise CenterDetError(f"cannot decode image (corrupt, truncated or not an image): {source}")
    return img


def read_image_bytes(path):
    if not os.path.isfile(path):
        raise CenterDetError(f"image not found: {path}")
    with open(path, "rb") as f:
        return f.read()


def read_image(path):
    return decode_image(read_image_bytes(path), path)
