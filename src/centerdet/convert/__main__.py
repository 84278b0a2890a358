"""python -m centerdet.convert torchvision --arch ARCH --src FILE.pth --out FILE.ckpt [--prefix backbone.]
python -m centerdet.convert centernet --src ctdet_FILE.pth --out FILE.ckpt
python -m centerdet.convert centerface --src centerface.onnx --out FILE.ckpt
python -m centerdet.convert to-torch --layout ctdet|torchvision --src FILE.ckpt --out FILE.pth

Converts PyTorch weights into MindSpore checkpoints: torchvision ImageNet backbones (loaded by
``train.py --load_checkpoint_path`` for CenterNet and ``--pretrained_backbone`` for CenterFace) and
the original CenterNet ResNet ctdet models (run by ``eval.py --load_checkpoint_path``), the
CenterFace authors' released ONNX model (run with configs/centerface_release.yaml); and back,
our checkpoints into PyTorch files. Prints a key report; errors are one line naming the file and
the tensor.
"""
import argparse
import sys

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
from centerdet.errors import cli_main


def _torchvision(args):
    from centerdet.convert.torchvision import convert_torchvision

    convert_torchvision(args.src, args.arch, args.out, args.prefix)


def _ctdet(args):
    from centerdet.convert.centernet import convert_ctdet

    convert_ctdet(args.src, args.out)


def _release(args):
    from centerdet.convert.onnx_centerface import convert_centerface_onnx

    convert_centerface_onnx(args.src, args.out)


def _to_torch(args):
    from centerdet.convert.to_torch import export_torch

    export_torch(args.src, args.out, args.layout)


def _parser():
    from centerdet.convert.torchvision import ARCHS

    parser = argparse.ArgumentParser(prog="centerdet convert", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("torchvision", help="torchvision ResNet / MobileNetV2 ImageNet state_dict -> backbone ckpt")
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--src", required=True, help="the .pth file (torch.save of the state_dict)")
    p.add_argument("--out", required=True, help="the MindSpore .ckpt to write")
    p.add_argument("--prefix", default="backbone.", help="name prefix of the backbone in our detectors")
    p.set_defaults(run=_torchvision)
    p = sub.add_parser("centernet", help="original CenterNet ResNet ctdet checkpoint -> full CenterNet ckpt")
    p.add_argument("--src", required=True, help="the ctdet .pth (e.g. ctdet_coco_resdcn18.pth)")
    p.add_argument("--out", required=True, help="the MindSpore .ckpt to write")
    p.set_defaults(run=_ctdet)
    p = sub.add_parser("centerface", help="the CenterFace authors' release (centerface.onnx) -> full CenterFace ckpt")
    p.add_argument("--src", required=True, help="centerface.onnx or centerface_bnmerged.onnx (needs: pip install onnx)")
    p.add_argument("--out", required=True, help="the MindSpore .ckpt to write")
    p.set_defaults(run=_release)
    p = sub.add_parser("to-torch", help="our MindSpore checkpoint -> PyTorch .pth (ctdet or torchvision names)")
    p.add_argument("--layout", required=True, choices=("ctdet", "torchvision"))
    p.add_argument("--src", required=True, help="the MindSpore .ckpt")
    p.add_argument("--out", required=True, help="the .pth to write")
    p.set_defaults(run=_to_torch)
    return parser


@cli_main
def main(argv=None):
    args = _parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
