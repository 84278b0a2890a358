"""The model zoo's MobileNetV2 converter, by its name and flags:

python convert_weight_mobilenetv2.py --pt_fn mobilenet_v2-b0353104.pth --out_ckpt_fn mobilenet_v2.ckpt [--ckpt_fn IGNORED]

Same as `python -m centerdet.convert torchvision --arch mobilenet_v2`. The zoo needed a
`mobilenet_v2_key.ckpt` (--ckpt_fn) for its tensor names; ours come from the network, so that flag
is accepted and ignored.
"""
import argparse
import sys

import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.convert.__main__ import main as convert_main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--pt_fn", required=True, help="torchvision mobilenet_v2 .pth")
    parser.add_argument("--out_ckpt_fn", required=True, help="MindSpore checkpoint to write")
    parser.add_argument("--ckpt_fn", default="", help="ignored (the zoo's key template)")
    args = parser.parse_args(argv)
    return convert_main(["torchvision", "--arch", "mobilenet_v2", "--src", args.pt_fn, "--out", args.out_ckpt_fn])


if __name__ == "__main__":
    sys.exit(main())
