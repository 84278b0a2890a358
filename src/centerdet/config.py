"""Typed configuration: one dataclass schema per task, recipe YAML files, ``--key value`` overrides.

A task's schema (``centerdet.tasks``) subclasses :class:`CommonConfig` and states its defaults once;
a recipe file (``centerdet/configs/*.yaml``, or any YAML path) states only what differs from them.
Every key in a file or on the command line must be a field of the schema and have the field's type;
anything else is a one-line error naming the key. Command-line values are parsed as YAML scalars and
lists (``--multi_scales [0.5,1.0]``, ``--visual_image true``).
"""
import dataclasses
import json
import math
import os
import typing
from importlib import resources
from typing import Any, Dict, List, Optional, Sequence

import yaml

from centerdet.errors import CenterDetError

COCO_MEAN = [0.40789654, 0.44719302, 0.47026115]
COCO_STD = [0.28863828, 0.27408164, 0.27809835]
COCO_EIG_VAL = [0.2141788, 0.01817699, 0.00341571]
COCO_EIG_VEC = [[-0.58752847, -0.69563484, 0.41340352],
                [-0.5832747, 0.00994535, -0.81221408],
                [-0.56089297, 0.71832671, 0.41158938]]
DEFAULT_TASK = "centernet"
# The model zoo's flag names that every task's scripts take (export.py, the MindRecord converter);
# a task adds its own (Task.aliases).
COMMON_ALIASES = {"ckpt_file": "load_checkpoint_path", "export_load_ckpt": "load_checkpoint_path",
                  "export_format": "file_format", "TEST_BATCH_SIZE": "export_batch_size", "coco_data_dir": "data_dir",
                  "file_name": "export_name"}
# The model zoo's ModelArts switches: its OBS storage (moxing) does not exist here.
MODELARTS_FLAGS = ("enable_modelarts", "data_url", "train_url", "checkpoint_url")


def field(default: Any, choices: Sequence[Any] = ()) -> Any:
    """A schema field: lists are copied per instance; ``choices`` (if any) are the allowed values."""
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: default)
    return dataclasses.field(default_factory=factory, metadata={"choices": tuple(choices)})


