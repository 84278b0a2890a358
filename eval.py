"""Evaluate a checkpoint: CenterNet on a COCO-format split (metrics, or results only with --run_mode test),
CenterFace (--config centerface_...) on WIDER FACE val (Easy / Medium / Hard AP).
Usage: python eval.py [--config FILE|RECIPE] --load_checkpoint_path CKPT [--run_mode val|test] [--key value ...]"""
import os

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("eval", __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_config.yaml"))

if __name__ == "__main__":
    main()
