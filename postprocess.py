"""Score the outputs of a batch-inference run: decode + NMS as eval.py, then COCO metrics (acc.log)
or WIDER FACE Easy/Medium/Hard AP (ap.log) in --save_result_dir.

Usage: python postprocess.py [--config FILE | --model centernet|centerface] --data_dir DIR
       --pre_result_path PREPROCESS_OUT --result_path RUNNER_OUT [--save_result_dir DIR] [--key value ...]
"""
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.deploy.cli import config_and_paths
from centerdet.deploy.postprocess import postprocess
from centerdet.errors import cli_main


@cli_main
def main(argv=None):
    cfg, paths = config_and_paths(sys.argv[1:] if argv is None else argv, ("pre_result_path", "result_path"))
    postprocess(cfg, paths["pre_result_path"], paths["result_path"], cfg.save_result_dir)


if __name__ == "__main__":
    main()
