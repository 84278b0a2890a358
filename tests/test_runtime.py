"""The CPU oneDNN fix: set before MindSpore loads unless the user chose a value, and it works."""
import os
import subprocess
import sys

import pytest

CONV_TIMER = """
import time, os, numpy as np
{imports}
import mindspore as ms
from mindspore import nn, Tensor
ms.set_context(mode=ms.GRAPH_MODE); ms.set_device("CPU")
conv = nn.Conv2d(64, 64, 3, pad_mode="pad", padding=1)
x = Tensor(np.random.randn(1, 64, 96, 96).astype(np.float32))
conv(x).asnumpy()
t = time.perf_counter()
for _ in range(3):
    conv(x).asnumpy()
print(os.environ.get("ONEDNN_MAX_CPU_ISA"), (time.perf_counter() - t) / 3 * 1000)
"""


def run(code, env_extra=None, drop_isa=True):
    env = dict(os.environ)
    if drop_isa:
        env.pop("ONEDNN_MAX_CPU_ISA", None)
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_import_sets_isa_when_unset():
    out = run("import os, centerdet; print(os.environ['ONEDNN_MAX_CPU_ISA'])").stdout.split()
    assert out[-1] == "AVX2"


def test_user_choice_is_kept():
    out = run("import os, centerdet; print(os.environ['ONEDNN_MAX_CPU_ISA'])",
              {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}).stdout.split()
    assert out[-1] == "AVX512_CORE"


def test_import_puts_idle_openmp_workers_to_sleep_unless_told_otherwise():
    code = "import os, centerdet; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.split()[-1] == "PASSIVE"
    assert run(code, {"OMP_WAIT_POLICY": "ACTIVE"}).stdout.split()[-1] == "ACTIVE"


def test_late_import_warns():
    proc = run("import mindspore, centerdet")
    assert "imported before centerdet" in proc.stderr


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


def test_conv_is_fast_with_the_fix():
    """A 3×3 conv on a 64×96×96 map takes a few ms with the fix (hundreds of ms without on AVX-512)."""
    isa, ms_fixed = run(CONV_TIMER.format(imports="import centerdet")).stdout.split()[-2:]
    assert isa == "AVX2"
    assert float(ms_fixed) < 60.0, f"3x3 conv took {ms_fixed} ms with the fix"
    if _has_avx512():
        _, ms_unfixed = run(CONV_TIMER.format(imports="")).stdout.split()[-2:]
        # Proves the test measures what it claims: the unfixed path is much slower on these CPUs.
        assert float(ms_unfixed) > 3 * float(ms_fixed)
