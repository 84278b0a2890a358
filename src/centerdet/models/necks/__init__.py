from centerdet.models.necks.deconv import DeconvNeck, UpconvNeck
from centerdet.models.necks.ida import IdaUpNeck

__all__ = ["DeconvNeck", "IdaUpNeck", "UpconvNeck"]
