"""python -m centerdet.convert torchvision --arch ARCH --src FILE.pth --out FILE.ckpt [--prefix backbone.]

Converts torchvision ImageNet weights into a MindSpore backbone checkpoint that
``train.py --load_checkpoint_path`` (CenterNet) and ``--pretrained_backbone`` (CenterFace) load.
Prints a key report; errors are one line naming the file and the tensor.
"""
import argparse
import sys

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
from centerdet.errors import CenterDetError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m centerdet.convert", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("torchvision", help="torchvision ResNet / MobileNetV2 ImageNet state_dict -> backbone ckpt")
    from centerdet.convert.torchvision import ARCHS

    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--src", required=True, help="the .pth file (torch.save of the state_dict)")
    p.add_argument("--out", required=True, help="the MindSpore .ckpt to write")
    p.add_argument("--prefix", default="backbone.", help="name prefix of the backbone in our detectors")
    args = parser.parse_args(argv)
    try:
        from centerdet.convert.torchvision import convert_torchvision

        convert_torchvision(args.src, args.arch, args.out, args.prefix)
    except CenterDetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
