"""Converters for weights users bring (PyTorch state dicts) into MindSpore checkpoints."""
