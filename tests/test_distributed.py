"""Data-parallel training on MindSpore's own distributed engine: two CPU workers under msrun.

Checks (a) both ranks end with bit-identical trainable weights, (b) those weights equal a
single-process computation that averages the gradients of the two ranks' batches (BatchNorm in
training mode normalises over each device's batch, so that, not one forward pass over the joined
batch, is what data parallelism computes), (c) the ranks trained on disjoint shards, and that only
rank 0 converted the MindRecord and wrote checkpoints.
"""
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

import centerdet  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, BATCH = 3, 2


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overrides(data, out):
    # Adam eps 1: with the usual tiny eps the first steps move each weight by ~lr·sign(gradient),
    # so gradients at float-noise level would flip signs and hide a real difference among them.
    return {"data_dir": str(data), "mindrecord_dir": str(out / "mr"), "input_res_train": "[64, 64]",
            "batch_size": str(BATCH), "train_steps": str(STEPS), "warmup_steps": "0", "rand_crop": "false",
            "flip_prop": "0", "color_aug": "false", "num_parallel_workers": "1", "enable_lossscale": "false",
            "log_interval": "1", "log_image_ids": "true", "eps": "1.0", "save_checkpoint_steps": str(STEPS)}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """(config, overrides, initial checkpoint, output dir, msrun stdout) of a finished 2-worker run."""
    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.data.synthetic import generate_coco
    from centerdet.models import build_model

    msrun = shutil.which("msrun", path=os.path.dirname(sys.executable))
    if msrun is None:
        pytest.skip("msrun is not installed beside this python")
    out = tmp_path_factory.mktemp("dist")
    generate_coco(str(out / "data"), n_train=16, n_val=2, size=64, seed=7)
    config = "centernet_r18-ida_1xb16-16e_synthetic"
    overrides = _overrides(out / "data", out)
    # Both ranks start from this file, so the reference below starts from the same weights.
    ms.set_seed(3)
    init = str(out / "init.ckpt")
    ms.save_checkpoint(build_model(load_config(config, overrides)), init)
    args = [a for k, v in overrides.items() for a in (f"--{k}", v)]
    cmd = [msrun, "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
           f"--log_dir={out / 'msrun'}", "--join=True", os.path.join(ROOT, "train.py"), "--config", config, *args,
           "--distribute", "true", "--device_num", "2", "--load_checkpoint_path", init,
           "--save_checkpoint_path", str(out / "ckpt")]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=str(out))
    logs = "".join(open(os.path.join(out, "msrun", f)).read() for f in sorted(os.listdir(out / "msrun")))
    assert proc.returncode == 0, logs[-4000:]
    return config, overrides, init, out


def _rank_files(out, rank):
    folder = out / "ckpt" / f"LOG{rank}"
    log = (folder / "training_log.txt").read_text()
    ids = {int(line.split()[0]): [int(i) for i in line.split()[1:]] for line in (folder / "image_ids.txt").read_text().splitlines()}
    return log, ids


def test_ranks_end_identical_and_saw_disjoint_shards(two_workers):
    _, _, _, out = two_workers
    (log0, ids0), (log1, ids1) = _rank_files(out, 0), _rank_files(out, 1)
    digests = [re.search(r"rank \d weights digest (\w+)", log).group(1) for log in (log0, log1)]
    assert digests[0] == digests[1]
    assert "2 device(s)" in log0 and "step 3/3" in log0 and "step 3/3" in log1
    assert "last checkpoint " in log0 and "checkpoints are rank 0's" in log1 and "None" not in log1
    assert sorted(ids0) == sorted(ids1) == [1, 2, 3] and all(len(v) == BATCH for v in ids0.values())
    seen0 = {i for v in ids0.values() for i in v}
    seen1 = {i for v in ids1.values() for i in v}
    assert len(seen0) == len(seen1) == STEPS * BATCH and not seen0 & seen1
    # Checkpoints and the loss history from rank 0 only; the MindRecord converted once.
    assert sorted(os.listdir(out / "ckpt")) == ["LOG0", "LOG1", "centernet-1_3.ckpt", "history.json", "loss_curve.png"]
    # Rank 1 either waited for rank 0 or arrived after it finished; it never converts itself.
    assert "converting" in log0 and "rank 1: reading" in log1 and "converting" not in log1


