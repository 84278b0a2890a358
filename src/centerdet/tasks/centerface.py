"""CenterFace: faces with five landmarks on WIDER FACE (MobileNetV2 + skip-connected upsampling;
1×1 heads hm, wh, reg, lm; Easy / Medium / Hard AP)."""
import dataclasses
import math
from typing import Dict, List

import numpy as np

from centerdet.config import CommonConfig, field, with_defaults
from centerdet.errors import CenterDetError
from centerdet.tasks.base import DemoSpec, HeadSpec, Task

# Mirroring turns the left eye / mouth corner into the right one, so the points swap slots.
LANDMARK_FLIP = (1, 0, 2, 4, 3)


@dataclasses.dataclass
class CenterFaceConfig(CommonConfig):
    """The model zoo's CenterFace recipe: 8 devices × batch 8, lr 0.004, 140 epochs with ×0.1 at 90
    and 120, static loss scale 1024, 512² crops with data-anchor-sampling, 832² letterboxed tests,
    K 200. Paths are the seed's WIDER FACE layout under data_dir."""
    backbone: str = field("mobilenet_v2", ("mobilenet_v2",))
    head_conv: int = 64             # the neck width D (the model zoo's head_conv); 24 in the authors' release
    backbone_act: str = field("relu6", ("relu6", "relu"))  # relu6: torchvision, model zoo; relu: the release
    hm_bias: float = 0.0            # model zoo init: heads N(0, 0.001), no prior on the heatmap bias
    lm_weight: float = 0.1
    ground_truth_dir: str = "ground_truth"
    eval_iou: float = 0.5           # official protocol (the model zoo's eval.py uses 0.4)
    write_landmarks: bool = False
    # Landmarks are offsets in box-size units from the peak cell (model zoo) or from the box's
    # top-left corner (the authors' released model).
    landmark_origin: str = field("center", ("center", "corner"))


CenterFaceConfig = with_defaults(
    CenterFaceConfig, model="centerface", num_classes=1, max_objs=64, anchor_sampling=True,
    crop_scales=[0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95], crop_border=[0.1, 0.2, 0.25],
    train_ann_file="annotations/train.json", train_img_dir="images/train/images",
    val_ann_file="annotations/val.json", val_img_dir="images/val/images", mindrecord_prefix="widerface.train.mind",
    input_res_test=[832, 832], keep_res=False, batch_size=8, epoch_size=140, learning_rate=0.004,
    weight_decay=5e-4,  # conv weights only
    warmup_steps=0, multi_epochs=[90, 120], loss_scale_mode="static", save_checkpoint_num=140,
    save_result_dir="./output/centerface", result_per_checkpoint=True, K=200, max_per_image=1000,
    score_thresh=0.35)  # pictures only


def face_box_weight(area: float) -> float:
    """Weight of a face's size/offset losses by its box area in output pixels (model-zoo brackets).

    Small faces are up-weighted so they are not drowned out, but boxes of a few pixels are mostly
    label noise, so those are nearly ignored.
    """
    if area <= 4:
        return 0.1
    if area <= 10:
        return 15.0
    if area <= 20:
        return 10.0
    if area <= 40:
        return 5.0
    return 1.0


def encode_centerface(boxes, landmarks, visible, out_size, max_objs, min_overlap=0.7) -> Dict[str, np.ndarray]:
    """Faces in output-map pixels → CenterFace targets in slot format (centerface.md §2).

    The size target is log(size / 4) (model-zoo convention, decode: 4·exp); landmarks are offsets
    from the integer centre in units of the box size. Slot k holds face k, degenerate faces leave
    their slot empty, and faces past ``max_objs`` are dropped (the caller subsamples crowds).
    """
    from centerdet.data.targets import encode_centers

    t = encode_centers(boxes, np.zeros(len(boxes), np.int32), out_size, 1, max_objs, min_overlap)
    wh = np.zeros((max_objs, 2), np.float32)
    wh_weight = np.zeros((max_objs,), np.float32)
    lm = np.zeros((max_objs, 10), np.float32)
    lm_mask = np.zeros((max_objs, 10), np.float32)
    for k in np.flatnonzero(t["mask"]):
        bw, bh = t["size"][k]
        wh[k] = math.log(bw / 4.0), math.log(bh / 4.0)
        wh_weight[k] = face_box_weight(bw * bh)
        rel = (np.asarray(landmarks[k], np.float64) - t["center"][k]) / (bw, bh)
        # A box only a few float32 ulps wide would give offsets that overflow float32: not a target.
        with np.errstate(over="ignore", invalid="ignore"):
            vis = np.repeat(np.asarray(visible[k], bool) & np.isfinite(rel.astype(np.float32)).all(axis=1), 2)
        lm[k] = np.where(vis, rel.reshape(10), 0.0)
        lm_mask[k] = vis
    return {"hm": t["hm"], "wh": wh, "reg": t["reg"], "ind": t["ind"], "mask": t["mask"],
            "wh_weight": wh_weight, "lm": lm, "lm_mask": lm_mask}


