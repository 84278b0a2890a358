"""Checkpoints the MindSpore model zoo's CenterNet-R50 and CenterFace training code writes → our
networks' names. Both are MindSpore checkpoints already, so converting is a rename: the training
wrapper's prefix (``network.`` / ``centerface_network.``) and the optimizer state go, the cell
paths of the zoo's networks become ours. Their head channels follow our conventions (sizes,
offsets and landmarks in (x, y) order), so no tensor is reordered.

The zoo's names and shapes are listed, with the source files they were read from, in
tests/data/modelzoo/. Its CenterNet-R50 has the plain up-conv neck (``neck: upconv``); its stem max
pool pads 'same' (0 px before, 1 after) where ours pads 1 px on each side, so its maps come out
shifted by up to one input pixel in our network.
"""
import dataclasses
import re
from typing import Callable, Dict, List, Tuple

from centerdet.convert.common import finish
from centerdet.errors import CenterDetError

PREFIXES = ("centerface_network.", "network.")
# MobileNetV2 blocks: the zoo splits them into four stages, we number them through.
_STAGE_OFFSET = {"1": 0, "2": 4, "3": 7, "4": 14}


@dataclasses.dataclass(frozen=True)
class ZooLayout:
    """A zoo network: ``marker`` starts its tensor names, ``rules`` rename them (in order, re.sub),
    ``settings`` gives our config overrides from the tensors' shapes."""
    marker: str
    rules: List[Tuple[str, object]]
    settings: Callable[[Dict[str, tuple]], Dict[str, str]]

    def rename(self, name):
        for pattern, repl in self.rules:
            name = re.sub(pattern, repl, name)
        return name


LAYOUTS = [
    ZooLayout("base.need_fp", [
        (r"^base\.need_fp(\d)\.(\d+)\.", lambda m: f"backbone.features.{_STAGE_OFFSET[m[1]] + int(m[2])}."),
        (r"^(backbone\.features\.\d+\.)features\.", r"\1"),              # the stem's ConvBNReLU level
        (r"\.conv\.(\d+)\.features\.", r".conv.\1."),                     # a block's ConvBNReLU levels
        (r"^dla_up\.conv\.", "neck.top."),
        (r"^dla_up\.conv_last\.", "neck.fuse."),
        (r"^dla_up\.up(\d)\.up\.", lambda m: f"neck.ups.{int(m[1]) - 1}."),
        (r"^dla_up\.up(\d)\.conv\.", lambda m: f"neck.lats.{int(m[1]) - 1}."),
        (r"^hm_head\.0\.", "hm.0."), (r"^wh_head\.", "wh.0."), (r"^off_head\.", "reg.0."), (r"^kps_head\.", "lm.0.")],
        lambda shapes: {"model": "centerface", "head_conv": str(shapes["dla_up.conv.0.weight"][0])}),
    ZooLayout("resnet50.", [
        (r"^resnet50\.deconv_layers\.", "neck.deconv_layers."),
        (r"^resnet50\.", "backbone."),
        (r"^(hm|wh|reg)_fn\.", r"\1.")],
        lambda shapes: {"model": "centernet", "backbone": "resnet50", "neck": "upconv",
                        "num_classes": str(shapes["hm_fn.2.weight"][0]), "head_conv": str(shapes["hm_fn.0.weight"][0])}),
]


def layout_of(names):
    """The zoo network whose tensors ``names`` (prefix stripped) are, or None."""
    return next((lay for lay in LAYOUTS if any(n.startswith(lay.marker) for n in names)), None)


def strip_prefix(name):
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def convert_modelzoo(src, out, log=print):
    """Write ``out``; returns the config overrides that rebuild the network for it."""
    import numpy as np

    from centerdet.config import load_config
    from centerdet.engine.checkpoint import is_train_state, read_checkpoint
    from centerdet.models import build_model

    params = read_checkpoint(src)
    tensors = {strip_prefix(k): v for k, v in params.items() if not is_train_state(k)}
    skipped = {k: "training state (optimizer moments, step, lr, loss scale)" for k in params if is_train_state(k)}
    layout = layout_of(tensors)
    if layout is None:
        raise CenterDetError(f"{src}: no tensor of the model zoo's CenterFace (base.need_fp*) or CenterNet-R50 "
                             f"(resnet50.*) networks; is it a model zoo checkpoint?")
    settings = layout.settings({k: tuple(v.shape) for k, v in tensors.items()})
    net = build_model(load_config(None, settings))
    converted = {layout.rename(k): (k, np.ascontiguousarray(v.asnumpy())) for k, v in tensors.items()}
    what = f"our {settings['model']} ({', '.join(f'{k} {v}' for k, v in settings.items() if k != 'model')})"
    finish(converted, net, src, out, what, skipped, settings, log)
    return settings