def test_weights_equal_single_process_gradient_mean(two_workers):
    import mindspore as ms
    from mindspore import Tensor, nn

    from centerdet.config import load_config
    from centerdet.data.mindrecord import find_mindrecord
    from centerdet.data.pipeline import create_train_dataset
    from centerdet.engine.lr import build_lr
    from centerdet.engine.step import NetWithLoss
    from centerdet.engine.build import param_groups
    from centerdet.losses import build_loss
    from centerdet.models import build_model

    config, overrides, init, out = two_workers
    cfg = load_config(config, overrides)
    files = find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix)
    batches = []
    for rank in (0, 1):
        data = create_train_dataset(files, cfg, rank, 2, with_ids=True)
        batches.append([b for _, b in zip(range(STEPS), data.create_tuple_iterator(num_epochs=1))])
        # The shards rebuilt here are the ones the rank logged, step by step.
        logged = _rank_files(out, rank)[1]
        assert [b[-1].asnumpy().tolist() for b in batches[-1]] == [logged[s + 1] for s in range(STEPS)]

    old_mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        def train(use_ranks):
            net = build_model(cfg)
            ms.load_param_into_net(net, ms.load_checkpoint(init))
            net.set_train()
            lr = build_lr(cfg, STEPS, 4)
            opt = nn.Adam(param_groups(net, cfg.weight_decay), learning_rate=Tensor(lr), eps=cfg.eps)
            grad_fn = ms.value_and_grad(NetWithLoss(net, build_loss(cfg)), None, opt.parameters, has_aux=True)
            for step in range(STEPS):
                grads = [grad_fn(*batches[r][step][:-1])[1] for r in use_ranks]
                opt(tuple(sum(g) / len(grads) for g in zip(*grads)))
            return {p.name: p.asnumpy() for p in net.trainable_params()}

        reference = train((0, 1))
        rank0_only = train((0,))
    finally:
        ms.set_context(mode=old_mode)
    saved = ms.load_checkpoint(str(out / "ckpt" / "centernet-1_3.ckpt"))
    diff = max(np.abs(saved[n].asnumpy() - w).max() for n, w in reference.items())
    control = max(np.abs(rank0_only[n] - w).max() for n, w in reference.items())
    print(f"2-worker weights vs single-process gradient mean: max |diff| {diff:.2e}; "
          f"vs rank 0's batches alone: {control:.2e}")
    # Measured 1.5e-8 (graph vs pynative float order) against 1.0e-4 for the control.
    assert diff < 1e-6 and control > 100 * diff


def test_cpu_launcher_trains_centerface_on_two_workers(tmp_path):
    """scripts/run_distributed_train_cpu.sh, as README's "Train on many devices" runs it."""
    from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface

    if shutil.which("msrun", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("msrun is not installed beside this python")
    generate_widerface(str(tmp_path / "faces"), n_train=8, n_val=2, size=96, seed=3,
                       opts=FaceSceneOptions(min_face=10, max_face=40, max_faces=4))
    env = dict(os.environ, MASTER_PORT=str(_free_port()), PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "run_distributed_train_cpu.sh"), "2",
         "centerface_mbv2_1xb16-20e_synthetic", "--data_dir", str(tmp_path / "faces"),
         "--mindrecord_dir", str(tmp_path / "mr"), "--input_res_train", "[64, 64]", "--batch_size", "2",
         "--train_steps", "2", "--num_parallel_workers", "1", "--save_checkpoint_path", str(tmp_path / "ckpt")],
        capture_output=True, text=True, timeout=900, env=env, cwd=str(tmp_path))
    logs = [(tmp_path / "ckpt" / f"LOG{r}" / "training_log.txt").read_text() for r in (0, 1)]
    assert proc.returncode == 0, proc.stdout[-2000:] + "".join(logs)
    digests = {re.search(r"weights digest (\w+)", log).group(1) for log in logs}
    assert len(digests) == 1 and all("× 2 device(s)" in log and "lm" in log for log in logs)
    assert sorted(os.listdir(tmp_path / "LOG")) == ["ms_log", "scheduler.log", "worker_0.log", "worker_1.log"]
    assert [f for f in os.listdir(tmp_path / "ckpt") if f.endswith(".ckpt")] == ["centerface-1_2.ckpt"]
    # the cluster bring-up's C++ warnings (connection retries, ~40 lines) are not shown; msrun's own
    # "Start ... process" lines and ours are
    shown = (proc.stdout + proc.stderr).splitlines()
    assert not [line for line in shown if re.match(r"\[(WARNING|INFO)\] ", line)] and any("train: done" in x for x in shown)


