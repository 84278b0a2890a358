"""--resume: the newest checkpoint that verifies, and where the run goes on from it (also on
another device count than it was written on)."""
from typing import Dict, Optional

import numpy as np

from centerdet.engine.checkpoint import CheckpointManager, read_checkpoint, restore_training
from centerdet.errors import CenterDetError


def resume_from(ckpts: CheckpointManager, step_cell, total: int, log=print) -> Optional[Dict[str, int]]:
    """Restore the newest checkpoint that reads and verifies (naming each newer one skipped and
    why); returns its state (restore_training), None when there is none."""
    found = ckpts.list()
    for path in reversed(found):
        try:
            params = read_checkpoint(path, log=log)
        except CenterDetError as exc:
            log(f"resume: skipped {path}: {exc}")
            continue
        state = restore_training(step_cell, path, params)
        log(f"resume: restored {path} at step {state['step']}/{total}")
        return state
    if found:
        raise CenterDetError(f"resume: none of the {len(found)} checkpoints in {ckpts.directory} reads (see the lines "
                             f"above); restore one, or start over with --resume false --overwrite true")
    log(f"resume: no checkpoint in {ckpts.directory}; starting from step 0")
    return None


def resumed_position(state: Optional[Dict[str, int]], cfg, group: int, steps_per_epoch: int, log=print):
    """(start step, images seen, (data epoch, its samples taken)) to go on from ``state`` on
    ``group`` devices. On another device count than it was written on, the images seen place the
    run: its step there is images seen / (batch_size × group), the lr is the new schedule's at that
    step, and the rest of the interrupted epoch is re-sharded over the new devices."""
    if state is None:
        return 0, 0, (0, 0)
    per_step = cfg.batch_size * group
    written_on = state.get("device_num", group)
    if "images_seen" not in state:  # ours before the position was recorded: the same devices
        step = state["step"]
        return step, step * per_step, (step // steps_per_epoch, step % steps_per_epoch * per_step)
    images, where = state["images_seen"], (state["data_epoch"], state["epoch_position"])
    if written_on == group:
        return state["step"], images, where
    step = images // per_step
    log(f"resume: written at step {state['step']} on {written_on} device(s), now {group}: {images} images seen = "
        f"step {step} at batch {cfg.batch_size} x {group}; the lr schedule and the step count are this run's, "
        f"the rest of epoch {where[0] + 1} ({where[1]} of its images done) is shared among the {group} device(s)")
    return step, images, where


def set_global_step(step_cell, step: int) -> None:
    """Point the optimizer's lr index at ``step`` (a resume on another device count moves it)."""
    import mindspore as ms

    for p in step_cell.get_parameters():
        if p.name == "global_step":
            p.set_data(ms.Tensor(np.array([step], np.int32)))
