"""Building a training run from a config: device and ranks, data, network, loss, optimiser,
learning-rate schedule, checkpoints (and where a resumed run starts). ``trainer.fit`` runs it."""
import dataclasses
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from centerdet import tasks
from centerdet.data.coco import split_paths
from centerdet.data.mindrecord import check_source, convert, find_mindrecord
from centerdet.data.shard_hashes import ShardCheck
from centerdet.engine.checkpoint import CheckpointManager, load_backbone, load_weights
from centerdet.engine.resume import resume_from, resumed_position, set_global_step
from centerdet.engine.progress import History, fmt_duration
from centerdet.engine.runlock import RunLock
from centerdet.errors import CenterDetError
from centerdet.fileio import check_free_space, ensure_writable_dir


@dataclasses.dataclass
class Run:
    """Everything the training loop needs, built once."""
    cfg: Any
    log: Callable[[str], None]
    rank: int
    group: int
    rank_dir: str
    files: List[str]                # the MindRecord shards
    steps_per_epoch: int
    total: int
    lr: np.ndarray
    net: Any
    step_cell: Any
    parts: List[str]
    ckpts: CheckpointManager
    start: int
    history: Optional[History]
    ids_file: Any = None
    lock: Optional[RunLock] = None  # rank 0's hold on save_checkpoint_path
    plan: Any = None                # data/order.Plan of the steps from start to total
    images_at_start: int = 0

    def position(self, step: int) -> Dict[str, int]:
        """The checkpoint's POSITION entries after ``step``."""
        i = step - self.start - 1
        return {"images_seen": self.images_at_start + (i + 1) * self.cfg.batch_size * self.group,
                "data_epoch": int(self.plan.epochs[i]), "epoch_position": int(self.plan.positions[i]),
                "device_num": self.group}

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def epochs(self) -> int:
        return math.ceil(self.total / self.steps_per_epoch)

    @property
    def sink_steps(self) -> int:
        return sink_steps(self.cfg, self.steps_per_epoch)

    @property
    def save_every(self) -> int:
        return save_every(self.cfg, self.steps_per_epoch)


def sink_steps(cfg, steps_per_epoch: int) -> int:
    """Steps per data-sink call: data_sink_steps, or a whole epoch when it is -1 (the model zoo's)."""
    return cfg.data_sink_steps if cfg.data_sink_steps > 0 else steps_per_epoch


def save_every(cfg, steps_per_epoch: int) -> int:
    """Steps between checkpoints: whole epochs with save_checkpoint_epochs, else save_checkpoint_steps."""
    return cfg.save_checkpoint_epochs * steps_per_epoch if cfg.save_checkpoint_epochs else cfg.save_checkpoint_steps


def checkpoint_prefix(cfg) -> str:
    """The name checkpoints start with: checkpoint_prefix (the model zoo's CenterFace writes "0"),
    else the model name."""
    return cfg.checkpoint_prefix or cfg.model


def prepare_mindrecord(cfg, log=print, rank=0, poll_seconds=2.0):
    """Return the MindRecord files for training, converting the train split on first use. In a
    distributed run only rank 0 converts; the other ranks wait for its files (the conversion
    appears all at once, so a file seen is a finished file)."""
    if not cfg.mindrecord_dir:
        raise CenterDetError("config key 'mindrecord_dir' is empty: set it to where MindRecord files are "
                             "(or should be written)")
    task = tasks.of(cfg)
    keypoints = task.num_keypoints
    files = find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix)
    if files and cfg.data_dir:
        check_source(cfg.mindrecord_dir, cfg.mindrecord_prefix, split_paths(cfg, "train")[0], keypoints)
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
    convert(ann, img_dir, cfg.mindrecord_dir, cfg.mindrecord_prefix, cfg.mindrecord_shards, log=log,
            num_keypoints=keypoints, keep_crowd=task.train_on_crowd)
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


