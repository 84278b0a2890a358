"""Typed configuration: one dataclass schema per model, YAML defaults, ``--key value`` overrides.

Every key in a YAML file or on the command line must be a field of the schema and must have the
field's type; anything else is a one-line error naming the key. Values on the command line are
parsed as YAML scalars/lists (``--multi_scales [0.5,1.0]``, ``--visual_image true``).
"""
import dataclasses
import math
import os
import sys
import typing
from typing import List

import yaml

from centerdet.errors import CenterDetError

COCO_MEAN = [0.40789654, 0.44719302, 0.47026115]
COCO_STD = [0.28863828, 0.27408164, 0.27809835]
COCO_EIG_VAL = [0.2141788, 0.01817699, 0.00341571]
COCO_EIG_VEC = [[-0.58752847, -0.69563484, 0.41340352],
                [-0.5832747, 0.00994535, -0.81221408],
                [-0.56089297, 0.71832671, 0.41158938]]


def _f(default):
    """Field with a mutable default (lists) copied per instance."""
    return dataclasses.field(default_factory=lambda: list(default) if isinstance(default, list) else default)


@dataclasses.dataclass
class CommonConfig:
    """Keys shared by every model: device, paths, augmentation, optimisation, checkpoints."""
    model: str = "centernet"
    device_target: str = "CPU"
    device_id: int = 0
    device_num: int = 1
    distribute: bool = False
    mode: str = "graph"
    # CPU convolutions and max pooling: "onednn" runs centerdet's kernels (dependency/cpu_ops, oneDNN
    # blocked layouts, AVX-512 where the CPU has it), "mindspore" MindSpore's own. GPU/Ascend: unused.
    cpu_kernels: str = "onednn"
    seed: int = 1
    # data
    data_dir: str = ""
    train_ann_file: str = "annotations/instances_train2017.json"
    train_img_dir: str = "train2017"
    val_ann_file: str = "annotations/instances_val2017.json"
    val_img_dir: str = "val2017"
    test_ann_file: str = "annotations/image_info_test-dev2017.json"
    test_img_dir: str = "test2017"
    mindrecord_dir: str = ""
    mindrecord_prefix: str = "coco_det.train.mind"
    mindrecord_shards: int = 1
    num_parallel_workers: int = 2
    do_shuffle: bool = True
    num_classes: int = 80
    max_objs: int = 128
    input_res_train: List[int] = _f([512, 512])
    input_res_test: List[int] = _f([680, 680])
    keep_res: bool = True
    test_pad: int = 31
    down_ratio: int = 4
    rand_crop: bool = True
    shift: float = 0.1
    scale: float = 0.4
    rotate: float = 0.0
    aug_rot: float = 0.0
    flip_prop: float = 0.5
    color_aug: bool = True
    mean: List[float] = _f(COCO_MEAN)
    std: List[float] = _f(COCO_STD)
    eig_val: List[float] = _f(COCO_EIG_VAL)
    eig_vec: List[List[float]] = _f(COCO_EIG_VEC)
    # loss
    hm_weight: float = 1.0
    wh_weight: float = 0.1
    off_weight: float = 1.0
    # optimisation
    batch_size: int = 32
    epoch_size: int = 330
    train_steps: int = -1
    optimizer: str = "Adam"
    weight_decay: float = 0.0
    lr_schedule: str = "MultiDecay"
    learning_rate: float = 4.8e-4
    end_learning_rate: float = 5e-7
    power: float = 5.0
    eps: float = 1e-7
    warmup_steps: int = 2000
    multi_epochs: List[int] = _f([290, 320])
    factor: float = 10.0
    enable_lossscale: bool = True
    loss_scale_mode: str = "dynamic"
    loss_scale_value: float = 1024.0
    scale_factor: float = 2.0
    scale_window: int = 500
    max_nonfinite_steps: int = 20
    # checkpoints and logging
    save_checkpoint_path: str = "./ckpt"
    save_checkpoint_steps: int = 1000
    save_checkpoint_num: int = 1
    enable_save_ckpt: bool = True
    load_checkpoint_path: str = ""
    resume: bool = False
    log_interval: int = 20
    # Each rank of a distributed run logs to <save_checkpoint_path>/LOG<rank>/training_log.txt;
    # with log_image_ids every rank also lists the image ids of each step it trained on there.
    log_image_ids: bool = False
    need_profiler: bool = False
    profiler_path: str = ""
    # evaluation
    run_mode: str = "val"
    save_result_dir: str = "./results"
    visual_image: bool = False
    visual_max_images: int = 16
    score_thresh: float = 0.3
    K: int = 100
    SOFT_NMS: bool = True
    nms_method: int = 2
    nms_iou: float = 0.5
    nms_sigma: float = 0.5
    nms_score_thresh: float = 0.001
    max_per_image: int = 100
    multi_scales: List[float] = _f([1.0])
    flip_test: bool = False
    eval_max_images: int = 0
    fold_bn: bool = True            # eval/test/export run the network with BatchNorm folded into the convs
    # export and deployment: the network input is input_res_test padded to a multiple of 32
    file_format: str = "MINDIR"
    export_name: str = ""           # output file name without suffix; empty: the model name
    export_batch_size: int = 1


