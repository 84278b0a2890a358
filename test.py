"""Run a CenterFace checkpoint on the WIDER FACE val images and write the official prediction files
(SAVE_RESULT_DIR/<checkpoint epoch>/<event>/<image>.txt) and pictures; eval.py also scores them.

Usage: python test.py [--config FILE] --load_checkpoint_path CKPT [--data_dir DIR] [--key value ...]
The model zoo's flags are accepted too: --test_model DIR --ckpt_name NAME, --save_dir,
--ground_truth_mat (a .mat file or its folder).
"""
import os
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.config import load_config, parse_overrides
from centerdet.engine.face_evaluator import test_widerface
from centerdet.errors import cli_main

ROOT = os.path.dirname(os.path.abspath(__file__))
ALIASES = {"save_dir": "save_result_dir", "ground_truth_mat": "ground_truth_dir"}


@cli_main
def main(argv=None):
    values, path = parse_overrides(sys.argv[1:] if argv is None else argv)
    values = {ALIASES.get(k, k): v for k, v in values.items()}
    model_dir, ckpt_name = values.pop("test_model", None), values.pop("ckpt_name", None)
    if model_dir or ckpt_name:
        values["load_checkpoint_path"] = os.path.join(model_dir or ".", ckpt_name or "")
    cfg = load_config(path or os.path.join(ROOT, "configs", "centerface_widerface.yaml"), values)
    test_widerface(cfg, evaluate=False)


if __name__ == "__main__":
    main()
