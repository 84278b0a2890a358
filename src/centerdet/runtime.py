"""Process-level set-up: the oneDNN ISA cap for CPU speed, and MindSpore's device context.

MindSpore 2.10 bundles a oneDNN that, on CPUs with AVX-512, runs every k×k convolution through a
reference kernel (~470 ms for a 3×3 conv that takes ~5 ms with AVX2 kernels). Capping oneDNN at
AVX2 before MindSpore is loaded restores normal speed. oneDNN reads the variable once, when the
library initialises, so it must be in the environment before ``import mindspore``.
"""
import os
import sys

ISA_VAR = "ONEDNN_MAX_CPU_ISA"
ISA_VALUE = "AVX2"


def apply_cpu_isa_fix():
    """Set ONEDNN_MAX_CPU_ISA=AVX2 unless the user chose a value. Returns the value in effect."""
    if ISA_VAR not in os.environ:
        if "mindspore" in sys.modules:
            # Too late to take effect in this process; say so instead of pretending.
            print(f"centerdet: warning: mindspore was imported before centerdet; {ISA_VAR} is not "
                  f"set and CPU convolutions may be very slow. Import centerdet first or export "
                  f"{ISA_VAR}={ISA_VALUE}.", file=sys.stderr)
        os.environ[ISA_VAR] = ISA_VALUE
    return os.environ[ISA_VAR]


def init_device(device_target="CPU", device_id=0, mode="graph"):
    """Select the MindSpore backend. ``mode`` is 'graph' or 'pynative'."""
    import mindspore as ms

    target = device_target or "CPU"
    if target not in ("CPU", "GPU", "Ascend"):
        from centerdet.errors import CenterDetError
        raise CenterDetError(f"device_target must be CPU, GPU or Ascend, got {target!r}")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if target == "CPU":
        ms.set_device("CPU")
    else:
        ms.set_device(target, int(device_id))
    return target
