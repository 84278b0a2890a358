"""Anchor-free "objects as points" detection (CenterNet, CenterFace) in MindSpore.

Importing this package applies the CPU oneDNN fix before MindSpore loads (see runtime.py), so
import ``centerdet`` before ``mindspore`` in every entry point.
"""
import os

from centerdet.runtime import apply_cpu_isa_fix

apply_cpu_isa_fix()
# FFmpeg (inside OpenCV's video I/O) prints its own complaints about damaged videos; detect names
# the file in one line instead. Read when FFmpeg first starts, so set before any video is opened.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"
