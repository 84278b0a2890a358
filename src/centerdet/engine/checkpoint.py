"""Checkpoints: atomic saves (temp file + rename), keep-last-K rotation, resume and partial loads;
the config a run was trained with travels inside its checkpoints."""
import json
import os
import re
from typing import Any, Dict, Optional

import mindspore as ms

from centerdet.engine.ckptfile import parse_file, seal, to_values
from centerdet.errors import CenterDetError
from centerdet.fileio import atomic_path

OPTIMIZER_PREFIXES = ("moment1.", "moment2.", "moments.")
# where the data stream stands (data/order.py): kept beside step and epoch so that a run resumed
# on another device count goes on from the same image
POSITION = ("images_seen", "data_epoch", "epoch_position", "device_num")
TRAIN_STATE = {"global_step", "learning_rate", "beta1_power", "beta2_power", "scale_sense",
               "current_iterator_step", "last_overflow_iterator_step", "step", "epoch", *POSITION}
CONFIG_ENTRY = "centerdet_config"  # the training config as JSON text


def is_train_state(name):
    return name in TRAIN_STATE or name == CONFIG_ENTRY or name.startswith(OPTIMIZER_PREFIXES)


def write_checkpoint(contents, path, append_dict=None):
    """``ms.save_checkpoint`` of a cell or a list of {"name", "data"} entries, sealed with a digest
    and a CRC (engine/ckptfile.py), all or nothing: a killed write leaves no file at ``path``."""
    with atomic_path(path) as tmp:
        # save_checkpoint appends ".ckpt" to names without it, so give the temp file that suffix.
        tmp_ckpt = tmp + ".ckpt"
        try:
            ms.save_checkpoint(contents, tmp_ckpt, append_dict=append_dict)
            seal(tmp_ckpt)
            os.replace(tmp_ckpt, tmp)
        finally:
            if os.path.exists(tmp_ckpt):
                os.unlink(tmp_ckpt)
    return path


