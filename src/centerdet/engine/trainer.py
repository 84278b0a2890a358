"""The training loop: data, model, optimizer, compiled step, logging, checkpoints, resume."""
import json
import math
import os
import time

import numpy as np

from centerdet.data.coco import split_paths
from centerdet.data.mindrecord import check_source, converter_for, find_mindrecord
from centerdet.data.pipeline import create_train_dataset
from centerdet.engine.checkpoint import CheckpointManager, load_backbone, load_weights, restore_training
from centerdet.engine.lr import build_lr
from centerdet.engine.progress import Progress, fmt_duration
from centerdet.errors import CenterDetError
from centerdet.fileio import check_free_space, ensure_writable_dir, write_json


def prepare_mindrecord(cfg, log=print, rank=0, poll_seconds=2.0):
    """Return the MindRecord files for training, converting the train split on first use. In a
    distributed run only rank 0 converts; the other ranks wait for its files (the conversion
    appears all at once, so a file seen is a finished file)."""
    if not cfg.mindrecord_dir:
        raise CenterDetError("config key 'mindrecord_dir' is empty: set it to where MindRecord files are "
                             "(or should be written)")
    files = find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix)
    if files and cfg.data_dir:
        check_source(cfg.mindrecord_dir, cfg.mindrecord_prefix, split_paths(cfg, "train")[0])
    if files or rank != 0:
        if not files:
            files = _wait_for_rank_0(cfg, log, rank, poll_seconds)
        if rank != 0:
            log(f"rank {rank}: reading {len(files)} MindRecord file(s) '{cfg.mindrecord_prefix}' from "
                f"{cfg.mindrecord_dir}")
        return files
    if not cfg.data_dir:
        raise CenterDetError(f"no MindRecord '{cfg.mindrecord_prefix}' in {cfg.mindrecord_dir} and 'data_dir' "
                             f"is empty: convert a dataset first (scripts/convert_dataset_to_mindrecord.sh)")
    ann, img_dir = split_paths(cfg, "train")
    log(f"no MindRecord in {cfg.mindrecord_dir}: converting {ann} first (done once)")
    converter_for(cfg.model)(ann, img_dir, cfg.mindrecord_dir, cfg.mindrecord_prefix, cfg.mindrecord_shards, log=log)
    return find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix)


def _wait_for_rank_0(cfg, log, rank, poll_seconds):
    log(f"rank {rank}: waiting for rank 0 to write MindRecord '{cfg.mindrecord_prefix}' in {cfg.mindrecord_dir}")
    waited, files = 0.0, []
    while not files:
        time.sleep(poll_seconds)
        waited += poll_seconds
        if waited % 60 < poll_seconds:
            log(f"rank {rank}: still waiting for the MindRecord conversion ({fmt_duration(waited)})")
        files = find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix)
    return files


