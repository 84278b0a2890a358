"""Argument handling shared by export.py, preprocess.py and postprocess.py: config keys as
``--key value``, the model zoo's flag names as aliases, and a few non-config paths."""
import os

from centerdet.config import default_config_path, load_config, parse_overrides
from centerdet.errors import CenterDetError

ALIASES = {"ckpt_file": "load_checkpoint_path", "export_load_ckpt": "load_checkpoint_path",
           "export_format": "file_format", "TEST_BATCH_SIZE": "export_batch_size"}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def config_and_paths(argv, path_keys=()):
    """(config, {path key: value}) from ``argv``; without --config, ``--model centerface`` picks the
    WIDER FACE recipe and anything else default_config.yaml."""
    values, config_path = parse_overrides(list(argv))
    values = {ALIASES.get(k, k): v for k, v in values.items()}
    paths = {k: values.pop(k) for k in path_keys if k in values}
    if "file_format" in values:
        values["file_format"] = values["file_format"].upper()
    if config_path is None:
        face_recipe = os.path.join(REPO, "configs", "centerface_widerface.yaml")
        config_path = face_recipe if values.get("model") == "centerface" else default_config_path()
    missing = [k for k in path_keys if k not in paths]
    if missing:
        raise CenterDetError(f"missing --{missing[0]}")
    return load_config(config_path, values), paths
