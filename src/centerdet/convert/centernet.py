"""CenterNet's own PyTorch ``ctdet`` checkpoints (ResNet with DCN or plain upsampling: ``resdcn_18``,
``resdcn_101``, ...) → full MindSpore CenterNet checkpoints that ``eval.py`` runs.

The original saves {'epoch', 'state_dict'[, 'optimizer']}, with a ``module.`` prefix when it was
trained with DataParallel. Our CenterNet keeps its module names (ResNet as ``backbone.*``, the
upsampling as ``neck.deconv_layers.*``, heads ``hm/wh/reg``) and its DCN keeps DCNv2's parameter
layout, so converting is a rename; the depth, class count, head width and DCN use are read off the
tensors and printed as the flags to evaluate with.
"""
import numpy as np

from centerdet.convert.common import COUNTER, bn_renamer, finish
from centerdet.convert.pth import read_pth, state_dict_of
from centerdet.errors import CenterDetError

_DEPTHS = {("basic", 2): "resnet18", ("basic", 6): "resnet34", ("bottleneck", 6): "resnet50",
           ("bottleneck", 23): "resnet101"}
_BACKBONE = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")


def strip_module(state):
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def infer_settings(state, path):
    """Config overrides that build the network the checkpoint holds."""
    if any(k.startswith(("base.", "dla_up.", "ida_up.")) for k in state):
        raise CenterDetError(f"{path}: a DLA-34 CenterNet (base.*, dla_up.*); only ResNet CenterNet checkpoints "
                             f"(resdcn_18/101 and plain-upsampling ResNets) convert")
    for key in ("hm.0.weight", "hm.2.weight", "layer3.0.conv1.weight"):
        if key not in state:
            raise CenterDetError(f"{path}: no tensor {key}; not a CenterNet ctdet ResNet checkpoint")
    kind = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    blocks = len({k.split(".")[1] for k in state if k.startswith("layer3.")})
    backbone = _DEPTHS.get((kind, blocks))
    if backbone is None:
        raise CenterDetError(f"{path}: a ResNet with {blocks} {kind} blocks in layer3 matches no supported depth")
    return {"backbone": backbone, "num_classes": str(state["hm.2.weight"].shape[0]),
            "head_conv": str(state["hm.0.weight"].shape[0]), "neck": "deconv",
            "use_dcn": str("deconv_layers.0.conv_offset_mask.weight" in state).lower()}


def map_ctdet(state):
    """(converted {ms name: (torch name, array)}, skipped {torch name: reason})."""
    rename = bn_renamer(state)
    converted, skipped = {}, {}
    for key, value in state.items():
        if key.endswith(".num_batches_tracked"):
            skipped[key] = COUNTER
        elif key.startswith("fc."):
            skipped[key] = "ImageNet classification layer (detectors do not use it)"
        else:
            prefix = "backbone." if key.startswith(_BACKBONE) else "neck." if key.startswith("deconv_layers.") else ""
            converted[prefix + rename(key)] = (key, np.ascontiguousarray(value, np.float32))
    return converted, skipped


def convert_ctdet(src, out, log=print):
    """Write ``out``; returns the config overrides that rebuild the network for it."""
    from centerdet.config import load_config
    from centerdet.models import build_model

    state = strip_module(state_dict_of(read_pth(src), src))
    settings = infer_settings(state, src)
    net = build_model(load_config(None, settings))
    converted, skipped = map_ctdet(state)
    finish(converted, net, src, out, f"our CenterNet ({settings['backbone']}, use_dcn {settings['use_dcn']})", skipped,
           settings, log)
    return settings