def decode_centerface(heat, wh, reg, lm, k=200, landmark_origin="center") -> np.ndarray:
    """heat (1,H,W) probabilities, wh (2,H,W) log sizes, reg (2,H,W), lm (10,H,W) → (k, 16) rows in
    output-map pixels. Sizes follow the model zoo encoding, size = 4·exp(wh); landmarks are offsets
    in units of the box size from the peak cell ("center", model zoo) or from the box's top-left
    corner ("corner", the authors' released model)."""
    from centerdet.decode import peak_topk

    scores, cls, ys, xs = peak_topk(heat, k)
    bw, bh = 4.0 * np.exp(wh[0, ys, xs]), 4.0 * np.exp(wh[1, ys, xs])
    cx, cy = xs + reg[0, ys, xs], ys + reg[1, ys, xs]
    ox, oy = (cx - bw / 2, cy - bh / 2) if landmark_origin == "corner" else (xs, ys)
    points = lm[:, ys, xs].T.reshape(-1, 5, 2)
    points = np.stack([ox[:, None] + points[..., 0] * bw[:, None], oy[:, None] + points[..., 1] * bh[:, None]], 2)
    dets = np.concatenate([np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, scores, cls], 1),
                           points.reshape(-1, 10)], 1)
    return dets.astype(np.float32)


# ---------------------------------------------------------------- the model zoo's flags

ZOO_ALIASES = {"lr": "learning_rate", "per_batch_size": "batch_size", "max_epoch": "epoch_size",
               "loss_scale": "loss_scale_value", "annot_path": "train_ann_file", "img_dir": "train_img_dir",
               "ckpt_path": "save_checkpoint_path", "eta_min": "end_learning_rate", "save_dir": "save_result_dir",
               "ground_truth_mat": "ground_truth_dir"}
ZOO_SCHEDULES = {"multistep": "MultiDecay", "cosine_annealing": "CosineAnnealing", "exponential": "Exponential"}


def _zoo_error(flag, value, expected):
    return CenterDetError(f"--{flag} {value!r}: expected {expected} (the model zoo's meaning)")


def _switch(key):
    """The zoo's 0 / 1 switches; true / false work as well."""
    return lambda value: {key: {"0": "false", "1": "true"}.get(value.strip(), value)}


def _lr_scheduler(value):
    if value not in ZOO_SCHEDULES and value not in ZOO_SCHEDULES.values():
        raise _zoo_error("lr_scheduler", value, f"one of {sorted(ZOO_SCHEDULES)}")
    return {"lr_schedule": ZOO_SCHEDULES.get(value, value)}


