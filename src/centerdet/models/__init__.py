"""Model factories: config → detector cell."""
from centerdet.models.backbones import mobilenet_v2, resnet
from centerdet.models.detector import CenterDetector
from centerdet.models.heads import conv_head
from centerdet.models.necks import DeconvNeck, IdaUpNeck


def build_centernet(cfg):
    if cfg.neck == "deconv":
        backbone = resnet(cfg.backbone)
        neck = DeconvNeck(backbone.out_channels, cfg.deconv_channels, use_dcn=cfg.use_dcn,
                          dcn_train_sampling=cfg.dcn_train_sampling)
    else:
        backbone = resnet(cfg.backbone, all_levels=True)
        neck = IdaUpNeck(backbone.out_channels, cfg.neck_width)
    c = neck.out_channels
    heads = {
        "hm": conv_head(c, cfg.num_classes, cfg.head_conv, bias_value=cfg.hm_bias),
        "wh": conv_head(c, 2, cfg.head_conv, small_init=True),
    }
    if cfg.reg_offset:
        heads["reg"] = conv_head(c, 2, cfg.head_conv, small_init=True)
    return CenterDetector(backbone, neck, heads)


def build_centerface(cfg):
    """MobileNetV2 taps (strides 4–32) → ida neck of width head_conv → one 1×1 conv per head."""
    backbone = mobilenet_v2(cfg.backbone_act)
    neck = IdaUpNeck(backbone.level_channels, cfg.head_conv)
    c = neck.out_channels
    heads = {"hm": conv_head(c, 1, 0, bias_value=cfg.hm_bias, small_init=True),
             "wh": conv_head(c, 2, 0, small_init=True),
             "reg": conv_head(c, 2, 0, small_init=True),
             "lm": conv_head(c, 10, 0, small_init=True)}
    return CenterDetector(backbone, neck, heads)


BUILDERS = {"centernet": build_centernet, "centerface": build_centerface}


def describe_model(cfg):
    """One line naming the architecture choices that matter, for logs."""
    if cfg.model == "centerface":
        return f"{cfg.backbone} ({cfg.backbone_act}) + ida neck (width {cfg.head_conv})"
    if cfg.neck == "deconv":
        return f"{cfg.backbone} + deconv neck (dcn={cfg.use_dcn})"
    return f"{cfg.backbone} + ida neck (width {cfg.neck_width})"


def build_model(cfg):
    return BUILDERS[cfg.model](cfg)
