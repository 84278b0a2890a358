"""Pictures and videos in and out for ``detect``: what an input names (image, video, camera), frames
read with OpenCV's video I/O, and drawn videos written whole or not at all."""
import os
from typing import Iterator, Optional, Tuple

import cv2
import numpy as np

from centerdet.errors import CenterDetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
# --video_codec: OpenCV fourcc and the container it is written in; ffv1 is lossless
CODECS = {"mp4v": ("mp4v", ".mp4"), "mjpg": ("MJPG", ".avi"), "ffv1": ("FFV1", ".mkv")}
CAMERA_FPS = 30.0  # what a camera that reports no frame rate is recorded at


def kind_of(path: str) -> str:
    """'camera' (a whole number that is not a file: a camera index), 'video' or 'image' (by suffix),
    else 'other'."""
    if path.isdigit() and not os.path.exists(path):
        return "camera"
    suffix = os.path.splitext(path)[1].lower()
    return "video" if suffix in VIDEO_SUFFIXES else "image" if suffix in IMAGE_SUFFIXES else "other"


class VideoReader:
    """Frames of a video file or a camera, in order. ``frame_count`` is what the file's header says
    (None for a camera); after iterating, ``frames_read`` tells whether the file ended early."""

    def __init__(self, source: str):
        self.source, self.camera = source, kind_of(source) == "camera"
        self.cap = cv2.VideoCapture(int(source) if self.camera else source)
        if not self.cap.isOpened():
            what = f"camera {source}" if self.camera else f"video {source}"
            raise CenterDetError(f"cannot open {what} (missing, truncated, or not a video OpenCV can decode)")
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = None if self.camera or count <= 0 else count
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else CAMERA_FPS
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = self.cap.read()
                if not ok or frame is None:
                    return
                self.frames_read += 1
                yield frame
        finally:
            self.cap.release()

    def shortfall(self) -> Optional[str]:
        """A one-line warning when fewer frames came than the header counts (a truncated file)."""
        if self.frame_count and self.frames_read < self.frame_count:
            return (f"warning: {self.source}: read {self.frames_read} of the {self.frame_count} frames its header "
                    f"counts; the file looks truncated")
        return None


class VideoSink:
    """A video written to a temporary name beside ``path`` and moved there by ``close()``, so an
    interrupted run never leaves a half-written file under the final name."""

    def __init__(self, path: str, fps: float, size: Tuple[int, int], codec: str = "mp4v"):
        fourcc, _ = CODECS[codec]
        folder, name = os.path.split(path)
        stem, suffix = os.path.splitext(name)
        self.path, self.tmp = path, os.path.join(folder, f".{stem}.part{suffix}")
        self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            raise CenterDetError(f"cannot write video {path} with codec {codec} (is the folder writable? "
                                 f"--video_codec {'|'.join(CODECS)})")
        self.size = size

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise CenterDetError(f"{self.path}: frame of {frame.shape[1]}x{frame.shape[0]} in a "
                                 f"{self.size[0]}x{self.size[1]} video")
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        self.writer.release()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def video_info(path: str) -> Tuple[int, float, Tuple[int, int]]:
    """(frames, fps, (width, height)) of a video file, counted by reading it."""
    reader = VideoReader(path)
    size = (int(reader.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(reader.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    for _ in reader:
        pass
    return reader.frames_read, reader.fps, size