@dataclasses.dataclass
class CenterNetConfig(CommonConfig):
    """CenterNet: ResNet backbone + (deformable) upsampling + hm/wh/reg heads."""
    backbone: str = "resnet50"
    # deconv: the reference neck (stride-32 map, three (DCN) conv + up-conv stages, no skips);
    # ida: skip-connected neck over layer1..4 (CenterFace's topology), neck_width channels.
    neck: str = "deconv"
    neck_width: int = 64
    use_dcn: bool = True
    # With cpu_kernels mindspore: train the DCNs by grid sampling + 1×1 conv instead of the fused
    # op, 14-15 % shorter CPU steps for 16-27 % more peak memory (benchmarks/README.md); inference
    # always uses the fused op. centerdet's own CPU kernels have their own DCN sampling.
    dcn_train_sampling: bool = False
    deconv_channels: List[int] = _f([256, 128, 64])
    head_conv: int = 64
    hm_bias: float = -2.19
    reg_offset: bool = True


@dataclasses.dataclass
class CenterFaceConfig(CommonConfig):
    """CenterFace: MobileNetV2 + skip-connected upsampling + hm/wh/reg/lm 1×1 heads, one class.

    Defaults are the MindSpore model-zoo recipe (8 devices × batch 8, lr 0.004, 140 epochs with
    ×0.1 at 90 and 120, static loss scale 1024, 512² crops, 832² letterboxed tests, K 200).
    """
    model: str = "centerface"
    backbone: str = "mobilenet_v2"
    head_conv: int = 64             # the neck width D (the model zoo's head_conv); 24 in the authors' release
    backbone_act: str = "relu6"     # MobileNetV2 activation: relu6 (torchvision, model zoo); relu (authors' release)
    hm_bias: float = 0.0            # model zoo init: heads N(0, 0.001), no prior on the heatmap bias
    lm_weight: float = 0.1
    pretrained_backbone: str = ""
    num_classes: int = 1
    max_objs: int = 64
    anchor_sampling: bool = True
    crop_scales: List[float] = _f([0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    min_landmark_area: float = 8.0
    data_dir: str = ""
    train_ann_file: str = "annotations/train.json"
    train_img_dir: str = "images/train/images"
    val_ann_file: str = "annotations/val.json"
    val_img_dir: str = "images/val/images"
    ground_truth_dir: str = "ground_truth"
    mindrecord_prefix: str = "widerface.train.mind"
    input_res_test: List[int] = _f([832, 832])
    keep_res: bool = False
    batch_size: int = 8
    epoch_size: int = 140
    learning_rate: float = 0.004
    weight_decay: float = 5e-4
    warmup_steps: int = 0
    multi_epochs: List[int] = _f([90, 120])
    loss_scale_mode: str = "static"
    K: int = 200
    nms_method: int = 2
    max_per_image: int = 1000
    score_thresh: float = 0.35
    eval_iou: float = 0.5
    write_landmarks: bool = False
    # Landmarks are offsets in box-size units from the peak cell (model zoo) or from the box's
    # top-left corner (the authors' released model).
    landmark_origin: str = "center"


SCHEMAS = {"centernet": CenterNetConfig, "centerface": CenterFaceConfig}

CHOICES = {
    "model": tuple(SCHEMAS),
    "device_target": ("CPU", "GPU", "Ascend"),
    "mode": ("graph", "pynative"),
    "cpu_kernels": ("onednn", "mindspore"),
    "optimizer": ("Adam",),
    "lr_schedule": ("MultiDecay", "PolyDecay"),
    "loss_scale_mode": ("dynamic", "static"),
    "run_mode": ("val", "test"),
    "backbone": ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2"),
    "neck": ("deconv", "ida"),
    "nms_method": (0, 1, 2),
    "backbone_act": ("relu6", "relu"),
    "file_format": ("MINDIR", "AIR", "ONNX"),
    "landmark_origin": ("center", "corner"),
}


def _type_name(tp):
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check(key, value, tp):
    """Return ``value`` converted to ``tp`` or raise naming the key. ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin in (list, List):
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise CenterDetError(f"config key '{key}' must be a list ({_type_name(tp)}), got {value!r}")
        return [_check(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            # PyYAML (YAML 1.1) reads '2e-3' (no dot) as text; accept what Python reads as a number.
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise CenterDetError(f"config key '{key}' must be a finite number, got {value!r}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
    raise CenterDetError(f"config key '{key}' must be of type {_type_name(tp)}, got {value!r}")


def _parse_raw(key, raw, tp):
    """Command-line text -> value: kept verbatim for str keys, parsed as YAML otherwise."""
    if tp is str:
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise CenterDetError(f"config key '{key}': cannot parse {raw!r} as {_type_name(tp)}") from None


def _apply(cfg, values, source, raw=False):
    hints = typing.get_type_hints(type(cfg))
    for key, value in values.items():
        if key not in hints:
            raise CenterDetError(f"unknown config key '{key}' in {source} (model '{cfg.model}'); "
                                 f"see default_config.yaml and configs/ for the valid keys")
        if raw:
            value = _parse_raw(key, value, hints[key])
        setattr(cfg, key, _check(key, value, hints[key]))


def _validate(cfg):
    for key, allowed in CHOICES.items():
        if hasattr(cfg, key) and getattr(cfg, key) not in allowed:
            raise CenterDetError(f"config key '{key}' must be one of {list(allowed)}, got {getattr(cfg, key)!r}")
    # Training crops feed the stride-32 backbone directly; test inputs are zero-padded up to a
    # multiple of 32 at run time, so they only need to map onto whole output cells.
    for key, multiple in (("input_res_train", 32), ("input_res_test", cfg.down_ratio)):
        res = getattr(cfg, key)
        if len(res) != 2 or min(res) <= 0 or any(r % multiple for r in res):
            raise CenterDetError(f"config key '{key}' must be [height, width], both positive multiples of "
                                 f"{multiple}, got {res}")
    for key in ("batch_size", "num_classes", "max_objs", "K", "down_ratio", "save_checkpoint_num"):
        if getattr(cfg, key) <= 0:
            raise CenterDetError(f"config key '{key}' must be positive, got {getattr(cfg, key)}")
    if len(cfg.mean) != 3 or len(cfg.std) != 3 or min(cfg.std) <= 0:
        raise CenterDetError("config keys 'mean' and 'std' must each hold 3 numbers (std > 0)")
    if not cfg.multi_scales or min(cfg.multi_scales) <= 0:
        raise CenterDetError("config key 'multi_scales' must be a non-empty list of positive scales")
    if (cfg.model == "centerface") != (cfg.backbone == "mobilenet_v2"):
        raise CenterDetError(f"config key 'backbone' {cfg.backbone!r} does not fit model {cfg.model!r} "
                             f"(centerface uses mobilenet_v2, centernet a resnet)")
    if cfg.model == "centerface":
        if cfg.num_classes != 1:
            raise CenterDetError(f"config key 'num_classes' must be 1 for centerface, got {cfg.num_classes}")
        if not cfg.crop_scales or min(cfg.crop_scales) <= 0:
            raise CenterDetError("config key 'crop_scales' must be a non-empty list of positive scales")
        if not 0 < cfg.eval_iou <= 1:
            raise CenterDetError(f"config key 'eval_iou' must be in (0, 1], got {cfg.eval_iou}")


def _read_yaml(path):
    if not os.path.isfile(path):
        raise CenterDetError(f"config file not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise CenterDetError(f"config file is not valid YAML: {path} ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError as exc:
        raise CenterDetError(f"config file is not UTF-8 text: {path} (byte {exc.start})") from None
    if not isinstance(data, dict):
        raise CenterDetError(f"config file must hold a mapping of key: value, got {type(data).__name__}: {path}")
    return data


def parse_overrides(argv):
    """``['--a', '1', '--b=x']`` -> ({'a': '1', 'b': 'x'}, config_path or None); values stay text."""
    values, config_path = {}, None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            # The entry script's docstring is its usage text (train.py, eval.py, centerdet.data.convert...).
            doc = getattr(sys.modules.get("__main__"), "__doc__", None) or ""
            print(doc.strip() or "usage: [--config FILE] [--key value ...] (keys: default_config.yaml)")
            sys.exit(0)
        if not arg.startswith("--") or arg == "--":
            raise CenterDetError(f"unexpected argument {arg!r}; options look like --key value")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            key = arg[2:]
            if i + 1 >= len(argv):
                raise CenterDetError(f"option --{key} needs a value")
            raw = argv[i + 1]
            i += 2
        key = key.replace("-", "_")
        if key in ("config", "config_path"):
            config_path = raw
        else:
            values[key] = raw
    return values, config_path


def default_config_path():
    """default_config.yaml at the repository root (next to train.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "default_config.yaml"))


def load_config(config_path=None, overrides=None, model=None):
    """Defaults of the schema <- YAML file <- overrides. Returns a validated dataclass instance."""
    file_values = _read_yaml(config_path) if config_path else {}
    overrides = dict(overrides or {})
    name = overrides.get("model") or file_values.get("model") or model or "centernet"
    if not isinstance(name, str) or name not in SCHEMAS:
        raise CenterDetError(f"config key 'model' must be one of {list(SCHEMAS)}, got {name!r}")
    cfg = SCHEMAS[name]()
    cfg.model = name
    _apply(cfg, file_values, config_path)
    _apply(cfg, overrides, "command line", raw=True)
    _validate(cfg)
    return cfg


def config_from_argv(argv, default_path=None):
    overrides, path = parse_overrides(list(argv))
    if path is None:
        path = default_path or default_config_path()
    return load_config(path, overrides)


def to_dict(cfg):
    return dataclasses.asdict(cfg)