def _wait_for(path, pattern, timeout=180):
    """The first match of ``pattern`` in the file at ``path`` once it appears there."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            m = re.search(pattern, open(path).read())
            if m:
                return m
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in {path} after {timeout} s")


@pytest.mark.slow
def test_sigterm_to_the_launcher_or_one_worker_stops_every_rank_at_one_step(two_workers, tmp_path):
    """A preempted msrun (its workers get SIGTERM when it dies), then a resumed run in which only
    rank 1 is signalled: each time both ranks stop after the same step, rank 0 writes that step's
    checkpoint, and the resumed run goes on from it at the schedule's lr."""
    import signal

    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.engine.lr import build_lr

    config, overrides, _, out = two_workers
    overrides = {**overrides, "train_steps": "8", "save_checkpoint_steps": "100", "warmup_steps": "3",
                 "log_image_ids": "false", "save_checkpoint_path": str(tmp_path / "ckpt")}
    args = [a for k, v in overrides.items() for a in (f"--{k}", v)]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    logs = [tmp_path / "ckpt" / f"LOG{r}" / "training_log.txt" for r in (0, 1)]
    lr = build_lr(load_config(config, overrides), 8, 4)  # 16 images, 2 per rank and step: 4 steps per epoch
    stopped_at, resume, previous = 0, [], None
    for target in ("launcher", "rank 1"):
        log_dir = tmp_path / f"msrun_{target[0]}"
        cmd = [shutil.which("msrun", path=os.path.dirname(sys.executable)), "--worker_num=2", "--local_worker_num=2",
               f"--master_port={_free_port()}", f"--log_dir={log_dir}", "--join=True", os.path.join(ROOT, "train.py"),
               "--config", config, *args, "--distribute", "true", "--device_num", "2", *resume]
        for log in logs:
            if log.exists():
                log.rename(log.with_suffix(f".{stopped_at}.txt"))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=str(tmp_path))
        try:
            _wait_for(logs[0], rf"step {stopped_at + 2}/8 loss")
            if target == "launcher":
                proc.send_signal(signal.SIGTERM)
            else:
                os.kill(int(_wait_for(logs[1], r"rank 1 \(pid (\d+)\)").group(1)), signal.SIGTERM)
            stops = [int(_wait_for(log, r"stopped by SIGTERM at step (\d+)/8").group(1)) for log in logs]
            proc.wait(timeout=120)
        finally:
            proc.kill()
            # msrun's `tail -f` of each worker log outlives a msrun ended by a signal
            subprocess.run(["pkill", "-f", f"tail -f {log_dir}/"], check=False)
        assert stops[0] == stops[1] >= stopped_at + 2, stops
        text = [log.read_text() for log in logs]
        assert "; rank 0 wrote the checkpoint;" in text[1]
        path = re.search(r"stopped by SIGTERM at step \d+/8; checkpoint (\S+);", text[0]).group(1)
        assert int(ms.load_checkpoint(path)["step"].asnumpy()) == stops[0]
        if resume:
            assert f"resume: restored {previous} at step {stopped_at}/8" in text[0]
        for t in text:  # every step once in this run, at the schedule's lr
            steps = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"step (\d+)/8 loss: .* lr (\S+) ", t)}
            assert sorted(steps) == list(range(stopped_at + 1, stops[0] + 1))
            assert all(abs(v - lr[s - 1]) <= 0.005 * lr[s - 1] for s, v in steps.items())
        previous, stopped_at, resume = path, stops[0], ["--resume", "true"]
    assert not os.path.exists(tmp_path / "ckpt" / ".centerdet_train.lock")
    assert sorted(f for f in os.listdir(tmp_path / "ckpt") if f.endswith(".ckpt"))[-1] == os.path.basename(previous)