@dataclasses.dataclass
class CommonConfig:
    """Keys every task has: device, paths, augmentation, optimisation, checkpoints, evaluation."""
    model: str = "centernet"
    device_target: str = field("CPU", ("CPU", "GPU", "Ascend"))
    device_id: int = 0
    device_num: int = 1
    distribute: bool = False
    mode: str = field("graph", ("graph", "pynative"))
    # CPU convolutions and max pooling: "onednn" runs centerdet's kernels (dependency/cpu_ops, oneDNN
    # blocked layouts, AVX-512 where the CPU has it), "mindspore" MindSpore's own. GPU/Ascend: unused.
    cpu_kernels: str = field("onednn", ("onednn", "mindspore"))
    # where inference graphs are kept between runs (centerdet.graph_cache): "auto" is
    # $CENTERDET_COMPILE_CACHE, else ~/.cache/centerdet/graphs; "off" compiles every run
    compile_cache: str = "auto"
    seed: int = 1
    # Paths (README "Paths"): relative ones are relative to the working directory, except the
    # annotation and image keys below, which are relative to data_dir. Empty output paths name a
    # folder of the run: <output_dir>/<run_name>/ckpt, .../results, .../<model>.<format>; run_name
    # empty: the --config file's name without its suffix (the model's name without a file).
    output_dir: str = "outputs"
    run_name: str = ""
    overwrite: bool = False         # replace the results of an earlier run instead of refusing
    # data
    data_dir: str = ""
    train_ann_file: str = "annotations/instances_train2017.json"
    train_img_dir: str = "train2017"
    val_ann_file: str = "annotations/instances_val2017.json"
    val_img_dir: str = "val2017"
    test_ann_file: str = "annotations/image_info_test-dev2017.json"
    test_img_dir: str = "test2017"
    mindrecord_dir: str = ""        # empty: <data_dir>/mindrecord
    mindrecord_prefix: str = "coco_det.train.mind"
    mindrecord_shards: int = 8
    num_parallel_workers: int = 8
    do_shuffle: bool = True
    num_classes: int = 80
    # names of the labels in pictures and detect's files; empty: the categories of the val (else
    # train) annotation json when it is there, else the label numbers
    class_names: List[str] = field([])
    max_objs: int = 128
    input_res_train: List[int] = field([512, 512])
    input_res_test: List[int] = field([680, 680])
    keep_res: bool = True
    test_pad: int = 31
    down_ratio: int = 4
    # augmentation: a random crop (scale picked from crop_scales, centre at least crop_border from
    # the image edges: pixels when >= 1, else a fraction of the crop side, picked from the list);
    # without rand_crop a gaussian shift and scale instead
    rand_crop: bool = True
    crop_scales: List[float] = field([0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    crop_border: List[float] = field([128.0])
    shift: float = 0.1
    scale: float = 0.4
    rotate: float = 0.0
    aug_rot: float = 0.0
    flip_prop: float = 0.5
    color_aug: bool = True
    # PyramidBox data-anchor-sampling before the crop: the image rescaled so that a random object
    # lands near one of the small anchor sizes (the CenterFace recipe)
    anchor_sampling: bool = False
    min_landmark_area: float = 8.0  # objects this small (px², before the crop warp) train no landmarks
    mean: List[float] = field(COCO_MEAN)
    std: List[float] = field(COCO_STD)
    eig_val: List[float] = field(COCO_EIG_VAL)
    eig_vec: List[List[float]] = field(COCO_EIG_VEC)
    # loss weights (a task's heads name the ones they use)
    hm_weight: float = 1.0
    wh_weight: float = 0.1
    off_weight: float = 1.0
    # optimisation
    batch_size: int = 32
    epoch_size: int = 330
    train_steps: int = -1
    optimizer: str = field("Adam", ("Adam",))
    weight_decay: float = 0.0
    lr_schedule: str = field("MultiDecay", ("MultiDecay", "PolyDecay", "CosineAnnealing", "Exponential"))
    learning_rate: float = 4.8e-4
    end_learning_rate: float = 5e-7   # PolyDecay's and CosineAnnealing's last value
    power: float = 5.0
    eps: float = 1e-7
    warmup_steps: int = 2000
    warmup_epochs: float = 0.0        # more warm-up, in epochs (the CenterFace model zoo's flag)
    multi_epochs: List[int] = field([290, 320])
    factor: float = 10.0              # MultiDecay: ÷ at each of multi_epochs; Exponential: ÷ every epoch
    t_max: int = 0                    # CosineAnnealing's period in epochs; 0: epoch_size
    enable_lossscale: bool = True
    loss_scale_mode: str = field("dynamic", ("dynamic", "static"))
    loss_scale_value: float = 1024.0
    scale_factor: float = 2.0
    scale_window: int = 500
    max_nonfinite_steps: int = 20
    # MindSpore's data sink (the CenterNet model zoo's flags): data_sink_steps steps per device call
    # (-1: an epoch); MindSpore offers it on Ascend and GPU only
    enable_data_sink: bool = False
    data_sink_steps: int = 1
    # checkpoints and logging
    save_checkpoint_path: str = ""
    save_checkpoint_steps: int = 1000
    save_checkpoint_epochs: int = 0   # > 0: save at the end of every N epochs instead of every save_checkpoint_steps
    save_checkpoint_num: int = 5
    checkpoint_prefix: str = ""       # checkpoints are <prefix>-<epoch>_<step>.ckpt; empty: the model name
    enable_save_ckpt: bool = True
    load_checkpoint_path: str = ""
    pretrained_backbone: str = ""   # ImageNet backbone weights (torchvision names, centerdet.convert)
    resume: bool = False
    log_interval: int = 20
    # Each rank of a distributed run logs to <save_checkpoint_path>/LOG<rank>/training_log.txt;
    # with log_image_ids every rank also lists the image ids of each step it trained on there.
    log_image_ids: bool = False
    need_profiler: bool = False
    profiler_path: str = ""
    # evaluation
    run_mode: str = field("val", ("val", "test"))
    enable_eval: bool = True        # eval.py scores the val predictions (false: results only; the zoo's flag)
    save_result_dir: str = ""
    # results under save_result_dir/<checkpoint epoch>/ (the model zoo's per-epoch CenterFace folders)
    result_per_checkpoint: bool = False
    visual_image: bool = False
    visual_max_images: int = 16
    score_thresh: float = 0.3
    K: int = 100
    SOFT_NMS: bool = True
    nms_method: int = field(2, (0, 1, 2))
    nms_iou: float = 0.5
    nms_sigma: float = 0.5
    nms_score_thresh: float = 0.001
    max_per_image: int = 100
    multi_scales: List[float] = field([1.0])
    flip_test: bool = False
    eval_max_images: int = 0
    fold_bn: bool = True            # eval/test/export run the network with BatchNorm folded into the convs
    # export and deployment: the network input is input_res_test padded to a multiple of 32
    file_format: str = field("MINDIR", ("MINDIR", "AIR", "ONNX"))
    export_name: str = ""           # output file name without suffix
    export_batch_size: int = 1
    # ONNX: deformable convs as ONNX's DeformConv (opset 19) or as GridSample taps + a 1×1 Conv
    # (opset 16), for runtimes without DeformConv
    onnx_dcn: str = field("deformconv", ("deformconv", "decomposed"))
    # eval.py / detect: "onnxruntime" runs load_checkpoint_path as an ONNX file of export.py
    # (pip install .[onnx] onnxruntime), with the same decode and metrics
    backend: str = field("mindspore", ("mindspore", "onnxruntime"))


def with_defaults(schema: type, **defaults: Any) -> type:
    """``schema`` with other defaults for keys it has: how a task's schema states where its recipe
    differs from the common keys (types and choices stay the fields')."""
    own = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(defaults) - set(own))
    if unknown:
        raise TypeError(f"{schema.__name__} has no key {unknown[0]!r}")
    hints = typing.get_type_hints(schema)
    fields = [(k, hints[k], field(v, own[k].metadata.get("choices", ()))) for k, v in defaults.items()]
    derived = dataclasses.make_dataclass(schema.__name__, fields, bases=(schema,))
    # importable (and picklable, for the data workers) under the name the module binds it to
    derived.__module__, derived.__qualname__, derived.__doc__ = schema.__module__, schema.__qualname__, schema.__doc__
    return derived


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
                                 f"print the valid keys with: centerdet config --model {cfg.model}")
        if raw:
            value = _parse_raw(key, value, hints[key])
        setattr(cfg, key, _check(key, value, hints[key]))


