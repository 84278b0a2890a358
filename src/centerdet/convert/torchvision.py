"""torchvision ImageNet backbones (``resnet18/34/50/101``, ``mobilenet_v2`` state dicts) → MindSpore
backbone checkpoints.

Our backbones carry torchvision's module names, so the mapping is a rename of the BatchNorm tensors
(weight/bias/running_mean/running_var → gamma/beta/moving_mean/moving_variance) plus the
``backbone.`` prefix the detectors use. Classification layers and BatchNorm step counters are
skipped with a reason; a tensor the backbone lacks, a backbone tensor left unset, or a shape
mismatch is an error naming the keys (the file is then another architecture than ``arch``).
"""
import numpy as np

from centerdet.convert.common import COUNTER, bn_renamer, check_against, report, write_converted
from centerdet.convert.pth import read_pth, state_dict_of
from centerdet.errors import CenterDetError

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2")
# Parts of the ImageNet models the detectors do not have, with the reason the report gives.
_CLASSIFIER = "ImageNet classification layer (detectors do not use it)"
_UNUSED = {"resnet": {"fc.": _CLASSIFIER},
           "mobilenet_v2": {"classifier.": _CLASSIFIER,
                            "features.18.": "MobileNetV2's last 1x1 conv (320->1280), which feeds only its classifier "
                                            "(the detectors tap features 1-17)"}}


def backbone_shapes(arch):
    """{MindSpore parameter name: shape} of our backbone ``arch`` (names without the detector prefix)."""
    from centerdet.models.backbones import mobilenet_v2, resnet

    net = mobilenet_v2() if arch == "mobilenet_v2" else resnet(arch)
    return {p.name: tuple(p.shape) for p in net.get_parameters()}


def map_torchvision(state, arch):
    """Rename a torchvision state dict to our backbone's names.

    Returns (converted {ms name: (torch name, array)}, skipped {torch name: reason}).
    """
    unused = _UNUSED["mobilenet_v2" if arch == "mobilenet_v2" else "resnet"]
    rename = bn_renamer(state)
    converted, skipped = {}, {}
    for key, value in state.items():
        reason = next((why for prefix, why in unused.items() if key.startswith(prefix)), None)
        if key.endswith(".num_batches_tracked"):
            skipped[key] = COUNTER
        elif reason:
            skipped[key] = reason
        else:
            converted[rename(key)] = (key, np.ascontiguousarray(value, np.float32))
    return converted, skipped


def convert_torchvision(src, arch, out, prefix="backbone.", log=print):
    """Write ``out``: the MindSpore checkpoint of torchvision ``arch`` weights from ``src`` (.pth)."""
    if arch not in ARCHS:
        raise CenterDetError(f"unknown arch '{arch}': choose one of {', '.join(ARCHS)}")
    state = state_dict_of(read_pth(src), src)
    converted, skipped = map_torchvision(state, arch)
    check_against(converted, backbone_shapes(arch), src, f"our {arch} backbone")
    write_converted(converted, out, prefix)
    report(log, src, out, len(converted), skipped, [])
    return converted, skipped
