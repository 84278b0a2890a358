"""Write fixed-shape network inputs for batch inference (Ascend 310 or python -m centerdet.deploy.infer).

Usage: python preprocess.py [--config FILE | --model centernet|centerface] --data_dir DIR --output_path OUT [--key value ...]
Writes OUT/images/<name>.bin (float32, 1x3xHxW, H, W = input_res_test padded to 32) and OUT/meta.json.
"""
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.deploy.cli import config_and_paths
from centerdet.deploy.preprocess import preprocess
from centerdet.errors import cli_main


@cli_main
def main(argv=None):
    cfg, paths = config_and_paths(sys.argv[1:] if argv is None else argv, ("output_path",))
    preprocess(cfg, paths["output_path"])


if __name__ == "__main__":
    main()
