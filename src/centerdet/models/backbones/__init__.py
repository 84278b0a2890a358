from centerdet.models.backbones.mobilenetv2 import mobilenet_v2
from centerdet.models.backbones.resnet import resnet

__all__ = ["mobilenet_v2", "resnet"]
