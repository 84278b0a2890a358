"""A non-editable install works from another folder: the wheel carries the recipes, the compiled
kernels and the `centerdet` console script, and nothing looks for the repository."""
import json
import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_wheel_runs_the_demo_outside_the_repository(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), ROOT],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = wheels.iterdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The test venv's packages (MindSpore & co.) by a plain path line: its .pth files, among them
    # the editable centerdet's, are not processed, so only the installed wheel provides centerdet.
    with open(os.path.join(site, "test_venv_packages.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = "import centerdet, centerdet._nms, centerdet._peaks; from centerdet import cpu_ops; " \
            "print(centerdet.__file__, cpu_ops.available())"
    where = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert where.returncode == 0 and where.stdout.startswith(site) and where.stdout.split()[1] == "True", \
        where.stdout + where.stderr

    demo = subprocess.run([python, "-m", "centerdet.demo", "centernet", "--out", "demo", "--train", "8", "--val", "4",
                           "--train_steps", "5", "--batch_size", "4", "--input_res_train", "[64, 64]",
                           "--input_res_test", "[64, 64]", "--num_parallel_workers", "1"],
                          capture_output=True, text=True, cwd=elsewhere, timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    summary = json.loads((elsewhere / "demo" / "summary.json").read_text())
    assert "AP50" in summary["metrics"] and summary["checkpoint"].endswith("_5.ckpt")
    assert os.path.isfile(summary["checkpoint"]) and os.path.getsize(summary["pictures"]["detections"]) > 1000
    config = subprocess.run([str(venv / "bin" / "centerdet"), "config", "--config", "centerface_mbv2_8xb8-140e_widerface"],
                            capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert config.returncode == 0 and "model: centerface" in config.stdout and "batch_size: 8" in config.stdout
    assert sorted(os.listdir(elsewhere)) == ["demo"]  # nothing but the demo's folder is written