def _lr_epochs(value):
    """'90,120' → multi_epochs [90, 120]."""
    parts = [p.strip() for p in value.strip("[]").split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise _zoo_error("lr_epochs", value, "comma-separated epochs such as 90,120")
    return {"multi_epochs": "[" + ", ".join(parts) + "]"}


def _lr_gamma(value):
    """The zoo multiplies by gamma where we divide by factor."""
    try:
        gamma = float(value)
    except ValueError:
        gamma = -1.0
    if not 0 < gamma <= 1:
        raise _zoo_error("lr_gamma", value, "a factor in (0, 1]")
    return {"factor": repr(1.0 / gamma)}


def _resume(value):
    """The zoo's --resume is a checkpoint to start from; true / false are ours (continue a run)."""
    if value.strip().lower() in ("true", "false", ""):
        return {"resume": value.strip().lower() or "false"}
    return {"load_checkpoint_path": value}


def _ckpt_interval(value):
    """The zoo saves every ckpt_interval steps, 0 meaning once per epoch."""
    if not value.strip().isdigit():
        raise _zoo_error("ckpt_interval", value, "a number of steps (0: every epoch)")
    steps = int(value)
    return {"save_checkpoint_steps": value, "save_checkpoint_epochs": "0"} if steps else {"save_checkpoint_epochs": "1"}


def _optimizer(value):
    return {"optimizer": "Adam" if value.lower() == "adam" else value}


ZOO_CONVERTERS = {"is_distributed": _switch("distribute"), "need_profiler": _switch("need_profiler"),
                  "lr_scheduler": _lr_scheduler, "lr_epochs": _lr_epochs, "lr_gamma": _lr_gamma,
                  "resume": _resume, "ckpt_interval": _ckpt_interval, "optimizer": _optimizer}


def _generate_faces(data_dir, n_train, n_val, seed):
    from centerdet.data.synthetic import FaceSceneOptions, generate_widerface

    generate_widerface(data_dir, n_train, n_val, seed, 256, FaceSceneOptions(min_face=10, max_face=120, max_faces=8),
                       progress=True)


class CenterFaceTask(Task):
    name = "centerface"
    schema = CenterFaceConfig
    aliases = ZOO_ALIASES
    converters = ZOO_CONVERTERS
    num_keypoints = 5
    keypoint_flip = LANDMARK_FLIP
    train_on_crowd = False
    score_log = "ap.log"
    network_keys = ("backbone", "head_conv", "backbone_act", "landmark_origin")
    recipe = "centerface_mbv2_8xb8-140e_widerface"
    demo = DemoSpec("centerface_mbv2_1xb16-20e_synthetic", _generate_faces, 800,
                    lambda m: f"Easy AP {m['easy']:.3f}, Medium AP {m['medium']:.3f}, Hard AP {m['hard']:.3f}")

    def validate(self, cfg):
        if cfg.num_classes != 1:
            raise CenterDetError(f"config key 'num_classes' must be 1 for centerface, got {cfg.num_classes}")
        if not 0 < cfg.eval_iou <= 1:
            raise CenterDetError(f"config key 'eval_iou' must be in (0, 1], got {cfg.eval_iou}")

    def class_names(self, cfg):
        return list(cfg.class_names) or ["face"]

    def describe(self, cfg):
        return f"{cfg.backbone} ({cfg.backbone_act}) + ida neck (width {cfg.head_conv})"

    def build_backbone_neck(self, cfg):
        """MobileNetV2 taps (strides 4–32) → ida neck of width head_conv."""
        from centerdet.models.backbones import mobilenet_v2
        from centerdet.models.necks import IdaUpNeck

        backbone = mobilenet_v2(cfg.backbone_act, blocked_taps=True)
        return backbone, IdaUpNeck(backbone.level_channels, cfg.head_conv)

    def heads(self, cfg) -> List[HeadSpec]:
        from centerdet.losses import FocalLoss, MaskedL1Loss, WeightedSmoothL1Loss

        box = ("ind", "mask", "wh_weight")
        return [HeadSpec("hm", 1, FocalLoss, ("hm",), "hm_weight", heatmap=True, flip="mean", bias=cfg.hm_bias),
                HeadSpec("wh", 2, WeightedSmoothL1Loss, box + ("wh",), "wh_weight", flip="mean"),
                HeadSpec("reg", 2, WeightedSmoothL1Loss, box + ("reg",), "off_weight"),
                HeadSpec("lm", 10, MaskedL1Loss, ("ind", "mask", "lm", "lm_mask"), "lm_weight")]

    def target_columns(self, cfg):
        return ("hm", "wh", "reg", "ind", "mask", "wh_weight", "lm", "lm_mask")

    def encode(self, target, out_size, cfg):
        return encode_centerface(target["boxes"], target["keypoints"], target["visible"], out_size, cfg.max_objs)

    def decode(self, maps, cfg):
        return decode_centerface(maps["hm"], maps["wh"], maps["reg"], maps["lm"], k=cfg.K,
                                 landmark_origin=cfg.landmark_origin)

    def detection_files(self, name, dets):
        from centerdet.evaluation.widerface import prediction_text

        return {name + ".txt": prediction_text(name, np.asarray(dets)[:, :5])}

    def metric(self, cfg, out_dir, log=print):
        from centerdet.evaluation.widerface import WiderFaceMetric

        return WiderFaceMetric(cfg, out_dir, log)
