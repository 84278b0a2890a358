"""The training loop: step, progress lines, non-finite steps, checkpoints, history. ``build_run``
(engine/build.py) sets up what it runs."""
import math
import os
import time

import numpy as np

from centerdet.engine.build import Run, build_run
from centerdet.engine.progress import Progress, fmt_duration
from centerdet.engine.stopping import StopRequests
from centerdet.errors import CenterDetError, TrainingStopped
from centerdet.fileio import ensure_writable_dir


def weights_digest(net):
    """SHA-1 of the trainable weights: equal on every rank of a data-parallel run (the BatchNorm
    running statistics are not trainable and stay per rank, as in the model zoo)."""
    import hashlib

    h = hashlib.sha1()
    for p in sorted(net.trainable_params(), key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(p.asnumpy().tobytes())
    return h.hexdigest()


def _epochs(run):
    """(steps, dataset) for each epoch of the steps still owed (a dataset holds one epoch at most)."""
    from centerdet.data.order import segments
    from centerdet.data.pipeline import create_train_dataset

    for first, count in segments(run.plan, run.total - run.start):
        yield count, create_train_dataset(run.files, run.cfg, run.rank, run.group, with_ids=run.cfg.log_image_ids,
                                          plan=run.plan, steps=(first, first + count))


def _step_outputs(run):
    """(steps run, the step cell's outputs) per call: one batch at a time (a resumed run draws the
    steps it still owes, from where its checkpoint left the data), or, with enable_data_sink,
    data_sink_steps batches per call through MindSpore's data sink (Ascend, GPU), which returns the
    last step's outputs."""
    from centerdet.runtime import compile_cell

    if run.cfg.enable_data_sink:
        import mindspore as ms

        for count, dataset in _epochs(run):
            sink = ms.data_sink(run.step_cell, dataset, sink_size=run.sink_steps)
            for _ in range(count // run.sink_steps):
                yield run.sink_steps, sink()
        return
    index = 0
    for _, dataset in _epochs(run):
        iterator = dataset.create_tuple_iterator(num_epochs=1)
        try:
            for batch in iterator:
                if run.ids_file is not None:
                    run.ids_file.write(f"{run.start + index + 1} " + " ".join(str(int(i)) for i in batch[-1].asnumpy())
                                       + "\n")
                    batch = batch[:-1]
                if index == 0:
                    compile_cell(run.step_cell, *batch)
                index += 1
                yield 1, run.step_cell(*batch)
        finally:
            iterator.stop()


def _log_window(run, step, epoch, window, window_steps, window_start, scale_v, progress):
    mean = np.mean(window, 0)
    speed = window_steps * run.cfg.batch_size * run.group / max(time.time() - window_start, 1e-9)
    parts_text = " ".join(f"{n} {v:.4f}" for n, v in zip(run.parts, mean[1:]))
    run.log(f"epoch {epoch + 1}/{run.epochs} step {step}/{run.total} loss: {mean[0]:.4f} ({parts_text}) "
            f"lr {run.lr[step - 1]:.2e} scale {float(scale_v.asnumpy()):g} | {speed:.1f} img/s | "
            f"elapsed {fmt_duration(progress.elapsed())} ETA {fmt_duration(progress.eta(step))}")
    if run.history is not None:
        run.history.add(step, mean)


def _log_epoch(run, epoch, losses, seconds, steps):
    """The line a model-zoo user greps for (`grep "epoch"`, `grep "loss:"`): one per finished epoch."""
    mean = float(np.mean(losses)) if losses else float("nan")
    run.log(f"epoch: {epoch}, loss: {mean:.6f}, {steps * run.cfg.batch_size * run.group / max(seconds, 1e-9):.2f} "
            f"img/s, epoch time: {1000 * seconds:.3f} ms, per step time: {1000 * seconds / max(steps, 1):.3f} ms")


def fit(run: Run):
    """Train from ``run.start`` to ``run.total`` steps; returns the last checkpoint written. On
    SIGTERM or SIGINT: stops after the current step, writes a checkpoint, raises TrainingStopped."""
    try:
        with StopRequests(run.group) as stops:
            return _loop(run, stops)
    finally:
        if run.lock is not None:
            run.lock.release()


def _loop(run: Run, stops: StopRequests):
    from centerdet import cpu_ops
    from centerdet.models import describe_model

    cfg, log = run.cfg, run.log
    curve_png = os.path.join(cfg.save_checkpoint_path, "loss_curve.png")
    if run.start >= run.total:
        log(f"training already finished ({run.start}/{run.total} steps)")
        return run.ckpts.latest()
    log(f"train: {cfg.model} {describe_model(cfg)} input {cfg.input_res_train}, "
        f"{run.steps_per_epoch} steps/epoch × batch {cfg.batch_size} × {run.group} device(s), {run.total} steps; "
        f"rank {run.rank} (pid {os.getpid()})")
    if cfg.device_target == "CPU":
        log(f"kernels: {cpu_ops.status(run.net)}")
    profiler = None
    if cfg.need_profiler:
        from mindspore import Profiler
        prof_dir = cfg.profiler_path or os.path.join(cfg.save_checkpoint_path, "profiler")
        profiler = Profiler(output_path=ensure_writable_dir(prof_dir, "profiler_path"))
    progress = Progress(run.total, run.start)
    step, bad_streak, skipped_total = run.start, 0, 0
    last_good, saved_step, stopped = run.ckpts.latest(), None, None
    window, window_steps, window_start = [], 0, time.time()
    epoch_losses, epoch_start, epoch_steps = [], time.time(), 0
    stream = _step_outputs(run)
    for n, (loss_v, parts, overflow, scale_v) in stream:
        prev, step = step, step + n
        epoch = prev // run.steps_per_epoch
        crossed = lambda every: step // every > prev // every or step == run.total  # noqa: E731
        loss_f = float(loss_v.asnumpy())
        if bool(overflow.asnumpy()) or not math.isfinite(loss_f):
            bad_streak += 1
            skipped_total += 1
            log(f"step {step}/{run.total} skipped: loss or gradients not finite ({bad_streak} in a row)")
            if bad_streak > cfg.max_nonfinite_steps:
                raise CenterDetError(f"loss or gradients not finite for {bad_streak} consecutive steps "
                                     f"(last at step {step}); last good checkpoint: {last_good or 'none'}")
        else:
            bad_streak = 0
            window.append([loss_f, *parts.asnumpy().tolist()])
            epoch_losses.append(loss_f)
        window_steps += n
        epoch_steps += n
        if window and crossed(cfg.log_interval):
            _log_window(run, step, epoch, window, window_steps, window_start, scale_v, progress)
            window, window_steps, window_start = [], 0, time.time()
        if crossed(run.steps_per_epoch):
            _log_epoch(run, epoch + 1, epoch_losses, time.time() - epoch_start, epoch_steps)
            epoch_losses, epoch_start, epoch_steps = [], time.time(), 0
        if run.is_main and cfg.enable_save_ckpt and crossed(run.save_every):
            last_good, saved_step = run.ckpts.save(run.step_cell, step, epoch + 1, run.position(step)), step
            run.history.save(curve_png)
        if step >= run.total:
            break
        stopped = stops.agreed()
        if stopped:
            break
    stream.close()
    if stopped:
        if run.is_main and cfg.enable_save_ckpt and saved_step != step:
            last_good = run.ckpts.save(run.step_cell, step, (step - 1) // run.steps_per_epoch + 1, run.position(step))
            run.history.save(curve_png)
        stops.barrier()
        if run.ids_file is not None:
            run.ids_file.close()
        where = (f"checkpoint {last_good}" if run.is_main else "rank 0 wrote the checkpoint") if cfg.enable_save_ckpt \
            else "no checkpoint (enable_save_ckpt false)"
        message = f"stopped by {stopped} at step {step}/{run.total}; {where}; resume with --resume true"
        log(message)
        raise TrainingStopped(message, stops.exit_code)
    if profiler is not None:
        profiler.analyse()
        log(f"profiler: results in {prof_dir}")
    if skipped_total:
        log(f"{skipped_total} steps skipped because of non-finite loss or gradients")
    if run.history is not None:
        run.history.save(curve_png)
    if run.ids_file is not None:
        run.ids_file.close()
    if run.group > 1:
        log(f"train: rank {run.rank} weights digest {weights_digest(run.net)}")
    saved = (f"last checkpoint {last_good}" if run.is_main else "checkpoints are rank 0's") if cfg.enable_save_ckpt \
        else "no checkpoints (enable_save_ckpt false)"
    log(f"train: done {step} steps in {fmt_duration(progress.elapsed())}; {saved}")
    return last_good


def train(cfg, log=print):
    """Build the run of ``cfg`` and train it; returns the last checkpoint written."""
    return fit(build_run(cfg, log))
