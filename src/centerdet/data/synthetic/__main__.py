"""Command line: ``python -m centerdet.data.synthetic <dataset> [options]``.

One subcommand per data set; each registers its own parser and handler, so adding a data set
does not touch the others.
"""
import argparse

from centerdet.errors import cli_main


def add_coco_parser(subparsers):
    p = subparsers.add_parser("coco", help="COCO-format shapes (6 classes) for CenterNet",
                              description="Write annotations/{train,val}.json and images/{train,val}/*.jpg.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--train", type=int, default=1000, help="number of training images (default 1000)")
    p.add_argument("--val", type=int, default=100, help="number of validation images (default 100)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels, >= 64 (default 256)")
    p.add_argument("--seed", type=int, default=0, help="non-negative seed (default 0)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="use only the first N categories (default: all 6)")
    p.add_argument("--min-box-frac", type=float, default=0.08,
                   help="smallest object box side as a fraction of the image side (default 0.08)")
    p.add_argument("--max-box-frac", type=float, default=0.5, help="largest object box side fraction (default 0.5)")
    p.add_argument("--max-objects", type=int, default=8, help="most objects per image (default 8, mean ~half)")
    p.add_argument("--clutter", type=float, nargs=2, default=(0.25, 1.0), metavar=("LOW", "HIGH"),
                   help="range of the per-image background clutter density in [0, 1] (default 0.25 1.0)")
    p.set_defaults(run=run_coco)


def run_coco(args):
    from centerdet.data.synthetic.shapes import SceneOptions, generate_coco

    opts = SceneOptions(args.min_box_frac, args.max_box_frac, args.max_objects, tuple(args.clutter))
    summary = generate_coco(args.out, args.train, args.val, size=args.size, seed=args.seed,
                            num_classes=args.num_classes, progress=True, opts=opts)
    for split, s in summary.items():
        counts = ", ".join(f"{name} {n}" for name, n in s["per_class"].items())
        print(f"{split}: {s['images']} images, {s['objects']} objects ({counts}) -> {s['json']}")
    return 0


def add_widerface_parser(subparsers):
    p = subparsers.add_parser("widerface", help="WIDER FACE-style faces with 5 landmarks for CenterFace",
                              description="Write images/{train,val}/images/<event>/*.jpg, annotations/"
                                          "{train,val}.json, annotations/{train,val}/label.txt and "
                                          "ground_truth/wider_*_val.mat.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--train", type=int, default=1000, help="number of training images (default 1000)")
    p.add_argument("--val", type=int, default=100, help="number of validation images (default 100)")
    p.add_argument("--seed", type=int, default=0, help="non-negative seed (default 0)")
    p.add_argument("--size", type=int, default=640, help="image width in pixels, >= 64; heights vary "
                                                          "from 0.6 to 1.0 x width (default 640)")
    p.add_argument("--min-face", type=float, default=8.0, help="smallest head height in pixels (default 8)")
    p.add_argument("--max-face", type=float, default=None,
                   help="largest head height in pixels (default min(300, size / 2))")
    p.add_argument("--max-faces", type=int, default=12, help="most faces per image (default 12, mean ~5)")
    p.set_defaults(run=run_widerface)


def run_widerface(args):
    from centerdet.data.synthetic.faces import MAX_FACE_FRAC, FaceSceneOptions, generate_widerface

    max_face = args.max_face if args.max_face is not None else min(300.0, MAX_FACE_FRAC * args.size)
    opts = FaceSceneOptions(min_face=args.min_face, max_face=max_face, max_faces=args.max_faces)
    summary = generate_widerface(args.out, args.train, args.val, seed=args.seed, size=args.size, opts=opts,
                                 progress=True)
    for split, s in summary.items():
        print(f"{split}: {s['images']} images, {s['faces']} faces (easy {s['easy']}, medium {s['medium']}, "
              f"hard {s['hard']}, ignored {s['ignored']}; blurred {s['blurred']}, occluded {s['occluded']})")
        print(f"  images {s['images_dir']}\n  json {s['json']}\n  label.txt {s['label_txt']}")
        if "ground_truth" in s:
            print(f"  ground truth {s['ground_truth']}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m centerdet.data.synthetic",
                                     description="Generate a synthetic detection data set.")
    subparsers = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    add_coco_parser(subparsers)
    add_widerface_parser(subparsers)
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
