"""Surviving faults: SIGKILL mid-training then --resume, overflow steps skipped and counted, a full
disk found before training, result files that a crash leaves intact."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, run_script

ARGS = ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--input_res_train", "[64, 64]",
        "--batch_size", "4", "--num_parallel_workers", "1", "--max_objs", "16", "--log_interval", "1",
        "--warmup_steps", "2", "--train_steps", "8", "--save_checkpoint_steps", "1", "--save_checkpoint_num", "2",
        "--mindrecord_prefix", "faults.mind"]
STEP_LINE = re.compile(r"step (\d+)/8 loss: \S+ .* lr (\S+) ")


def _lrs(text):
    return {int(m.group(1)): m.group(2) for m in STEP_LINE.finditer(text)}


def test_sigkill_mid_training_then_resume_finishes_like_an_uninterrupted_run(tiny_coco, tmp_path):
    import centerdet  # noqa: F401
    import mindspore as ms

    data = ["--data_dir", str(tiny_coco), "--mindrecord_dir", str(tmp_path / "mr")]
    whole = run_script("train.py", ARGS + data + ["--save_checkpoint_path", str(tmp_path / "whole")], tmp_path)
    want = _lrs(whole.stdout)
    assert sorted(want) == list(range(1, 9))

    ckpt = tmp_path / "killed"
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *ARGS, *data, "--save_checkpoint_path", str(ckpt)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    killed_at = None
    for line in proc.stdout:
        m = STEP_LINE.search(line)
        if m and int(m.group(1)) >= 4:  # a step is logged just before its checkpoint is written
            killed_at = int(m.group(1))
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL
    visible = sorted(n for n in os.listdir(ckpt) if n.endswith(".ckpt") and not n.startswith("."))
    assert visible
    for name in visible:  # whatever a later run can see is a whole checkpoint
        assert int(ms.load_checkpoint(str(ckpt / name))["step"].asnumpy()) >= 1

    resumed = run_script("train.py", ARGS + data + ["--save_checkpoint_path", str(ckpt), "--resume", "true"], tmp_path)
    restored = int(re.search(r"resume: restored \S+ at step (\d+)/8", resumed.stdout).group(1))
    lost = killed_at - restored
    print(f"killed after step {killed_at}, resumed from step {restored}: {lost} step(s) lost")
    assert 0 <= lost <= 1  # checkpoints every step: at most the one being written
    got = _lrs(resumed.stdout)
    assert sorted(got) == list(range(restored + 1, 9))
    assert all(got[s] == want[s] for s in got)  # the same place in the lr schedule, step by step
    final = ms.load_checkpoint(str(ckpt / "centernet-3_8.ckpt"))  # 3 steps per epoch
    assert int(final["global_step"].asnumpy().item()) == 8 and int(final["step"].asnumpy().item()) == 8
    assert json.loads((ckpt / "history.json").read_text())["step"] == list(range(1, 9))
    assert not [n for n in os.listdir(ckpt) if ".tmp" in n]  # a killed write's temp file is cleaned up


def test_an_overflow_step_is_skipped_counted_and_training_goes_on(tiny_coco, tmp_path, monkeypatch):
    """Step 2 runs with an infinite loss scale (every gradient overflows): it must change no weight
    (Adam's step counter stays behind by one), be logged and counted, and the run must go on."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    from centerdet.config import load_config
    from centerdet.engine import step as step_mod
    from centerdet.engine.trainer import train

    class OverflowOnSecondStep(step_mod.TrainStep):
        calls = 0

        def __call__(self, *batch):
            OverflowOnSecondStep.calls += 1
            if OverflowOnSecondStep.calls != 2:
                return super().__call__(*batch)
            scale = self.scale_sense.asnumpy().copy()
            self.scale_sense.set_data(Tensor(np.float32(np.inf)))
            out = super().__call__(*batch)
            self.scale_sense.set_data(Tensor(scale))
            return out

    monkeypatch.setattr(step_mod, "TrainStep", OverflowOnSecondStep)
    cfg = load_config("centernet_r18-ida_1xb16-16e_synthetic",
                      {"data_dir": str(tiny_coco), "mindrecord_dir": str(tmp_path / "mr"), "input_res_train": "[64, 64]",
                       "save_checkpoint_path": str(tmp_path / "ck"), "mindrecord_prefix": "ovf.mind", "log_interval": "1",
                       "num_parallel_workers": "1", "batch_size": "4", "train_steps": "4", "mode": "pynative",
                       "loss_scale_mode": "dynamic", "save_checkpoint_steps": "4"})
    lines = []
    try:
        last = train(cfg, log=lines.append)
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    text = "\n".join(lines)
    assert "step 2/4 skipped: loss or gradients not finite (1 in a row)" in text
    assert "1 steps skipped because of non-finite loss or gradients" in text and "step 4/4" in text
    final = ms.load_checkpoint(last)
    assert int(final["step"].asnumpy().item()) == 4 and int(final["global_step"].asnumpy().item()) == 3


def test_full_disk_is_found_before_training(tiny_coco, tmp_path, monkeypatch):
    import shutil

    from centerdet.config import load_config
    from centerdet.data.mindrecord import convert
    from centerdet.engine.trainer import train
    from centerdet.errors import CenterDetError
    from centerdet import fileio

    cfg = load_config("centernet_r18-ida_1xb16-16e_synthetic",
                      {"data_dir": str(tiny_coco), "mindrecord_dir": str(tmp_path / "mr"), "input_res_train": "[64, 64]",
                       "save_checkpoint_path": str(tmp_path / "ck"), "mindrecord_prefix": "disk.mind",
                       "num_parallel_workers": "1", "batch_size": "4", "mode": "pynative"})
    real = shutil.disk_usage
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(CenterDetError, match=r"mindrecord_dir .* has 0 MB free but needs about"):
        train(cfg, log=lambda line: None)
    assert not os.path.isdir(tmp_path / "mr") or os.listdir(tmp_path / "mr") == []
    monkeypatch.setattr(fileio.shutil, "disk_usage", real)
    convert(str(tiny_coco / "annotations" / "train.json"), str(tiny_coco / "images" / "train"),
            cfg.mindrecord_dir, cfg.mindrecord_prefix, log=lambda line: None)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: real(p)._replace(free=50 * 2**20))
    with pytest.raises(CenterDetError, match=r"save_checkpoint_path .* has 50 MB free .*kept \(save_checkpoint_num\)"):
        train(cfg, log=lambda line: None)
    assert os.listdir(tmp_path / "ck") == []


def test_a_crash_while_writing_a_result_file_keeps_the_old_one(tmp_path, monkeypatch):
    from centerdet import fileio

    path = tmp_path / "metrics.json"
    fileio.write_json(path, {"AP": 0.5})

    def disk_error(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", disk_error)
    with pytest.raises(OSError):
        fileio.write_json(path, {"AP": 0.7})
    assert json.loads(path.read_text()) == {"AP": 0.5} and os.listdir(tmp_path) == ["metrics.json"]
