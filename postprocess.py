"""Score the outputs of a batch-inference run: decode + NMS as eval.py, then COCO metrics (acc.log)
or WIDER FACE Easy/Medium/Hard AP (ap.log) in --save_result_dir.
Usage: python postprocess.py [--config FILE|RECIPE | --model centernet|centerface] --data_dir DIR
       --pre_result_path PREPROCESS_OUT --result_path RUNNER_OUT [--save_result_dir DIR] [--key value ...]"""
import os

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("postprocess", __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_config.yaml"))

if __name__ == "__main__":
    main()
