"""Builds the Cython kernels in dependency/ into the centerdet package at install time."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("centerdet._nms", ["dependency/nms.pyx"], include_dirs=[numpy.get_include()]),
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
