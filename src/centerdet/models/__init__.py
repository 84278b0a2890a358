"""Model factories: config → detector cell."""
from centerdet.models.backbones import resnet
from centerdet.models.detector import CenterDetector
from centerdet.models.heads import conv_head
from centerdet.models.necks import DeconvNeck


def build_centernet(cfg):
    backbone = resnet(cfg.backbone)
    neck = DeconvNeck(backbone.out_channels, cfg.deconv_channels, use_dcn=cfg.use_dcn)
    c = neck.out_channels
    heads = {
        "hm": conv_head(c, cfg.num_classes, cfg.head_conv, bias_value=cfg.hm_bias),
        "wh": conv_head(c, 2, cfg.head_conv, small_init=True),
    }
    if cfg.reg_offset:
        heads["reg"] = conv_head(c, 2, cfg.head_conv, small_init=True)
    return CenterDetector(backbone, neck, heads)


BUILDERS = {"centernet": build_centernet}


def build_model(cfg):
    return BUILDERS[cfg.model](cfg)
