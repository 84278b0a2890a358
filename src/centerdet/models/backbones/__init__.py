from centerdet.models.backbones.resnet import resnet

__all__ = ["resnet"]
