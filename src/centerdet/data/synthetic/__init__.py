"""Procedurally generated detection data sets: learnable in minutes on a CPU, reproducible by seed.

Run ``python -m centerdet.data.synthetic coco --out DIR`` or call :func:`generate_coco`; faces
with landmarks (WIDER FACE layout): ``... widerface --out DIR`` or :func:`generate_widerface`.
"""
from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface
from centerdet.data.synthetic.shapes import CLASSES, SceneOptions, generate_coco

__all__ = ["CLASSES", "SceneOptions", "generate_coco", "FaceSceneOptions", "generate_widerface"]
