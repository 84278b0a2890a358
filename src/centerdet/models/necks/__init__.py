from centerdet.models.necks.deconv import DeconvNeck

__all__ = ["DeconvNeck"]
