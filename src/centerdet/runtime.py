"""Process-level set-up: the oneDNN ISA cap for CPU speed, and MindSpore's device context.

MindSpore 2.10 bundles a oneDNN that, on CPUs with AVX-512, runs every k×k convolution through a
reference kernel (~470 ms for a 3×3 conv that takes ~5 ms with AVX2 kernels). Capping oneDNN at
AVX2 before MindSpore is loaded restores normal speed. oneDNN reads the variable once, when the
library initialises, so it must be in the environment before ``import mindspore``. (centerdet's own
CPU kernels, cpu_ops.py, link a separate oneDNN copy that lifts the cap for itself.)

Those kernels run on OpenMP. Its default wait policy keeps idle worker threads spinning, and
beside MindSpore's own thread pool that halved their speed here (a ResNet-18 forward's
convolutions 213 ms against 116 ms with idle workers asleep), so OMP_WAIT_POLICY=PASSIVE is set
the same way, before any OpenMP runtime loads.
"""
import contextlib
import logging
import os
import sys

ISA_VAR = "ONEDNN_MAX_CPU_ISA"
ISA_VALUE = "AVX2"
WAIT_VAR = "OMP_WAIT_POLICY"
WAIT_VALUE = "PASSIVE"


def apply_cpu_isa_fix():
    """Set ONEDNN_MAX_CPU_ISA=AVX2 and OMP_WAIT_POLICY=PASSIVE unless the user chose values.
    Returns the ISA value in effect."""
    if ISA_VAR not in os.environ:
        if "mindspore" in sys.modules:
            # Too late to take effect in this process; say so instead of pretending.
            print(f"centerdet: warning: mindspore was imported before centerdet; {ISA_VAR} is not "
                  f"set and CPU convolutions may be very slow. Import centerdet first or export "
                  f"{ISA_VAR}={ISA_VALUE}.", file=sys.stderr)
        os.environ[ISA_VAR] = ISA_VALUE
    os.environ.setdefault(WAIT_VAR, WAIT_VALUE)
    return os.environ[ISA_VAR]


def _mindspore_logger():
    """MindSpore's python-side logger (warnings it prints as ``[WARNING] ME(...)``), or None."""
    try:
        from mindspore import log as ms_log

        return ms_log._get_logger()
    except (ImportError, AttributeError):
        return None


@contextlib.contextmanager
def muted_mindspore_warnings(*messages: str):
    """Drop MindSpore's python-side warnings containing one of ``messages`` (all of them when none
    is given) while the block runs; errors always pass."""
    logger = _mindspore_logger()

    def keep(record):
        if record.levelno >= logging.ERROR:
            return True
        return bool(messages) and not any(m in record.getMessage() for m in messages)

    if logger is not None:
        logger.addFilter(keep)
    try:
        yield
    finally:
        if logger is not None:
            logger.removeFilter(keep)


def backend_available(target: str) -> bool:
    """Whether MindSpore can load ``target``'s backend here. Its own probe logs each failed plugin
    load as warnings; they are muted while asking, since the caller reports the answer in one line."""
    import mindspore as ms

    with muted_mindspore_warnings():
        return bool(ms.hal.is_available(target))


def init_device(device_target="CPU", device_id=0, mode="graph", cpu_kernels="onednn", compile_cache="auto"):
    """Select the MindSpore backend. ``mode`` is 'graph' or 'pynative'; ``cpu_kernels`` 'onednn'
    (centerdet's kernels where available, CPU only) or 'mindspore' (MindSpore's own);
    ``compile_cache`` the graph cache's folder, "auto" or "off" (graph_cache.configure)."""
    import mindspore as ms

    from centerdet import cpu_ops, graph_cache
    from centerdet.errors import CenterDetError

    target = device_target or "CPU"
    if target not in ("CPU", "GPU", "Ascend"):
        raise CenterDetError(f"device_target must be CPU, GPU or Ascend, got {target!r}")
    if target != "CPU" and not backend_available(target):
        here = ", ".join(t for t in ("CPU", "GPU", "Ascend") if t == "CPU" or backend_available(t))
        raise CenterDetError(f"device_target is {target}, and this MindSpore {ms.__version__} finds no {target} "
                             f"(plugin or driver) on this machine, only {here}; pass --device_target CPU "
                             f"(the shell scripts: DEVICE_TARGET=CPU)")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if target == "CPU":
        ms.set_device("CPU")
    else:
        ms.set_device(target, int(device_id))
    cpu_ops.set_enabled(None if cpu_kernels == "onednn" else False)
    graph_cache.configure(compile_cache)
    return target


def release_free_memory():
    """Hand the heap pages malloc holds free back to the OS (glibc's malloc_trim); False where
    there is no glibc. Compiling a graph leaves a few hundred MB of freed, fragmented heap that
    malloc keeps: MindSpore's memory pool maps fresh pages beside it, so without this the
    process peak counts both (CenterFace train step, 4×256²: 1287 → 1159 MB)."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def compile_cell(cell, *inputs, cached: bool = False):
    """Compile ``cell``'s graph for these inputs (later calls with the same shapes reuse it) and
    return the compiler's garbage to the OS before the first run allocates its buffers. Graph
    mode only; in PyNative there is nothing to compile. ``cached``: through graph_cache."""
    import mindspore as ms

    from centerdet import graph_cache

    if ms.get_context("mode") == ms.GRAPH_MODE:
        if cached:
            graph_cache.compile_cached(lambda: cell.compile(*inputs), cell, inputs)
        else:
            cell.compile(*inputs)
        release_free_memory()
