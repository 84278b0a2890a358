"""Surviving faults: SIGKILL mid-training then --resume, SIGTERM (preemption) stopping at a step
boundary with a checkpoint, one run per checkpoint folder, overflow steps skipped and counted, a
full disk found before training, result files that a crash leaves intact."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, run_script
from centerdet.engine.runlock import LOCK_NAME

ARGS = ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--input_res_train", "[64, 64]",
        "--batch_size", "4", "--num_parallel_workers", "1", "--max_objs", "16", "--log_interval", "1",
        "--warmup_steps", "2", "--train_steps", "8", "--save_checkpoint_steps", "1", "--save_checkpoint_num", "2",
        "--mindrecord_prefix", "faults.mind"]
STEP_LINE = re.compile(r"step (\d+)/8 loss: \S+ .* lr (\S+) ")


def _lrs(text):
    return {int(m.group(1)): m.group(2) for m in STEP_LINE.finditer(text)}


@pytest.fixture(scope="module")
def uninterrupted(tiny_coco, tmp_path_factory):
    """(data flags, lr per step) of the 8-step run uninterrupted."""
    work = tmp_path_factory.mktemp("uninterrupted")
    data = ["--data_dir", str(tiny_coco), "--mindrecord_dir", str(work / "mr")]
    whole = run_script("train.py", ARGS + data + ["--save_checkpoint_path", str(work / "whole")], work)
    want = _lrs(whole.stdout)
    assert sorted(want) == list(range(1, 9))
    return data, want


def test_sigkill_mid_training_then_resume_finishes_like_an_uninterrupted_run(uninterrupted, tmp_path):
    import centerdet  # noqa: F401
    import mindspore as ms

    data, want = uninterrupted

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
    assert f"lock: took over {ckpt / LOCK_NAME}, left by a run that is no longer running (process {proc.pid} " \
        in resumed.stdout
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


STOP_LINE = re.compile(r"stopped by SIGTERM at step (\d+)/8; checkpoint (\S+); resume with --resume true")


def _train_until(cmd, cwd, at_step, during=None):
    """Start ``cmd``, send SIGTERM once it has logged step ``at_step`` (after calling ``during``)
    and return (exit status, its output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = STEP_LINE.search(line)
        if m and int(m.group(1)) >= at_step:
            if during is not None:
                during()
                during = None
            proc.send_signal(signal.SIGTERM)
            break
    lines += proc.stdout.readlines()
    return proc.wait(timeout=120), "".join(lines)


@pytest.mark.slow
def test_sigterm_stops_at_a_step_with_a_checkpoint_and_resume_loses_nothing(uninterrupted, tmp_path, capsys):
    """Preempted twice at random steps (seeded), then resumed to the end: every step runs exactly
    once with the uninterrupted run's lr; while the first run trains, a second one on its folder
    is refused in one line and changes nothing."""
    import mindspore as ms
    import numpy as np

    from centerdet.cli import script

    train_main = script("train", "train.py")  # what train.py's main is
    data, want = uninterrupted
    ckpt = tmp_path / "ckpt"
    flags = ARGS + data + ["--save_checkpoint_path", str(ckpt), "--save_checkpoint_steps", "100"]
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *flags]
    rng = np.random.default_rng(int(os.environ.get("CENTERDET_TEST_SEED", "3")))
    first = int(rng.integers(1, 4))
    refused = []

    def second_run():  # in-process: the lock is taken before any data or network is built
        with pytest.raises(SystemExit) as exit_info:
            train_main(flags + ["--overwrite", "true"])
        refused.append((exit_info.value.code, capsys.readouterr().err))

    seen, resume, last, restarted = {}, [], None, 0
    for at_step in (first, int(rng.integers(first + 1, 7))):
        code, out = _train_until(cmd + resume, tmp_path, at_step, second_run if not resume else None)
        assert code == 128 + signal.SIGTERM, out[-3000:]
        stopped, path = STOP_LINE.search(out).groups()
        stopped = int(stopped)
        assert stopped >= at_step  # the step running when the signal came is finished
        assert int(ms.load_checkpoint(path)["step"].asnumpy()) == stopped
        assert not os.path.exists(ckpt / LOCK_NAME)  # released on the way out
        if resume:
            assert f"resume: restored {last} at step {restarted}/8" in out
        steps = _lrs(out)
        assert sorted(steps) == list(range((restarted if resume else 0) + 1, stopped + 1))
        assert not set(steps) & set(seen)
        seen.update(steps)
        last, restarted, resume = path, stopped, ["--resume", "true"]
    final = run_script("train.py", flags + resume, tmp_path)
    assert f"resume: restored {last} at step {restarted}/8" in final.stdout
    seen.update(_lrs(final.stdout))
    assert seen == want  # every step once, at the uninterrupted run's lr
    assert json.loads((ckpt / "history.json").read_text())["step"] == list(range(1, 9))

    [(code, err)] = refused
    assert code == 2
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"error: save_checkpoint_path {ckpt} is in use by another training run (process ")
    assert message.endswith("wait for it to finish, stop it, or choose another save_checkpoint_path")


