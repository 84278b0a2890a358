"""Export a checkpoint for deployment.

Usage: python export.py [--config FILE | --model centernet|centerface] --load_checkpoint_path CKPT
       [--file_format MINDIR|AIR|ONNX] [--export_name NAME] [--export_batch_size 1] [--input_res_test "[H, W]"]
The model zoo's flags are accepted too: --ckpt_file / --export_load_ckpt, --export_format, --TEST_BATCH_SIZE.
The input is input_res_test padded to a multiple of 32 (what preprocess.py writes).
"""
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.deploy.cli import config_and_paths
from centerdet.deploy.export import export_network
from centerdet.errors import cli_main


@cli_main
def main(argv=None):
    cfg, _ = config_and_paths(sys.argv[1:] if argv is None else argv)
    export_network(cfg)


if __name__ == "__main__":
    main()