class CheckpointManager:
    """Writes ``<prefix>-<epoch>_<step>.ckpt`` into ``directory`` and keeps the newest ``keep`` files."""

    PATTERN = re.compile(r"-(\d+)_(\d+)\.ckpt$")

    def __init__(self, directory, prefix, keep=1, config: Optional[Dict[str, Any]] = None):
        self.directory, self.prefix, self.keep = directory, prefix, max(1, keep)
        self.config_text = json.dumps(config, sort_keys=True) if config is not None else None

    def list(self):
        """Finished checkpoints of this run, oldest first (by step)."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            m = self.PATTERN.search(name)
            if name.startswith(self.prefix + "-") and m:
                found.append((int(m.group(2)), os.path.join(self.directory, name)))
        return [p for _, p in sorted(found)]

    def remove_stale_temps(self):
        """Delete the temp files of writes a killed run left behind; returns how many."""
        if not os.path.isdir(self.directory):
            return 0
        stale = [n for n in os.listdir(self.directory) if n.startswith(f".{self.prefix}-") and ".tmp" in n]
        for name in stale:
            os.unlink(os.path.join(self.directory, name))
        return len(stale)

    def latest(self):
        ckpts = self.list()
        return ckpts[-1] if ckpts else None

    def save(self, cell, step, epoch, position: Optional[Dict[str, int]] = None):
        """``position``: the POSITION entries (images seen, data epoch and position, devices)."""
        path = os.path.join(self.directory, f"{self.prefix}-{epoch}_{step}.ckpt")
        extra = {"step": int(step), "epoch": int(epoch), **{k: int(v) for k, v in (position or {}).items()}}
        if self.config_text is not None:
            extra[CONFIG_ENTRY] = self.config_text
        write_checkpoint(cell, path, extra)
        for old in self.list()[:-self.keep]:
            os.unlink(old)
        return path


def read_checkpoint(path, choice_func=None, log=print):
    """name → Parameter (``choice_func(name)``: only those), with a one-line error for missing,
    empty, truncated, damaged or foreign files. Ours are verified by their digest and CRC; a file
    without either (other tools', centerdet's before it sealed them) loads with a one-line note."""
    entries, verified = parse_file(path)
    if verified is None and log is not None:
        log(f"note: {path} carries no CRC or digest (written by another tool or an older centerdet): "
            f"loaded without verifying it")
    return to_values(entries, choice_func)


def stored_config(path: str, params: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """The config a checkpoint of train.py was trained with, or None (converted weights, other
    people's checkpoints, ours before configs were recorded); ``params``: the file already read."""
    if params is None:
        params = read_checkpoint(path, choice_func=lambda name: name == CONFIG_ENTRY, log=None)
    text = params.get(CONFIG_ENTRY)
    if not isinstance(text, str):
        return None
    try:
        config = json.loads(text)
    except ValueError:
        raise CenterDetError(f"checkpoint {path}: its recorded config is not valid JSON") from None
    return config if isinstance(config, dict) else None


def _load_into(net, params, strict):
    """ms.load_param_into_net without its warning that lists every unloaded name: the callers
    report what was loaded, skipped and left at its init in a few lines of their own."""
    from centerdet.runtime import muted_mindspore_warnings

    with muted_mindspore_warnings("are not loaded"):
        return ms.load_param_into_net(net, params, strict_load=strict)


def load_weights(net, path, log=print, require_all=False, params=None):
    """Load the tensors of ``path`` whose names and shapes match ``net``; report what did not.

    Returns (loaded, skipped, missing) where skipped maps checkpoint key → reason. Optimizer and
    training-state entries are ignored silently (they belong to --resume). With ``require_all``
    nothing is loaded when a network tensor is missing (the caller reports it). ``params``: the
    file already read (read_checkpoint).
    """
    params = read_checkpoint(path, log=log) if params is None else params
    own = {p.name: p for p in net.get_parameters()}
    matched, skipped = {}, {}
    for name, value in params.items():
        if is_train_state(name):
            continue
        if name not in own:
            skipped[name] = "not in the network"
        elif tuple(value.shape) != tuple(own[name].shape):
            skipped[name] = f"shape {tuple(value.shape)} != network {tuple(own[name].shape)}"
        else:
            matched[name] = value
    missing = sorted(set(own) - set(matched))
    if not (require_all and missing):
        _load_into(net, matched, strict=False)
    log(f"loaded {len(matched)}/{len(own)} network tensors from {path}; "
        f"{len(skipped)} checkpoint tensors skipped, {len(missing)} network tensors keep their init")
    for name, reason in list(skipped.items())[:20]:
        log(f"  skipped {name}: {reason}")
    if len(skipped) > 20:
        log(f"  ... and {len(skipped) - 20} more skipped")
    return matched, skipped, missing


def restore_training(train_cell, path, params=None) -> Dict[str, int]:
    """Load every tensor of a training checkpoint (weights, optimizer, loss scale); returns its
    step and epoch, and the POSITION entries it has. ``params``: the file already read."""
    params = read_checkpoint(path) if params is None else params
    for key in ("step", "epoch"):
        if key not in params:
            raise CenterDetError(f"{path} has no '{key}' entry: not a checkpoint written by train.py --resume "
                                 f"can continue (use --load_checkpoint_path to start from its weights)")
    state = {key: int(params.pop(key).asnumpy()) for key in ("step", "epoch", *POSITION) if key in params}
    params.pop(CONFIG_ENTRY, None)
    # The lr array is rebuilt from the config (which may extend the run); global_step indexes it.
    params.pop("learning_rate", None)
    _load_into(train_cell, params, strict=True)
    own = {p.name for p in train_cell.get_parameters()} - {"learning_rate"}
    missing = sorted(own - set(params))
    if missing:
        raise CenterDetError(f"{path} lacks {len(missing)} training tensors (first: {missing[0]}); "
                             f"it does not match this config")
    return state


def load_backbone(net, path, prefix="backbone.", log=print):
    """Load ImageNet backbone weights (keys with or without ``prefix``) into ``net.backbone``.

    A backbone checkpoint that leaves backbone tensors at their init, or brings tensors the backbone
    does not have, is an error: either means a different architecture than the config names.
    """
    params = read_checkpoint(path, log=log)
    own = {p.name: p for p in net.get_parameters() if p.name.startswith(prefix)}
    matched, problems = {}, []
    for name, value in params.items():
        if is_train_state(name):
            continue
        key = name if name.startswith(prefix) else prefix + name
        if key not in own:
            problems.append(f"{name} is not a backbone tensor")
        elif tuple(value.shape) != tuple(own[key].shape):
            problems.append(f"{name} has shape {tuple(value.shape)}, the backbone {tuple(own[key].shape)}")
        else:
            matched[key] = value
    missing = sorted(set(own) - set(matched))
    if problems or missing:
        first = problems[0] if problems else f"{missing[0]} is missing"
        raise CenterDetError(f"{path} does not fit the backbone ({len(problems)} mismatched, {len(missing)} "
                             f"missing tensors; first: {first}); expected a MindSpore checkpoint of this backbone "
                             f"with torchvision's tensor names")
    _load_into(net, matched, strict=False)
    log(f"pretrained backbone: loaded all {len(matched)} tensors from {path}")
    return matched