@pytest.mark.slow
def test_two_workers_resumed_on_one_go_on_with_the_rest_of_the_epoch(two_workers, tmp_path):
    """3 steps of 2 × 2 images on 2 workers (12 of the epoch's 16), then --resume on 1 worker: it
    starts at step 12 / (2 × 1) = 6, runs the epoch's last 4 images (steps 7, 8), then epoch 2, at
    the lr of the 1-device schedule; each image of the interrupted epoch is seen exactly once."""
    import mindspore as ms
    import mindspore.dataset as ds

    from centerdet.config import load_config
    from centerdet.data.mindrecord import find_mindrecord
    from centerdet.engine.lr import build_lr

    config, overrides, _, out = two_workers
    ckpt = tmp_path / "ckpt"
    overrides = {**overrides, "train_steps": "3", "save_checkpoint_steps": "3", "warmup_steps": "4",
                 "save_checkpoint_path": str(ckpt)}
    args = [a for k, v in overrides.items() for a in (f"--{k}", v)]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [shutil.which("msrun", path=os.path.dirname(sys.executable)), "--worker_num=2", "--local_worker_num=2",
           f"--master_port={_free_port()}", f"--log_dir={tmp_path / 'msrun'}", "--join=True",
           os.path.join(ROOT, "train.py"), "--config", config, *args, "--distribute", "true", "--device_num", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:]
    resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--config", config, *args,
                              "--train_steps", "10", "--resume", "true"],
                             capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    log = resumed.stdout
    assert ("resume: written at step 3 on 2 device(s), now 1: 12 images seen = step 6 at batch 2 x 1; "
            "the lr schedule and the step count are this run's, the rest of epoch 1 (12 of its images done) "
            "is shared among the 1 device(s)") in log
    cfg = load_config(config, {**overrides, "train_steps": "10"})
    lr = build_lr(cfg, 10, 8)  # 16 images at 2 per step on one device
    steps = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"step (\d+)/10 loss: .* lr (\S+) ", log)}
    assert sorted(steps) == [7, 8, 9, 10]
    assert all(abs(v - lr[s - 1]) <= 0.005 * lr[s - 1] for s, v in steps.items())

    def ids(path, wanted):
        rows = [line.split() for line in open(path).read().splitlines()]
        return [int(i) for row in rows if int(row[0]) in wanted for i in row[1:]]

    first = ids(ckpt / "LOG0" / "image_ids.txt", {1, 2, 3}) + ids(ckpt / "LOG1" / "image_ids.txt", {1, 2, 3})
    rest = ids(ckpt / "image_ids.txt", {7, 8})
    files = find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix)
    every = [int(r[0]) for r in ds.MindDataset(files, columns_list=["image_id"], shuffle=False)
             .create_tuple_iterator(output_numpy=True)]
    assert len(first) == 12 and len(rest) == 4 and sorted(first + rest) == sorted(every)
    final = ms.load_checkpoint(str(ckpt / "centernet-2_10.ckpt"))
    assert [int(final[k].asnumpy().item()) for k in ("images_seen", "data_epoch", "epoch_position", "device_num",
                                              "global_step")] == [12 + 4 * 2, 1, 4, 1, 10]
