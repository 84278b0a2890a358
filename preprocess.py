"""Write fixed-shape network inputs for batch inference (Ascend 310 or python -m centerdet.deploy.infer).
Usage: python preprocess.py [--config FILE|RECIPE | --model centernet|centerface] --data_dir DIR --output_path OUT [--key value ...]
Writes OUT/images/<name>.bin (float32, 1x3xHxW, H, W = input_res_test padded to 32) and OUT/meta.json."""
import os

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("preprocess", __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_config.yaml"))

if __name__ == "__main__":
    main()
