"""The graph cache: a later process loads the graph an earlier one stored and computes the same
numbers; a changed network, input shape or compile kind never loads another's graph; a damaged
entry is compiled again; detect compiles a cached shape at first sight."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FACE_RECIPE

# One process: the first graph (64x96) goes through the cache, the second (64x64) must compile as
# usual. Prints the cache's counts and a digest of each graph's outputs.
RUN = """
import centerdet, hashlib, json, sys, numpy as np, mindspore as ms
from centerdet import graph_cache
from centerdet.config import load_config
from centerdet.models import build_model
from centerdet.models.fuse import fold_batchnorm
from centerdet.runtime import compile_cell, init_device
cfg = load_config(sys.argv[2], {k: str(v) for k, v in json.loads(sys.argv[3]).items()})
init_device("CPU", 0, "graph", "onednn", sys.argv[1])
ms.set_seed(0)
net = build_model(cfg)
net.set_train(False)
fold_batchnorm(net)
digests = []
for shape in [(1, 3, 64, 96), (1, 3, 64, 64)]:
    x = ms.Tensor(np.random.RandomState(0).rand(*shape).astype(np.float32))
    compile_cell(net, x, cached=True)
    digests.append(hashlib.sha256(b"".join(o.asnumpy().tobytes() for o in net(x))).hexdigest())