def param_groups(net, weight_decay):
    """Weight decay on conv/dense weights only; biases and BN parameters are excluded."""
    decay, no_decay = [], []
    for p in net.trainable_params():
        (decay if p.name.endswith("weight") and p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def init_distributed(cfg):
    """(rank, group size); data parallel with gradient mean when cfg.distribute is true."""
    if not cfg.distribute:
        return 0, 1
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank, size = get_rank(), get_group_size()
    if cfg.device_num > 1 and cfg.device_num != size:
        raise CenterDetError(f"config key 'device_num' is {cfg.device_num} but the launcher started {size} "
                             f"processes; set device_num to {size} (or leave it at 1)")
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=size)
    if cfg.device_target == "CPU":
        # CPU workers share this machine's cores (msrun starts them all here).
        from centerdet import cpu_ops

        cpu_ops.set_threads(max(1, len(os.sched_getaffinity(0)) // size))
    return rank, size


def rank_logger(log, path):
    """``log`` that also appends each line to ``path`` (a distributed rank's own log file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    stream = open(path, "a", encoding="utf-8", buffering=1)

    def both(line):
        log(line)
        stream.write(line + "\n")

    both.close = stream.close
    return both


def weights_digest(net):
    """SHA-1 of the trainable weights: equal on every rank of a data-parallel run (the BatchNorm
    running statistics are not trainable and stay per rank, as in the model zoo)."""
    import hashlib

    h = hashlib.sha1()
    for p in sorted(net.trainable_params(), key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(p.asnumpy().tobytes())
    return h.hexdigest()


class History:
    """Per-interval mean losses, kept for the loss-curve PNG and history.json."""

    def __init__(self, path, parts=("hm", "wh", "off")):
        self.path = path
        self.keys = ("loss",) + tuple(f"{p}_loss" for p in parts)
        self.data = {"step": [], **{k: [] for k in self.keys}}
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    loaded = json.load(f)
                if set(self.data) <= set(loaded):
                    self.data = loaded
            except (OSError, json.JSONDecodeError):
                pass

    def add(self, step, values):
        # On resume, drop entries past the restored step so the curve has no duplicates.
        while self.data["step"] and self.data["step"][-1] >= step:
            for k in self.data:
                self.data[k].pop()
        self.data["step"].append(step)
        for k, v in zip(self.keys, values):
            self.data[k].append(float(v))

    def save(self, png_path=None):
        write_json(self.path, self.data)
        if png_path and len(self.data["step"]) > 1:
            from centerdet.visualize import plot_loss_curve
            plot_loss_curve(self.data, png_path, title="training loss")


def train(cfg, log=print):
    import mindspore as ms
    from mindspore import Tensor, nn

    from centerdet.losses import LOSS_PARTS, build_loss
    from centerdet.models import build_model, describe_model
    from centerdet.engine.step import NetWithLoss, TrainStep
    from centerdet import cpu_ops
    from centerdet.runtime import compile_cell, init_device

    init_device(cfg.device_target, cfg.device_id, cfg.mode, cfg.cpu_kernels)
    ms.set_seed(cfg.seed)
    rank, group = init_distributed(cfg)
    is_main = rank == 0
    ensure_writable_dir(cfg.save_checkpoint_path, "save_checkpoint_path")
    rank_dir = os.path.join(cfg.save_checkpoint_path, f"LOG{rank}") if group > 1 else cfg.save_checkpoint_path
    if group > 1:
        log = rank_logger(log, os.path.join(rank_dir, "training_log.txt"))
    ids_file = None
    if cfg.log_image_ids:
        os.makedirs(rank_dir, exist_ok=True)
        ids_file = open(os.path.join(rank_dir, "image_ids.txt"), "a", encoding="utf-8", buffering=1)

    files = prepare_mindrecord(cfg, log, rank)
    dataset = create_train_dataset(files, cfg, rank, group, with_ids=cfg.log_image_ids)
    steps_per_epoch = dataset.get_dataset_size()
    if steps_per_epoch == 0:
        raise CenterDetError(f"batch_size {cfg.batch_size} is larger than the {cfg.mindrecord_prefix} dataset "
                             f"(per device); lower batch_size")
    total = cfg.train_steps if cfg.train_steps > 0 else cfg.epoch_size * steps_per_epoch
    epochs = math.ceil(total / steps_per_epoch)
    lr = build_lr(cfg, total, steps_per_epoch)

    net = build_model(cfg)
    if getattr(cfg, "pretrained_backbone", "") and not cfg.resume:
        load_backbone(net, cfg.pretrained_backbone, log=log)
    if cfg.load_checkpoint_path and not cfg.resume:
        load_weights(net, cfg.load_checkpoint_path, log=log)
    loss = build_loss(cfg)
    parts_names = LOSS_PARTS[cfg.model]
    optimizer = nn.Adam(param_groups(net, cfg.weight_decay), learning_rate=Tensor(lr), eps=cfg.eps)
    scale = cfg.loss_scale_value if cfg.enable_lossscale else 1.0
    update = None
    if cfg.enable_lossscale and cfg.loss_scale_mode == "dynamic":
        update = nn.DynamicLossScaleUpdateCell(scale, cfg.scale_factor, cfg.scale_window)
    step_cell = TrainStep(NetWithLoss(net, loss), optimizer, scale, update)
    step_cell.set_train()

    ckpts = CheckpointManager(cfg.save_checkpoint_path, cfg.model, cfg.save_checkpoint_num)
    if is_main and cfg.enable_save_ckpt:
        # Kept checkpoints + the one being written, each holding weights and Adam's two moments.
        size = sum(p.size * p.itemsize for p in step_cell.get_parameters())
        check_free_space(cfg.save_checkpoint_path, size * (cfg.save_checkpoint_num + 1), "save_checkpoint_path",
                         f"{cfg.save_checkpoint_num} checkpoint(s) of {size / 2**20:.0f} MB are kept "
                         f"(save_checkpoint_num); free space or choose another save_checkpoint_path")
        stale = ckpts.remove_stale_temps()
        if stale:
            log(f"removed {stale} partial checkpoint file(s) of an interrupted run")
    start = 0
    if cfg.resume:
        latest = ckpts.latest()
        if latest is None:
            log(f"resume: no checkpoint in {cfg.save_checkpoint_path}; starting from step 0")
        else:
            start, _ = restore_training(step_cell, latest)
            log(f"resume: restored {latest} at step {start}/{total}")
    history = History(os.path.join(cfg.save_checkpoint_path, "history.json"), parts_names) if is_main else None
    curve_png = os.path.join(cfg.save_checkpoint_path, "loss_curve.png")
    if start >= total:
        log(f"training already finished ({start}/{total} steps)")
        return ckpts.latest()

    log(f"train: {cfg.model} {describe_model(cfg)} input {cfg.input_res_train}, "
        f"{steps_per_epoch} steps/epoch × batch {cfg.batch_size} × {group} device(s), {total} steps; "
        f"rank {rank}")
    if cfg.device_target == "CPU":
        log(f"kernels: {cpu_ops.status()}")
    profiler = None
    if cfg.need_profiler:
        from mindspore import Profiler
        prof_dir = cfg.profiler_path or os.path.join(cfg.save_checkpoint_path, "profiler")
        profiler = Profiler(output_path=ensure_writable_dir(prof_dir, "profiler_path"))
    progress = Progress(total, start)
    step, bad_streak, skipped_total = start, 0, 0
    last_good = ckpts.latest()
    window, window_start = [], time.time()
    # One flat stream of batches; a resumed run simply draws the steps it still owes.
    repeats = math.ceil((total - start) / steps_per_epoch)
    iterator = dataset.repeat(repeats).create_tuple_iterator(num_epochs=1)
    for batch in iterator:
        epoch = step // steps_per_epoch
        if ids_file is not None:
            ids_file.write(f"{step + 1} " + " ".join(str(int(i)) for i in batch[-1].asnumpy()) + "\n")
            batch = batch[:-1]
        if step == start:
            compile_cell(step_cell, *batch)
        loss_v, parts, overflow, scale_v = step_cell(*batch)
        step += 1
        loss_f = float(loss_v.asnumpy())
        if bool(overflow.asnumpy()) or not math.isfinite(loss_f):
            bad_streak += 1
            skipped_total += 1
            log(f"step {step}/{total} skipped: loss or gradients not finite ({bad_streak} in a row)")
            if bad_streak > cfg.max_nonfinite_steps:
                raise CenterDetError(f"loss or gradients not finite for {bad_streak} consecutive steps "
                                     f"(last at step {step}); last good checkpoint: {last_good or 'none'}")
        else:
            bad_streak = 0
            window.append([loss_f, *parts.asnumpy().tolist()])
        if window and (step % cfg.log_interval == 0 or step == total):
            mean = np.mean(window, 0)
            speed = len(window) * cfg.batch_size * group / max(time.time() - window_start, 1e-9)
            parts_text = " ".join(f"{n} {v:.4f}" for n, v in zip(parts_names, mean[1:]))
            log(f"epoch {epoch + 1}/{epochs} step {step}/{total} loss {mean[0]:.4f} "
                f"({parts_text}) lr {lr[step - 1]:.2e} "
                f"scale {float(scale_v.asnumpy()):g} | {speed:.1f} img/s | "
                f"elapsed {fmt_duration(progress.elapsed())} ETA {fmt_duration(progress.eta(step))}")
            if history is not None:
                history.add(step, mean)
            window, window_start = [], time.time()
        if is_main and cfg.enable_save_ckpt and (step % cfg.save_checkpoint_steps == 0 or step == total):
            last_good = ckpts.save(step_cell, step, epoch + 1)
            history.save(curve_png)
        if step >= total:
            break
    iterator.stop()
    if profiler is not None:
        profiler.analyse()
        log(f"profiler: results in {prof_dir}")
    if skipped_total:
        log(f"{skipped_total} steps skipped because of non-finite loss or gradients")
    if history is not None:
        history.save(curve_png)
    if ids_file is not None:
        ids_file.close()
    if group > 1:
        log(f"train: rank {rank} weights digest {weights_digest(net)}")
    log(f"train: done {step} steps in {fmt_duration(progress.elapsed())}; last checkpoint {last_good}")
    return last_good
