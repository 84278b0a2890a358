"""CLI: convert a dataset split to MindRecord (COCO boxes, or faces with landmarks for a CenterFace config).

python -m centerdet.data.convert --coco_data_dir DIR --mindrecord_dir OUT [--mindrecord_prefix P]
                                 [--config FILE] [--split train] [--key value ...]
Annotation/image paths inside DIR come from the config (train_ann_file, train_img_dir, ...).
"""
import sys

from centerdet.config import config_from_argv
from centerdet.data.coco import split_paths
from centerdet.data.mindrecord import converter_for
from centerdet.errors import CenterDetError, cli_main


@cli_main
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    split = "train"
    if "--split" in argv:
        i = argv.index("--split")
        if i + 1 >= len(argv):
            raise CenterDetError("option --split needs a value (train | val)")
        split = argv[i + 1]
        del argv[i:i + 2]
        if split not in ("train", "val", "test"):
            raise CenterDetError(f"--split must be train, val or test, got {split!r}")
    argv = ["--data_dir" if a == "--coco_data_dir" else a for a in argv]
    cfg = config_from_argv(argv)
    ann, img_dir = split_paths(cfg, split)
    converter_for(cfg.model)(ann, img_dir, cfg.mindrecord_dir, cfg.mindrecord_prefix, cfg.mindrecord_shards)


if __name__ == "__main__":
    main()
