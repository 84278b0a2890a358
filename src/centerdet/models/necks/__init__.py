from centerdet.models.necks.deconv import DeconvNeck
from centerdet.models.necks.ida import IdaUpNeck

__all__ = ["DeconvNeck", "IdaUpNeck"]
