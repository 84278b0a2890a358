"""The task interface: what differs between detectors that find objects as points.

Every task shares the machine (reader → augmentation → targets → MindRecord → backbone/neck/heads →
loss → training loop; canvas → heads → decode → NMS → metric). A task states only its own parts:
its config schema and defaults, its heads (:class:`HeadSpec`), how a sample becomes targets
(``encode``), how head maps become detections (``decode``), its metric, its model-zoo flag names
and its demo. ``centerdet.tasks.register`` makes a new one known to every entry point.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One output map of the detector and its term of the training loss.

    ``name`` is the head's cell (checkpoint tensors ``<name>.<i>.weight``) and its output name;
    ``loss`` builds the loss cell, called as ``loss(prediction, *[targets[c] for c in
    loss_inputs])``, weighted by the config key ``weight_key`` and logged under that key's stem
    (``off_weight`` → ``off``). ``heatmap`` marks logits that become probabilities (sigmoid) before
    decoding. Under flip-test, ``flip="mean"`` averages the upright and the mirrored pass,
    ``"upright"`` keeps the upright one (offsets, landmarks). ``tower`` > 0 puts a 3×3 conv of that
    width and a ReLU before the 1×1 output conv; ``bias`` is the output bias's initial value;
    ``small_init`` draws the weights from N(0, 0.001) instead of MindSpore's default.
    """
    name: str
    channels: int
    loss: Callable[[], Any]
    loss_inputs: Tuple[str, ...]
    weight_key: str
    heatmap: bool = False
    flip: str = "upright"
    tower: int = 0
    bias: Optional[float] = None
    small_init: bool = True

    @property
    def part(self) -> str:
        return self.weight_key[:-len("_weight")] if self.weight_key.endswith("_weight") else self.weight_key


@dataclasses.dataclass(frozen=True)
class DemoSpec:
    """``centerdet demo <task>``: the recipe, how to generate its synthetic data set, how many
    training images by default, and the one-line summary of the metrics."""
    config: str
    generate: Callable[[str, int, int, int], Any]
    train_images: int
    summary: Callable[[Dict[str, float]], str]


class Task:
    """Base of every task; subclasses set the class attributes and implement the methods that raise."""
    name: str = ""
    schema: type = None
    # Model-zoo flag names of this task's scripts → config keys (the command line maps them), and
    # flags whose values need translating: flag → fn(text) → {config key: text}.
    aliases: Dict[str, str] = {}
    converters: Dict[str, Callable[[str], Dict[str, str]]] = {}
    # Keypoints per object read from the annotations (0: boxes only); their order after a
    # horizontal flip (left and right points swap slots).
    num_keypoints: int = 0
    keypoint_flip: Tuple[int, ...] = ()
    # Whether crowd boxes (iscrowd 1) are trained on; evaluation ignores them either way.
    train_on_crowd: bool = True
    # postprocess.py's log of the scores (the model zoo's Ascend 310 scripts name it)
    score_log: str = "acc.log"
    # Config keys of this task that change its network or how its outputs are read; with the common
    # ones (config.INPUT_KEYS) they are compared with the config a checkpoint was trained with.
    network_keys: Tuple[str, ...] = ()
    # the shipped recipe of its full-size training (the model zoo's), named in errors
    recipe: Optional[str] = None
    demo: Optional[DemoSpec] = None

    # ---------------------------------------------------------------- config and network

    def knows(self, flag: str) -> bool:
        """Whether ``flag`` is one of this task's config keys or model-zoo flags."""
        return flag in self.aliases or flag in self.converters or flag in self.schema.__dataclass_fields__

    def flags(self, values: Dict[str, str]) -> Dict[str, str]:
        """Command-line values with this task's model-zoo flag names turned into config keys."""
        out = {}
        for key, value in values.items():
            if key in self.converters:
                out.update(self.converters[key](value))
            else:
                out[self.aliases.get(key, key)] = value
        return out

    def validate(self, cfg) -> None:
        """Checks across keys beyond the schema's types and choices; raise CenterDetError."""

    def describe(self, cfg) -> str:
        """One line naming the architecture choices that matter, for logs."""
        raise NotImplementedError

    def build_backbone_neck(self, cfg):
        """(backbone cell, neck cell); the neck's ``out_channels`` feed every head."""
        raise NotImplementedError

    def heads(self, cfg) -> List[HeadSpec]:
        """The heads in output order; the first is the heatmap."""
        raise NotImplementedError

    def build_model(self, cfg):
        from centerdet.models.detector import CenterDetector
        from centerdet.models.heads import conv_head

        backbone, neck = self.build_backbone_neck(cfg)
        heads = [(s.name, conv_head(neck.out_channels, s.channels, s.tower, bias_value=s.bias, small_init=s.small_init))
                 for s in self.heads(cfg)]
        return CenterDetector(backbone, neck, heads)

    def build_loss(self, cfg):
        from centerdet.losses import DetectionLoss

        return DetectionLoss(self.heads(cfg), self.target_columns(cfg), cfg)

    # ---------------------------------------------------------------- targets and detections

    def target_columns(self, cfg) -> Tuple[str, ...]:
        """Names of the arrays ``encode`` returns, in the order the training batches carry them."""
        raise NotImplementedError

    def encode(self, target: Dict[str, np.ndarray], out_size: Tuple[int, int], cfg) -> Dict[str, np.ndarray]:
        """A sample's target dict (boxes (N, 4) xyxy in output-map pixels, labels (N,), and with
        keypoints: keypoints (N, K, 2), visible (N, K)) → the training target arrays."""
        raise NotImplementedError

    def decode(self, maps: Dict[str, np.ndarray], cfg) -> np.ndarray:
        """Head maps of one canvas (heatmap as probabilities, (C, H, W) each) → (k, 6 + extra) rows
        [x1, y1, x2, y2, score, label, ...] in output-map pixels; extra columns are (x, y) pairs."""
        raise NotImplementedError

    def class_names(self, cfg) -> Optional[List[str]]:
        """Names of the labels for pictures and detection files: the config's class_names, else
        the categories of its val (else train) annotations when the file is there, else None
        (labels are numbers)."""
        import json
        import os

        from centerdet.data.coco import split_paths

        if cfg.class_names:
            return list(cfg.class_names)
        for split in ("val", "train"):
            ann = split_paths(cfg, split)[0]
            if ann.endswith(".json") and os.path.isfile(ann):
                try:
                    with open(ann, encoding="utf-8") as f:
                        cats = sorted(json.load(f).get("categories", []), key=lambda c: c["id"])
                    return [str(c["name"]) for c in cats] or None
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    return None
        return None

    def detection_files(self, name: str, dets: np.ndarray) -> Dict[str, str]:
        """Text files ``detect`` writes beside each image's JSON, {file name: text}: the task's
        benchmark format for one image's detections (rows [x1, y1, x2, y2, score, label, ...]), if any."""
        return {}

    def metric(self, cfg, out_dir: Optional[str], log: Callable[[str], None] = print):
        """The evaluation of ``cfg``'s split: a centerdet.evaluation.Metric writing into ``out_dir``
        (None: only its image list is wanted)."""
        raise NotImplementedError
