"""The network of a config: its task's backbone and neck, then one head per HeadSpec."""
from centerdet import tasks


def build_model(cfg):
    return tasks.of(cfg).build_model(cfg)


def describe_model(cfg) -> str:
    """One line naming the architecture choices that matter, for logs."""
    return tasks.of(cfg).describe(cfg)
