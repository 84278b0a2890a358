"""Anchor-free "objects as points" detection (CenterNet, CenterFace) in MindSpore.

Importing this package applies the CPU oneDNN fix before MindSpore loads (see runtime.py), so
import ``centerdet`` before ``mindspore`` in every entry point.
"""
from centerdet.runtime import apply_cpu_isa_fix

apply_cpu_isa_fix()

__version__ = "0.1.0"
