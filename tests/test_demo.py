"""README command 1, shrunk: the demo runs every stage for both models and writes its summary."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("model, metric", [("centernet", "AP50"), ("centerface", "easy")])
def test_demo_runs_all_stages(model, metric, tmp_path):
    cmd = [sys.executable, "-m", "centerdet.demo", model, "--out", str(tmp_path / "demo"), "--train", "8", "--val", "4",
           "--train_steps", "2", "--batch_size", "4", "--input_res_train", "[64, 64]", "--num_parallel_workers", "1", "--log_interval", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "=== 1/3" in proc.stdout and "=== 3/3" in proc.stdout and "demo finished" in proc.stdout
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert metric in summary["metrics"] and set(summary["times"]) >= {"generate_s", "train_s", "eval_s"}
    for path in summary["pictures"].values():
        assert os.path.getsize(path) > 1000, path
