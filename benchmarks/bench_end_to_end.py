"""eval.py end to end on a synthetic val set, for both models: images per second including JPEG
reading, the network, decode + soft-NMS, writing results and drawing the detection pictures.

python benchmarks/bench_end_to_end.py [--images 100] [--size 512] [--quick]
The networks are randomly initialised (the timing does not depend on the weights); the process
wall time (start-up and graph compile included) is printed next to the per-image rate.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import centerdet  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_eval(args, cwd):
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), *args], capture_output=True, text=True,
                          cwd=cwd)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    per_image = [float(m) for m in re.findall(r"(?:eval|test): \d+/\d+ images, ([\d.]+) ms/img", proc.stdout)]
    return per_image[-1], wall


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--size", type=int, default=512, help="synthetic image width")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.images, args.size = 4, 128

    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.data.synthetic import generate_coco
    from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface
    from centerdet.models import build_model

    work = tempfile.mkdtemp(prefix="bench_e2e.")
    generate_coco(os.path.join(work, "coco"), 1, args.images, size=args.size, seed=0)
    opts = FaceSceneOptions(min_face=8, max_face=min(300, args.size // 3), max_faces=20)
    generate_widerface(os.path.join(work, "faces"), 1, args.images, seed=0, size=args.size, opts=opts)
    print("| model | eval input | images | ms/img (read, net, decode, NMS, write, draw) | img/s | process wall time |")
    print("|---|---|---|---|---|---|")
    for model, config, data, extra in (
            ("CenterNet R50 DCN (default_config.yaml)", os.path.join(ROOT, "default_config.yaml"), "coco",
             ["--num_classes", "6", "--val_ann_file", "annotations/val.json", "--val_img_dir", "images/val"]),
            ("CenterFace (centerface_mbv2_8xb8-140e_widerface)", "centerface_mbv2_8xb8-140e_widerface", "faces", [])):
        cfg = load_config(config, {k.lstrip("-"): v for k, v in zip(extra[::2], extra[1::2])})
        ms.set_seed(0)
        ckpt = os.path.join(work, f"{data}.ckpt")
        ms.save_checkpoint(build_model(cfg), ckpt)
        args_eval = ["--config", config, "--data_dir", os.path.join(work, data), "--load_checkpoint_path", ckpt,
                     "--save_result_dir", os.path.join(work, f"out_{data}"), "--visual_image", "true", *extra]
        ms_per_img, wall = run_eval(args_eval, work)
        res = "original size padded (keep_res)" if cfg.keep_res else f"{cfg.input_res_test[0]}² letterboxed"
        print(f"| {model} | {res} | {args.images} | {ms_per_img:.0f} | {1000 / ms_per_img:.1f} | {wall:.0f} s |")


if __name__ == "__main__":
    main()