print(json.dumps({**graph_cache.stats, "digests": digests}))
"""


def run(cache, overrides=None, recipe=FACE_RECIPE):
    """RUN in a fresh process with config compile_cache ``cache`` (a folder, or "off")."""
    script = os.path.join(os.environ["GRAPH_CACHE_TEST_DIR"], "run.py")  # MindSpore's cache wants a file
    with open(script, "w") as f:
        f.write(RUN)
    env = {k: v for k, v in os.environ.items() if k != "CENTERDET_COMPILE_CACHE"}
    proc = subprocess.run([sys.executable, script, str(cache), recipe, json.dumps(overrides or {})],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def entries(cache):
    return sorted(name for name in os.listdir(cache) if not name.startswith("."))


def test_a_later_run_loads_the_graph_and_a_changed_network_never_does(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPH_CACHE_TEST_DIR", str(tmp_path))
    cache = tmp_path / "graphs"
    first, _ = run(cache)
    assert (first["stored"], first["loaded"]) == (1, 0) and len(entries(cache)) == 1
    again, err = run(cache)
    assert (again["stored"], again["loaded"]) == (0, 1)
    assert again["digests"] == first["digests"]  # the loaded graph, and the one compiled after it
    assert "compile_cache_manager" not in err and "correctness risks" not in err
    # another head width is another graph: MindSpore's own cache (files by compile order) would
    # load the first one here and fail or compute the wrong maps
    wider, _ = run(cache, {"head_conv": 32})
    alone, _ = run("off", {"head_conv": 32})
    assert (wider["stored"], wider["loaded"]) == (1, 0) and (alone["stored"], alone["loaded"]) == (0, 0)
    assert wider["digests"] == alone["digests"] != first["digests"]
    assert len(entries(cache)) == 2
    # a damaged entry is compiled again, said in one line, and replaced
    [mindir] = [os.path.join(d, f) for d, _, files in os.walk(cache / entries(cache)[0]) for f in files
                if f.endswith(".mindir")]
    os.chmod(mindir, 0o600)
    with open(mindir, "r+b") as f:
        f.truncate(4000)
    damaged = [run(cache, {"head_conv": 32}), run(cache)]
    hit = [r for r, err in damaged if r["loaded"] == 1]
    missed = [(r, err) for r, err in damaged if r["loaded"] == 0]
    assert len(hit) == len(missed) == 1 and missed[0][0]["stored"] == 0
    assert "could not be loaded; it was compiled again and replaced" in missed[0][1]
    assert {r["digests"][0] for r, _ in damaged} == {first["digests"][0], wider["digests"][0]}
    healed = [run(cache, {"head_conv": 32})[0], run(cache)[0]]
    assert [r["loaded"] for r in healed] == [1, 1]


def test_the_key_follows_structure_shape_and_kind_not_weights():
    import mindspore as ms

    from centerdet import graph_cache
    from centerdet.config import load_config
    from centerdet.models import build_model

    x, y = (ms.Tensor(np.zeros(shape, np.float32)) for shape in [(1, 3, 64, 96), (1, 3, 64, 64)])
    a = build_model(load_config(FACE_RECIPE))
    key = graph_cache.fingerprint(a, [x], "cell")
    assert graph_cache.fingerprint(a, [x], "cell") == key
    for p in a.get_parameters():  # new weights, same graph
        p.set_data(ms.Tensor(np.ones(p.shape, np.float32)))
    assert graph_cache.fingerprint(a, [x], "cell") == key
    others = [graph_cache.fingerprint(a, [y], "cell"), graph_cache.fingerprint(a, [x], "jit")]
    a.set_train(True)
    others.append(graph_cache.fingerprint(a, [x], "cell"))
    assert len({key, *others}) == 4


def test_configure_names_an_unusable_folder(tmp_path):
    from centerdet import graph_cache
    from centerdet.errors import CenterDetError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CenterDetError, match="config key 'compile_cache' is .*file/graphs.*, which cannot be created"):
        graph_cache.configure(str(blocker / "graphs"))
    assert graph_cache.configure("off") is None


def test_detect_compiles_a_cached_shape_at_first_sight(face_checkpoint, tmp_path):
    """detect runs a shape op by op until its 4th call; a later run finds the graph in the cache
    and compiles at once, with the same detections."""
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    img = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    for i in range(4):
        cv2.imwrite(str(photos / f"p{i}.png"), img)
    env = {k: v for k, v in os.environ.items() if k != "CENTERDET_COMPILE_CACHE"}
    lines = []
    for out in ("first", "second"):
        proc = subprocess.run([sys.executable, "-m", "centerdet.detect", str(photos), "--config", FACE_RECIPE,
                               "--load_checkpoint_path", face_checkpoint, "--out", str(tmp_path / out),
                               "--score_thresh", "0.0", "--compile_cache", str(tmp_path / "graphs")],
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines.append(proc.stdout.strip().splitlines()[-1])
    assert "1 input shapes compiled; results" in lines[0]
    assert "1 input shapes compiled (1 from the graph cache); results" in lines[1]
    digests = [{n: hashlib.sha256(json.dumps(json.loads((tmp_path / out / f"p{i}.json").read_text())["detections"])
                                  .encode()).hexdigest() for i, n in enumerate("abcd")} for out in ("first", "second")]
    assert digests[0] == digests[1]


def test_a_cache_it_cannot_write_runs_uncached_in_one_line(tmp_path, monkeypatch, capsys):
    import mindspore as ms
    from mindspore import nn

    from centerdet import graph_cache
    from centerdet.runtime import compile_cell

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(graph_cache, "_root", str(tmp_path))
    monkeypatch.setattr(graph_cache, "_bound", False)
    monkeypatch.setattr(graph_cache, "_entry_script", lambda: __file__)  # xdist workers run from `python -c`
    monkeypatch.setattr(graph_cache.tempfile, "mkdtemp", refuse)
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    net, x = nn.Dense(3, 2), ms.Tensor(np.ones((4, 3), np.float32))
    try:
        compile_cell(net, x, cached=True)
    finally:
        ms.set_context(mode=mode)
    assert np.allclose(net(x).asnumpy(), np.ones((4, 3)) @ net.weight.asnumpy().T + net.bias.asnumpy())
    err = capsys.readouterr().err
    assert f"centerdet: warning: the graph cache {tmp_path} is not writable (Permission denied)" in err
    assert os.listdir(tmp_path) == [] and graph_cache.stats["stored"] == 0
