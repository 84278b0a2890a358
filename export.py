"""Export a checkpoint for deployment.
Usage: python export.py [--config FILE|RECIPE | --model centernet|centerface] --load_checkpoint_path CKPT
       [--file_format MINDIR|AIR|ONNX] [--export_name NAME] [--export_batch_size 1] [--input_res_test "[H, W]"]
The model zoo's flags are accepted too: --ckpt_file / --export_load_ckpt, --export_format, --TEST_BATCH_SIZE.
The input is input_res_test padded to a multiple of 32 (what preprocess.py writes)."""
import os

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("export", __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_config.yaml"))

if __name__ == "__main__":
    main()
