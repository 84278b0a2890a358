"""torchvision ImageNet backbones (``resnet18/34/50/101``, ``mobilenet_v2`` state dicts) → MindSpore
backbone checkpoints.

Our backbones carry torchvision's module names, so the mapping is a rename of the BatchNorm tensors
(weight/bias/running_mean/running_var → gamma/beta/moving_mean/moving_variance) plus the
``backbone.`` prefix the detectors use. Classification layers and BatchNorm step counters are
skipped with a reason; a tensor the backbone lacks, a backbone tensor left unset, or a shape
mismatch is an error naming the keys (the file is then another architecture than ``arch``).
"""
import numpy as np

from centerdet.convert.pth import read_pth, state_dict_of
from centerdet.errors import CenterDetError

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2")
BN_RENAME = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
# Classification parts of the ImageNet models, unused by the detectors.
_HEADS = {"resnet": ("fc.",), "mobilenet_v2": ("classifier.", "features.18.")}


def backbone_shapes(arch):
    """{MindSpore parameter name: shape} of our backbone ``arch`` (names without the detector prefix)."""
    from centerdet.models.backbones import mobilenet_v2, resnet

    net = mobilenet_v2() if arch == "mobilenet_v2" else resnet(arch)
    return {p.name: tuple(p.shape) for p in net.get_parameters()}


def map_torchvision(state, arch):
    """Rename a torchvision state dict to our backbone's names.

    Returns (converted {ms name: (torch name, array)}, skipped {torch name: reason}).
    """
    heads = _HEADS["mobilenet_v2" if arch == "mobilenet_v2" else "resnet"]
    bn_modules = {k[:-len(".running_mean")] for k in state if k.endswith(".running_mean")}
    converted, skipped = {}, {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            skipped[key] = "BatchNorm step counter (MindSpore's BatchNorm has none)"
        elif key.startswith(heads):
            skipped[key] = "ImageNet classification layer (detectors do not use it)"
        else:
            name = f"{module}.{BN_RENAME[leaf]}" if module in bn_modules and leaf in BN_RENAME else key
            converted[name] = (key, np.ascontiguousarray(value, np.float32))
    return converted, skipped


def check_against(converted, shapes, path, arch):
    """Every backbone tensor filled with the right shape, nothing foreign: else one error naming keys."""
    for name, (key, value) in converted.items():
        if name not in shapes:
            raise CenterDetError(f"{path}: tensor {key} (as {name}) is not in our {arch} backbone; "
                                 f"is the file a different architecture?")
        if tuple(value.shape) != shapes[name]:
            raise CenterDetError(f"{path}: {key} has shape {tuple(value.shape)} but {name} of our {arch} backbone "
                                 f"has {shapes[name]}; is the file a different architecture?")
    missing = sorted(set(shapes) - set(converted))
    if missing:
        raise CenterDetError(f"{path}: {len(missing)} tensors of our {arch} backbone are not in the file "
                             f"(first: {missing[0]}); is the file a different architecture?")


def convert_torchvision(src, arch, out, prefix="backbone.", log=print):
    """Write ``out``: the MindSpore checkpoint of torchvision ``arch`` weights from ``src`` (.pth)."""
    from centerdet.engine.checkpoint import write_checkpoint
    from mindspore import Tensor

    if arch not in ARCHS:
        raise CenterDetError(f"unknown arch '{arch}': choose one of {', '.join(ARCHS)}")
    state = state_dict_of(read_pth(src), src)
    converted, skipped = map_torchvision(state, arch)
    check_against(converted, backbone_shapes(arch), src, arch)
    write_checkpoint([{"name": prefix + name, "data": Tensor(value)} for name, (_, value) in converted.items()], out)
    report(log, src, out, len(converted), skipped, [])
    return converted, skipped


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