def _validate(cfg):
    for f in dataclasses.fields(cfg):
        allowed = f.metadata.get("choices")
        if allowed and getattr(cfg, f.name) not in allowed:
            raise CenterDetError(f"config key '{f.name}' must be one of {list(allowed)}, got {getattr(cfg, f.name)!r}")
    # Training crops feed the stride-32 backbone directly; test inputs are zero-padded up to a
    # multiple of 32 at run time, so they only need to map onto whole output cells.
    for key, multiple in (("input_res_train", 32), ("input_res_test", cfg.down_ratio)):
        res = getattr(cfg, key)
        if len(res) != 2 or min(res) <= 0 or any(r % multiple for r in res):
            raise CenterDetError(f"config key '{key}' must be [height, width], both positive multiples of "
                                 f"{multiple}, got {res}")
    for key in ("batch_size", "num_classes", "max_objs", "K", "down_ratio", "save_checkpoint_num", "factor",
                "save_checkpoint_steps"):
        if getattr(cfg, key) <= 0:
            raise CenterDetError(f"config key '{key}' must be positive, got {getattr(cfg, key)}")
    for key in ("warmup_steps", "warmup_epochs", "t_max", "save_checkpoint_epochs"):
        if getattr(cfg, key) < 0:
            raise CenterDetError(f"config key '{key}' must not be negative, got {getattr(cfg, key)}")
    if "-" in cfg.checkpoint_prefix or "/" in cfg.checkpoint_prefix:
        raise CenterDetError(f"config key 'checkpoint_prefix' must not hold '-' or '/', got {cfg.checkpoint_prefix!r}")
    if cfg.class_names and len(cfg.class_names) != cfg.num_classes:
        raise CenterDetError(f"config key 'class_names' holds {len(cfg.class_names)} names for num_classes "
                             f"{cfg.num_classes}: give one per class, or none")
    if len(cfg.mean) != 3 or len(cfg.std) != 3 or min(cfg.std) <= 0:
        raise CenterDetError("config keys 'mean' and 'std' must each hold 3 numbers (std > 0)")
    for key in ("multi_scales", "crop_scales", "crop_border"):
        if not getattr(cfg, key) or min(getattr(cfg, key)) <= 0:
            raise CenterDetError(f"config key '{key}' must be a non-empty list of positive numbers")


# ---------------------------------------------------------------- recipe files


def recipe_names() -> List[str]:
    """The recipes shipped inside the package (centerdet/configs/*.yaml), without the suffix."""
    folder = resources.files("centerdet").joinpath("configs")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def find_config(name: str) -> str:
    """A config path as given when it is a file, else the shipped recipe of that name (with or
    without .yaml); the error lists the shipped ones."""
    if os.path.isfile(name):
        return name
    stem = name[:-5] if name.endswith(".yaml") else name
    if os.sep not in stem and "/" not in stem and stem in recipe_names():
        return str(resources.files("centerdet").joinpath("configs", stem + ".yaml"))
    raise CenterDetError(f"config file not found: {name} (shipped recipes: {', '.join(recipe_names())})")


