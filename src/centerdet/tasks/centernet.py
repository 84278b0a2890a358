"""CenterNet: objects as points on COCO-format data (ResNet + deformable-conv or skip-connected
upsampling; heads hm, wh, reg; COCO AP)."""
import dataclasses
from typing import Dict, List, Optional

import numpy as np

from centerdet.config import CommonConfig, field
from centerdet.tasks.base import DemoSpec, HeadSpec, Task


@dataclasses.dataclass
class CenterNetConfig(CommonConfig):
    """The model zoo's CenterNet-R50 COCO recipe (8 devices × batch 32, Adam 4.8e-4, 330 epochs)."""
    backbone: str = field("resnet50", ("resnet18", "resnet34", "resnet50", "resnet101"))
    # deconv: the reference neck (stride-32 map, three (DCN) conv + up-conv stages, no skips);
    # upconv: three up-conv stages alone (CenterNet's msra_resnet, the MindSpore model zoo's R50);
    # ida: skip-connected neck over layer1..4 (CenterFace's topology), neck_width channels.
    neck: str = field("deconv", ("deconv", "upconv", "ida"))
    neck_width: int = 64
    # Deformable 3×3 convs in the neck: the deconv neck's three stage convs, the ida neck's
    # finishing conv (upconv has no 3×3 conv to make deformable).
    use_dcn: bool = True
    # With cpu_kernels mindspore: train the DCNs by grid sampling + 1×1 conv instead of the fused
    # op, 14-15 % shorter CPU steps for 16-27 % more peak memory (benchmarks/README.md); inference
    # always uses the fused op. centerdet's own CPU kernels have their own DCN sampling.
    dcn_train_sampling: bool = False
    deconv_channels: List[int] = field([256, 128, 64])
    head_conv: int = 64
    hm_bias: float = -2.19
    reg_offset: bool = True


def encode_centernet(boxes: np.ndarray, labels, out_size, num_classes: int, max_objs: int,
                     min_overlap: float = 0.7) -> Dict[str, np.ndarray]:
    """Boxes in output-map pixels → hm, wh (box width and height in cells), reg, ind, mask."""
    from centerdet.data.targets import encode_centers

    t = encode_centers(boxes, labels, out_size, num_classes, max_objs, min_overlap)
    return {"hm": t["hm"], "wh": t["size"].astype(np.float32), "reg": t["reg"], "ind": t["ind"], "mask": t["mask"]}


def decode_centernet(heat: np.ndarray, wh: np.ndarray, reg: Optional[np.ndarray] = None, k: int = 100) -> np.ndarray:
    """heat (C,H,W) probabilities, wh (2,H,W), reg (2,H,W) → (k, 6) boxes in output-map pixels."""
    from centerdet.decode import peak_topk

    scores, cls, ys, xs = peak_topk(heat, k)
    if reg is not None:
        cx = xs + reg[0, ys, xs]
        cy = ys + reg[1, ys, xs]
    else:
        cx, cy = xs + 0.5, ys + 0.5
    bw, bh = wh[0, ys, xs], wh[1, ys, xs]
    dets = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, scores, cls], 1)
    return dets.astype(np.float32)


def _generate_shapes(data_dir, n_train, n_val, seed):
    from centerdet.data.synthetic import SceneOptions, generate_coco

    # Bigger objects, fewer of them and lighter clutter than the generator's defaults, so that a
    # network trained from scratch shows real detections within the demo's minutes on a 2-core CPU.
    generate_coco(data_dir, n_train, n_val, 128, seed, progress=True,
                  opts=SceneOptions(min_box_frac=0.12, max_objects=6, clutter=(0.1, 0.6)))


class CenterNetTask(Task):
    name = "centernet"
    schema = CenterNetConfig
    aliases = {"coco_data_dir": "data_dir"}
    network_keys = ("backbone", "neck", "neck_width", "use_dcn", "deconv_channels", "head_conv", "reg_offset")
    recipe = "centernet_r50-dcn_8xb32-330e_coco"
    demo = DemoSpec("centernet_r18-ida_1xb16-16e_synthetic", _generate_shapes, 1000,
                    lambda m: f"AP {m['AP']:.3f}, AP50 {m['AP50']:.3f}")

    def describe(self, cfg):
        if cfg.neck == "deconv":
            return f"{cfg.backbone} + deconv neck (dcn={cfg.use_dcn})"
        if cfg.neck == "upconv":
            return f"{cfg.backbone} + up-conv neck"
        return f"{cfg.backbone} + ida neck (width {cfg.neck_width}, dcn={cfg.use_dcn})"

    def build_backbone_neck(self, cfg):
        from centerdet.models.backbones import resnet
        from centerdet.models.necks import DeconvNeck, IdaUpNeck, UpconvNeck

        if cfg.neck == "deconv":
            backbone = resnet(cfg.backbone)
            return backbone, DeconvNeck(backbone.out_channels, cfg.deconv_channels, use_dcn=cfg.use_dcn,
                                        dcn_train_sampling=cfg.dcn_train_sampling)
        if cfg.neck == "upconv":
            backbone = resnet(cfg.backbone)
            return backbone, UpconvNeck(backbone.out_channels, cfg.deconv_channels)
        backbone = resnet(cfg.backbone, all_levels=True, blocked_levels=True)  # the ida neck reads either layout
        return backbone, IdaUpNeck(backbone.out_channels, cfg.neck_width, use_dcn=cfg.use_dcn,
                                   dcn_train_sampling=cfg.dcn_train_sampling)

    def heads(self, cfg) -> List[HeadSpec]:
        from centerdet.losses import FocalLoss, RegL1Loss

        # The heatmap keeps MindSpore's default init under its −2.19 prior; sizes and offsets start
        # near zero (N(0, 0.001)), as CenterNet does.
        specs = [HeadSpec("hm", cfg.num_classes, FocalLoss, ("hm",), "hm_weight", heatmap=True, flip="mean",
                          tower=cfg.head_conv, bias=cfg.hm_bias, small_init=False),
                 HeadSpec("wh", 2, RegL1Loss, ("ind", "mask", "wh"), "wh_weight", flip="mean", tower=cfg.head_conv)]
        if cfg.reg_offset:
            specs.append(HeadSpec("reg", 2, RegL1Loss, ("ind", "mask", "reg"), "off_weight", tower=cfg.head_conv))
        return specs

    def target_columns(self, cfg):
        return ("hm", "wh", "reg", "ind", "mask")

    def encode(self, target, out_size, cfg):
        return encode_centernet(target["boxes"], target["labels"], out_size, cfg.num_classes, cfg.max_objs)

    def decode(self, maps, cfg):
        return decode_centernet(maps["hm"], maps["wh"], maps.get("reg"), cfg.K)

    def metric(self, cfg, out_dir, log=print):
        from centerdet.evaluation.coco import CocoMetric

        return CocoMetric(cfg, out_dir, log)