def stop_with_launcher() -> bool:
    """Ask Linux to send this worker SIGTERM when its launcher dies (prctl PR_SET_PDEATHSIG). msrun
    starts workers in sessions of their own and has no SIGTERM handler, so a scheduler that
    preempts the launcher alone would leave them training on; with this they stop as on their own
    SIGTERM. False where prctl is not available."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:  # 1: PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:  # the launcher died before the request: stop now
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def init_distributed(cfg):
    """(rank, group size); data parallel with gradient mean when cfg.distribute is true."""
    if not cfg.distribute:
        return 0, 1
    if cfg.device_target == "CPU" and not os.environ.get("MS_ROLE"):
        raise CenterDetError("config key 'distribute' is true on CPU, and CPU ranks are started by msrun (MS_ROLE "
                             "is not set); launch with scripts/run_distributed_train_cpu.sh or msrun")
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    if os.environ.get("MS_ROLE"):
        stop_with_launcher()
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


def _build_step(cfg, net, lr):
    from mindspore import Tensor, nn

    from centerdet.engine.step import NetWithLoss, TrainStep
    from centerdet.runtime import muted_mindspore_warnings

    # nn.Adam builds a sparse variant it deprecates itself; nothing a user of dense Adam can change
    with muted_mindspore_warnings("'FusedSparseAdam' is deprecated"):
        # a one-step schedule is a constant: MindSpore warns about one-element schedules
        rate = float(lr[0]) if len(lr) == 1 else Tensor(lr)
        optimizer = nn.Adam(param_groups(net, cfg.weight_decay), learning_rate=rate, eps=cfg.eps)
    scale = cfg.loss_scale_value if cfg.enable_lossscale else 1.0
    update = None
    if cfg.enable_lossscale and cfg.loss_scale_mode == "dynamic":
        update = nn.DynamicLossScaleUpdateCell(scale, cfg.scale_factor, cfg.scale_window)
    step_cell = TrainStep(NetWithLoss(net, tasks.of(cfg).build_loss(cfg)), optimizer, scale, update)
    step_cell.set_train()
    return step_cell


def _checkpoints(cfg, step_cell, is_main, log):
    ckpts = CheckpointManager(cfg.save_checkpoint_path, checkpoint_prefix(cfg), cfg.save_checkpoint_num,
                              config=dataclasses.asdict(cfg))
    if is_main and cfg.enable_save_ckpt:
        # Kept checkpoints + the one being written, each holding weights and Adam's two moments.
        size = sum(p.size * p.itemsize for p in step_cell.get_parameters())
        check_free_space(cfg.save_checkpoint_path, size * (cfg.save_checkpoint_num + 1), "save_checkpoint_path",
                         f"{cfg.save_checkpoint_num} checkpoint(s) of {size / 2**20:.0f} MB are kept "
                         f"(save_checkpoint_num); free space or choose another save_checkpoint_path")
        stale = ckpts.remove_stale_temps()
        if stale:
            log(f"removed {stale} partial checkpoint file(s) of an interrupted run")
    return ckpts


def start_over(cfg, is_main: bool, log=print, remove: bool = False) -> None:
    """A run that does not resume must not write over the checkpoints and history of an earlier one
    in its save_checkpoint_path: refused at once, or with ``overwrite`` removed by rank 0 (``remove``:
    once the data and the network are known to be fine)."""
    earlier = CheckpointManager(cfg.save_checkpoint_path, checkpoint_prefix(cfg)).list()
    history = os.path.join(cfg.save_checkpoint_path, "history.json")
    if cfg.resume or not (earlier or os.path.isfile(history)):
        return
    if not cfg.overwrite:
        newest = f"{len(earlier)} checkpoints, newest {os.path.basename(earlier[-1])}" if earlier else "history.json"
        raise CenterDetError(f"save_checkpoint_path {cfg.save_checkpoint_path} holds an earlier run ({newest}): "
                             f"continue it with --resume true, start over with --overwrite true, or choose "
                             f"another save_checkpoint_path")
    if is_main and remove:
        for path in earlier + [history]:
            if os.path.exists(path):
                os.unlink(path)
        log(f"overwrite: removed the {len(earlier)} checkpoints and the history of the earlier run in "
            f"{cfg.save_checkpoint_path}")


def check_segments(plan, steps: int, k: int) -> None:
    """Each data-sink call runs k steps of one epoch: the rest of an epoch a resume on another
    device count starts in must be a multiple of k too."""
    from centerdet.data.order import segments

    for _, count in segments(plan, steps):
        if count % k:
            raise CenterDetError(f"config key 'data_sink_steps' is {k}, which does not divide the {count} steps left "
                                 f"in the epoch this resume starts in (the device count changed); resume with "
                                 f"--enable_data_sink false for this epoch, or with a data_sink_steps dividing {count}")


def check_sink(cfg, steps_per_epoch: int, total: int) -> None:
    """A sink call runs sink_steps steps on the device, so epochs, checkpoints and the end of the
    run must fall on multiples of it; image ids never reach the host."""
    k = sink_steps(cfg, steps_per_epoch)
    for name, steps in (("steps per epoch", steps_per_epoch), ("steps between checkpoints",
                        save_every(cfg, steps_per_epoch)), ("total steps", total)):
        if steps % k:
            raise CenterDetError(f"config key 'data_sink_steps' is {k}, which does not divide the {steps} {name}; "
                                 f"set --data_sink_steps to a divisor of {steps} (-1: one epoch per call)")
    if cfg.log_image_ids:
        raise CenterDetError("config keys 'log_image_ids' and 'enable_data_sink' are both true: sunk batches "
                             "never reach the host; set one of them false")


def build_run(cfg, log=print) -> Run:
    """Set up the device, the ranks, the data, the network and its training step from ``cfg``;
    with ``resume``, restore the newest checkpoint of save_checkpoint_path."""
    import mindspore as ms

    from centerdet.runtime import init_device

    if cfg.enable_data_sink and cfg.device_target == "CPU":
        raise CenterDetError("config key 'enable_data_sink' is true but MindSpore's data sink runs on Ascend and "
                             "GPU only (this run: CPU); set --enable_data_sink false")
    init_device(cfg.device_target, cfg.device_id, cfg.mode, cfg.cpu_kernels, cfg.compile_cache)
    ms.set_seed(cfg.seed)
    rank, group = init_distributed(cfg)
    ensure_writable_dir(cfg.save_checkpoint_path, "save_checkpoint_path")
    lock = RunLock(cfg.save_checkpoint_path, log).acquire() if rank == 0 else None
    try:
        return _assemble(cfg, log, rank, group, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _assemble(cfg, log, rank, group, lock) -> Run:
    from centerdet.data.order import plan_steps
    from centerdet.data.pipeline import count_samples
    from centerdet.engine.lr import build_lr
    from centerdet.models import build_model

    rank_dir = os.path.join(cfg.save_checkpoint_path, f"LOG{rank}") if group > 1 else cfg.save_checkpoint_path
    if group > 1:
        log = rank_logger(log, os.path.join(rank_dir, "training_log.txt"))
    ids_file = None
    if cfg.log_image_ids:
        os.makedirs(rank_dir, exist_ok=True)
        ids_file = open(os.path.join(rank_dir, "image_ids.txt"), "a", encoding="utf-8", buffering=1)

    files = prepare_mindrecord(cfg, log, rank)
    shards = ShardCheck(files, cfg.mindrecord_prefix, log).start()  # hashes while the network is built
    samples = count_samples(files)
    steps_per_epoch = samples // (cfg.batch_size * group)
    if steps_per_epoch == 0:
        raise CenterDetError(f"batch_size {cfg.batch_size} is larger than the {cfg.mindrecord_prefix} dataset "
                             f"(per device); lower batch_size")
    total = cfg.train_steps if cfg.train_steps > 0 else cfg.epoch_size * steps_per_epoch
    if cfg.enable_data_sink:
        check_sink(cfg, steps_per_epoch, total)
    start_over(cfg, rank == 0, log)
    lr = build_lr(cfg, total, steps_per_epoch)

    net = build_model(cfg)
    if cfg.pretrained_backbone and not cfg.resume:
        load_backbone(net, cfg.pretrained_backbone, log=log)
    if cfg.load_checkpoint_path and not cfg.resume:
        load_weights(net, cfg.load_checkpoint_path, log=log)
    step_cell = _build_step(cfg, net, lr)
    start_over(cfg, rank == 0, log, remove=True)
    ckpts = _checkpoints(cfg, step_cell, rank == 0, log)
    state = resume_from(ckpts, step_cell, total, log) if cfg.resume else None
    start, images, where = resumed_position(state, cfg, group, steps_per_epoch, log)
    if state is not None and start != state["step"]:
        set_global_step(step_cell, start)
    # a finished run still gets a one-step plan: fit returns before it draws any
    plan = plan_steps(samples, cfg.batch_size, group, max(total - start, 1), where, cfg.seed, cfg.do_shuffle)
    if cfg.enable_data_sink:
        check_segments(plan, total - start, sink_steps(cfg, steps_per_epoch))
    shards.wait()
    parts = [spec.part for spec in tasks.of(cfg).heads(cfg)]
    history = History(os.path.join(cfg.save_checkpoint_path, "history.json"), parts) if rank == 0 else None
    return Run(cfg, log, rank, group, rank_dir, files, steps_per_epoch, total, lr, net, step_cell, parts, ckpts,
               start, history, ids_file, lock, plan, images)
