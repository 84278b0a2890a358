"""Shared fixtures (a tiny synthetic COCO dataset generated once per session) and a runner for the
repository's entry scripts."""
import os
import subprocess
import sys

import pytest

# Tests (and the commands they start) compile every graph: none of them reads or fills the user's
# graph cache; tests/test_graph_cache.py gives its runs a cache folder of their own.
os.environ["CENTERDET_COMPILE_CACHE"] = "off"

import centerdet  # noqa: E402,F401  (the oneDNN fix must precede any mindspore import in tests)
import mindspore as ms  # noqa: E402

# Once, before any kernel runs: MindSpore refuses set_device after its runtime starts, so a test that
# runs a network in-process would otherwise break the fixtures of whichever tests come after it.
ms.set_device("CPU")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_collection_modifyitems(items):
    """Files with learning tests first (stable otherwise): with two processes each taking whole files
    in this order, the two ~4-minute tests start at once on different processes instead of
    trailing the run (pyproject's `--no-loadscope-reorder` keeps this order)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def run_script(script, args, cwd, expect=0, timeout=1200):
    """Run ``python <repo>/<script> args`` and assert its exit status (output shown when it differs)."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)
    assert proc.returncode == expect, f"{script} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory):
    """12 train / 6 val images of 128×128 px with the six shape classes."""
    from centerdet.data.synthetic import generate_coco

    root = tmp_path_factory.mktemp("tiny_coco")
    generate_coco(str(root), n_train=12, n_val=6, size=128, seed=7)
    return root


@pytest.fixture(params=["pynative", "graph"])
def mode(request):
    """Run a test once in PyNative and once in graph mode (CPU)."""
    import mindspore as ms

    old = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE if request.param == "graph" else ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    yield request.param
    ms.set_context(mode=old)


FACE_RECIPE = "centerface_mbv2_1xb16-20e_synthetic"


@pytest.fixture(scope="session")
def face_checkpoint(tmp_path_factory):
    """An untrained synthetic-recipe CenterFace checkpoint (random weights: detections everywhere at
    score_thresh 0), for the commands that only need one to run."""
    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.models import build_model

    ms.set_seed(3)
    path = str(tmp_path_factory.mktemp("detect") / "faces.ckpt")
    ms.save_checkpoint(build_model(load_config(FACE_RECIPE)), path)
    return path
