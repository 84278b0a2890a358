"""Train a detector. Usage: python train.py [--config FILE] [--key value ...] (see default_config.yaml)."""
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.config import config_from_argv
from centerdet.engine.trainer import train
from centerdet.errors import cli_main


@cli_main
def main(argv=None):
    cfg = config_from_argv(sys.argv[1:] if argv is None else argv)
    train(cfg)


if __name__ == "__main__":
    main()
