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


TRIM_PROBE = """
import ctypes, ctypes.util
from centerdet.runtime import release_free_memory
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
# 300 MB of 4 KB blocks, every 64th kept: free memory the heap cannot shrink past (what a graph
# compile leaves), until malloc_trim hands its pages back.
blocks = [libc.malloc(4096) for _ in range(75000)]
for b in blocks:
    ctypes.memset(b, 1, 4096)
for i, b in enumerate(blocks):
    if i % 64:
        libc.free(b)
before = rss_mb()
print(release_free_memory(), before, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_memory_returns_fragmented_heap_pages():
    ok, before, after = run(TRIM_PROBE, drop_isa=False).stdout.split()[-3:]
    assert ok == "True"
    assert float(before) - float(after) > 150, (before, after)


def test_compile_cell_compiles_once_and_the_graph_is_reused():
    """The trainer and Predictor compile before the first call; that call must not compile again."""
    code = ("import centerdet, numpy as np, mindspore as ms\n"
            "from mindspore import nn, Tensor\n"
            "from centerdet.runtime import compile_cell\n"
            "ms.set_context(mode=ms.GRAPH_MODE); ms.set_device('CPU')\n"
            "net = nn.Dense(3, 2); x = Tensor(np.ones((4, 3), np.float32))\n"
            "compile_cell(net, x)\n"
            "print(len(net.compile_cache), np.allclose(net(x).asnumpy(), np.ones((4, 3)) @ net.weight.asnumpy().T + net.bias.asnumpy()), len(net.compile_cache))\n")
    n_before, same, n_after = run(code, drop_isa=False).stdout.split()[-3:]
    assert same == "True" and n_before == n_after == "1"


@pytest.mark.parametrize("target", ["GPU", "Ascend"])
def test_a_missing_device_is_one_line_naming_what_is_here(target):
    """No GPU or Ascend on this machine: one line instead of MindSpore's plugin warnings and traceback."""
    from centerdet.runtime import backend_available

    if backend_available(target):
        pytest.skip(f"this machine has {target}")
    proc = subprocess.run([sys.executable, "-c", f"from centerdet.runtime import init_device; init_device({target!r})"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "centerdet.errors.CenterDetError: device_target is " + target in proc.stderr
    assert f"finds no {target} (plugin or driver) on this machine, only CPU; pass --device_target CPU" in proc.stderr
    assert "[WARNING]" not in proc.stderr and "[ERROR]" not in proc.stderr and "Load dynamic library" not in proc.stderr
    cli = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.dirname(__file__)), "export.py"),
                          "--device_target", target, "--export_load_ckpt", "x.ckpt"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and cli.stderr.strip().startswith(f"error: device_target is {target}")
    assert len(cli.stderr.strip().splitlines()) == 1 and cli.stdout == ""


def test_muted_mindspore_warnings_drops_only_the_named_warnings():
    import logging

    from centerdet.runtime import _mindspore_logger, muted_mindspore_warnings

    logger = _mindspore_logger()
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append((record.levelname, record.getMessage()))
    logger.addHandler(handler)
    try:
        with muted_mindspore_warnings("'FusedSparseAdam' is deprecated"):
            logger.warning("'FusedSparseAdam' is deprecated from version 2.8.0")
            logger.warning("another warning")
            logger.error("'FusedSparseAdam' is deprecated, and this is an error")
        logger.warning("'FusedSparseAdam' is deprecated, after the block")
    finally:
        logger.removeHandler(handler)
    assert seen == [("WARNING", "another warning"), ("ERROR", "'FusedSparseAdam' is deprecated, and this is an error"),
                    ("WARNING", "'FusedSparseAdam' is deprecated, after the block")]


def test_an_error_mindspore_raises_still_reaches_the_user(tmp_path):
    """Muting warnings never hides MindSpore's errors: a shape error in a network is shown as raised."""
    code = ("import centerdet, mindspore as ms, numpy as np\n"
            "from centerdet.runtime import muted_mindspore_warnings\n"
            "with muted_mindspore_warnings():\n"
            "    ms.ops.matmul(ms.Tensor(np.ones((2, 3), np.float32)), ms.Tensor(np.ones((2, 3), np.float32))).asnumpy()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "CheckMatMulShapes" in proc.stderr