def test_a_second_signal_stops_at_once():
    from centerdet.engine.stopping import StopRequests

    with StopRequests() as stops:
        assert stops.agreed() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stops.agreed() == "SIGTERM" and stops.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_a_lock_names_its_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    from centerdet.engine.runlock import RunLock
    from centerdet.errors import CenterDetError

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from centerdet.engine.runlock import RunLock; "
                               f"RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(CenterDetError, match=rf"in use by another training run \(process {holder.pid} on "):
        RunLock(str(tmp_path)).acquire()
    holder.kill()
    holder.wait()
    lines = []
    with RunLock(str(tmp_path), lines.append):
        assert lines == [f"lock: took over {tmp_path / LOCK_NAME}, left by a run that is no longer running "
                         f"({lines[0].split('(', 1)[1]}"] and f"process {holder.pid} " in lines[0]
        with pytest.raises(CenterDetError):  # held within one process too
            RunLock(str(tmp_path)).acquire()
    assert not os.path.exists(tmp_path / LOCK_NAME)
    with RunLock(str(tmp_path), lines.append):  # a released lock is free, with nothing to report
        assert len(lines) == 1


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


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_mindrecord_shard_is_named_before_any_step(tiny_coco, tmp_path, damage):
    import shutil

    import numpy as np

    from centerdet.config import load_config
    from centerdet.engine.build import prepare_mindrecord
    from centerdet.engine.trainer import train
    from centerdet.errors import CenterDetError

    overrides = dict(zip(ARGS[2::2], ARGS[3::2]), data_dir=str(tiny_coco), mindrecord_dir=str(tmp_path / "mr"),
                     mindrecord_shards="2", save_checkpoint_path=str(tmp_path / "ckpt"))
    overrides = {k.lstrip("-"): v for k, v in overrides.items()}
    cfg = load_config(ARGS[1], overrides)
    shard = prepare_mindrecord(cfg, log=lambda line: None)[1 if damage == "truncate" else 0]
    data = bytearray(open(shard, "rb").read())
    if damage == "truncate":
        del data[-100:]
    else:
        rng = np.random.default_rng(int(os.environ.get("CENTERDET_TEST_SEED", "5")))
        at = len(data) // 2 + int(rng.integers(-1000, 1000))
        data[at] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    lines = []
    with pytest.raises(CenterDetError) as info:
        train(cfg, log=lines.append)
    message = str(info.value)
    why = "its SHA-256 differs from the one recorded" if damage == "flip" else f"{len(data)} bytes, the conversion wrote"
    assert "\n" not in message and message.startswith(f"MindRecord shard {shard} is damaged ({why}")
    assert f"delete {tmp_path / 'mr'}/faults.mind* and run again" in message
    assert not [line for line in lines if re.search(r"step \d+/", line)]  # found before any step
    assert not os.path.exists(tmp_path / "ckpt" / LOCK_NAME)
    shutil.rmtree(tmp_path / "mr")

