"""Train a detector (MindRecord conversion on first use; --resume true continues from the newest checkpoint).
Usage: python train.py [--config FILE|RECIPE] [--key value ...]
Without --config, default_config.yaml (the CenterNet COCO recipe). Every key: python -m centerdet config"""
import os

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("train", __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_config.yaml"))

if __name__ == "__main__":
    main()