def _read_yaml(path):
    path = find_config(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise CenterDetError(f"config file is not valid YAML: {path} ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError as exc:
        raise CenterDetError(f"config file is not UTF-8 text: {path} (byte {exc.start})") from None
    if not isinstance(data, dict):
        raise CenterDetError(f"config file must hold a mapping of key: value, got {type(data).__name__}: {path}")
    return data, path


# Keys of every task that change the network's outputs or what it is fed (a task adds its own:
# Task.network_keys); a checkpoint evaluated with other values than it was trained with gets a warning.
INPUT_KEYS = ("model", "num_classes", "down_ratio", "mean", "std", "input_res_test", "keep_res", "test_pad")
# Keys of a recorded training config that describe that run, not the model: --config CKPT drops them.
RUN_KEYS = ("device_id", "device_num", "distribute", "resume", "pretrained_backbone", "load_checkpoint_path",
            "need_profiler", "profiler_path")


def _checkpoint_values(path):
    """The config a checkpoint records (``--config X.ckpt``), without the keys of its run."""
    from centerdet.engine.checkpoint import stored_config

    stored = stored_config(path)
    if stored is None:
        raise CenterDetError(f"{path} records no training config (converted weights, or written before centerdet "
                             f"recorded them): give the recipe with --config and the weights with --load_checkpoint_path")
    values = {k: v for k, v in stored.items() if k not in RUN_KEYS}
    values["load_checkpoint_path"] = path
    return values, f"the config recorded in {path}"


def differences(stored: Dict[str, Any], cfg: "CommonConfig") -> List[str]:
    """'key <trained value> (this config: <value>)' for each key of INPUT_KEYS and the task's
    network_keys where ``cfg`` differs from the recorded training config ``stored``."""
    from centerdet import tasks

    out = []
    for key in INPUT_KEYS + tasks.of(cfg).network_keys:
        if key in stored and hasattr(cfg, key):
            was, now = json.dumps(stored[key]), json.dumps(getattr(cfg, key))
            if was != now:
                out.append(f"{key} {was} (this config: {now})")
    return out


def load_config(config_path: Optional[str] = None, overrides: Optional[Dict[str, str]] = None,
                model: Optional[str] = None) -> CommonConfig:
    """Schema defaults of the task <- YAML file (a path or a shipped recipe name) <- overrides (text,
    as from a command line, model-zoo flag names included). The task is the 'model' key of the
    overrides, else of the file, else ``model``, else centernet. Returns a validated dataclass."""
    from centerdet import tasks

    from_checkpoint = bool(config_path) and config_path.endswith(".ckpt")
    if from_checkpoint:
        file_values, source = _checkpoint_values(config_path)
    else:
        file_values, source = _read_yaml(config_path) if config_path else ({}, None)
    overrides = dict(overrides or {})
    name = overrides.get("model") or file_values.get("model") or model or DEFAULT_TASK
    task = tasks.get(name)
    for flag in overrides:
        if task.knows(flag) or flag in COMMON_ALIASES or flag in MODELARTS_FLAGS:
            continue
        other = next((t for t in map(tasks.get, tasks.names()) if t is not task and t.knows(flag)), None)
        if other is not None:
            raise CenterDetError(f"--{flag} is a flag of the {other.name} task, and this run is {task.name}: add "
                                 f"--config {other.recipe or other.name} (or --model {other.name})")
    for flag in MODELARTS_FLAGS:
        value = overrides.pop(flag, None)
        if value not in (None, "", "false", "False", "0"):
            raise CenterDetError(f"--{flag} {value}: ModelArts and its OBS storage (moxing) are not available here; "
                                 f"copy the data and checkpoints to local paths and give those (--data_dir, ...)")
    overrides = task.flags({COMMON_ALIASES.get(k, k): v for k, v in overrides.items()})
    if "file_format" in overrides:  # the model zoo writes --file_format mindir as well
        overrides["file_format"] = overrides["file_format"].upper()
    cfg = task.schema()
    cfg.model = task.name
    if from_checkpoint:  # keys a newer centerdet no longer has are not the user's mistake
        file_values = {k: v for k, v in file_values.items() if k in cfg.__dataclass_fields__}
    _apply(cfg, file_values, source)
    _apply(cfg, overrides, "command line", raw=True)
    _validate(cfg)
    task.validate(cfg)
    _fill_paths(cfg, None if from_checkpoint else config_path)
    return cfg


def _fill_paths(cfg, config_path):
    """The empty path keys named for the run (the rule in CommonConfig's comment)."""
    if not cfg.run_name:
        cfg.run_name = os.path.splitext(os.path.basename(config_path))[0] if config_path else cfg.model
    run_dir = os.path.join(cfg.output_dir, cfg.run_name)
    cfg.save_checkpoint_path = cfg.save_checkpoint_path or os.path.join(run_dir, "ckpt")
    cfg.save_result_dir = cfg.save_result_dir or os.path.join(run_dir, "results")
    cfg.export_name = cfg.export_name or os.path.join(run_dir, cfg.model)
    if not cfg.mindrecord_dir and cfg.data_dir:
        cfg.mindrecord_dir = os.path.join(cfg.data_dir, "mindrecord")


def to_dict(cfg: CommonConfig) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)

