"""Pieces every converter shares: BatchNorm renaming, the network check, the write and the key report."""
from centerdet.errors import CenterDetError

BN_RENAME = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
COUNTER = "BatchNorm step counter (MindSpore's BatchNorm has none)"


def bn_renamer(state):
    """key → MindSpore name: BatchNorm tensors (modules that have a running_mean) get MindSpore's leaf
    names, everything else keeps its name."""
    bn_modules = {k[:-len(".running_mean")] for k in state if k.endswith(".running_mean")}

    def rename(key):
        module, _, leaf = key.rpartition(".")
        return f"{module}.{BN_RENAME[leaf]}" if module in bn_modules and leaf in BN_RENAME else key

    return rename


def check_against(converted, shapes, path, what):
    """Every tensor of ``what`` (e.g. "our resnet50 backbone") filled with the right shape, nothing
    foreign: else one error naming the keys."""
    for name, (key, value) in converted.items():
        if name not in shapes:
            raise CenterDetError(f"{path}: tensor {key} (as {name}) is not in {what}; "
                                 f"is the file a different architecture?")
        if tuple(value.shape) != shapes[name]:
            raise CenterDetError(f"{path}: {key} has shape {tuple(value.shape)} but {name} of {what} "
                                 f"has {shapes[name]}; is the file a different architecture?")
    missing = sorted(set(shapes) - set(converted))
    if missing:
        raise CenterDetError(f"{path}: {len(missing)} tensors of {what} are not in the file "
                             f"(first: {missing[0]}); is the file a different architecture?")


def write_converted(converted, out, prefix=""):
    from mindspore import Tensor

    from centerdet.engine.checkpoint import write_checkpoint

    write_checkpoint([{"name": prefix + name, "data": Tensor(value)} for name, (_, value) in converted.items()], out)


def finish(converted, net, src, out, what, skipped, settings, log):
    """Check ``converted`` against ``net`` (described as ``what``), write it to ``out``, print the
    key report and the flags that rebuild the network (``settings``)."""
    check_against(converted, {p.name: tuple(p.shape) for p in net.get_parameters()}, src, what)
    write_converted(converted, out)
    report(log, src, out, len(converted), skipped, [])
    log("convert: evaluate it with " + " ".join(f"--{k} {v}" for k, v in settings.items()))


def report(log, src, out, n_converted, skipped, missing):
    """The key report every converter prints: converted, skipped with reasons, missing."""
    log(f"convert: {src} -> {out}: {n_converted} tensors converted, {len(skipped)} skipped, {len(missing)} missing")
    reasons = {}
    for key, reason in skipped.items():
        reasons.setdefault(reason, []).append(key)
    for reason, keys in reasons.items():
        shown = ", ".join(keys[:3]) + (f", ... ({len(keys)} in all)" if len(keys) > 3 else "")
        log(f"  skipped ({reason}): {shown}")
    for name in missing:
        log(f"  missing: {name}")


_TORCH_LEAF = {v: k for k, v in BN_RENAME.items()}


def to_torch_names(params, prefixes):
    """{MindSpore name: array} → {PyTorch name: array}: BatchNorm leaves renamed back and the given
    module prefixes (e.g. "backbone.") removed; training state (optimizer moments, step) left out."""
    from centerdet.engine.checkpoint import is_train_state

    out = {}
    for name, value in params.items():
        if is_train_state(name):
            continue
        for prefix in prefixes:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        module, _, leaf = name.rpartition(".")
        out[f"{module}.{_TORCH_LEAF.get(leaf, leaf)}" if module else name] = value
    return out
