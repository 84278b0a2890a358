"""Evaluate a checkpoint: CenterNet on a COCO-format split (metrics, or results only with --run_mode
test); CenterFace (--config configs/centerface_*.yaml) on WIDER FACE val (Easy/Medium/Hard AP).
Usage: python eval.py [--config FILE] --load_checkpoint_path CKPT [--run_mode val|test] [--key value ...]"""
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.config import config_from_argv
from centerdet.engine.evaluator import evaluate_coco
from centerdet.engine.face_evaluator import test_widerface
from centerdet.errors import cli_main


@cli_main
def main(argv=None):
    cfg = config_from_argv(sys.argv[1:] if argv is None else argv)
    if cfg.model == "centerface":
        test_widerface(cfg, evaluate=cfg.run_mode == "val")
    else:
        evaluate_coco(cfg)


if __name__ == "__main__":
    main()
