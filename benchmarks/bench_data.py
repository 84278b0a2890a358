"""Training data pipeline throughput (MindRecord read + JPEG decode + augmentation + target encoding,
batched) with 1 and 2 workers, next to the training step's own img/s for the same recipe.

python benchmarks/bench_data.py [--model centernet|centerface] [--res 512] [--batch 8] [--images 200]
       [--image_size 640] [--batches 20] [--train_steps 3] [--quick]
The pipeline should never be the bottleneck: its img/s with 2 workers over the train step's img/s
is printed as the ratio (goal >= 1.5). Both are measured alone, one after the other.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)


def pipeline_img_per_s(cfg, files, workers, batches):
    from centerdet.data.pipeline import create_train_dataset

    cfg.num_parallel_workers = workers
    data = create_train_dataset(files, cfg)
    it = data.create_tuple_iterator(num_epochs=1)
    next(it)  # worker start-up excluded
    t, n = time.perf_counter(), 0
    for i, batch in enumerate(it):
        n += batch[0].shape[0]
        if i + 1 >= batches:
            break
    return n / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("centernet", "centerface"), default="centernet")
    p.add_argument("--res", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--image_size", type=int, default=640)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--train_steps", type=int, default=3)
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.res, args.batch, args.images, args.image_size, args.batches, args.train_steps = 64, 2, 12, 96, 3, 1

    from centerdet.config import load_config
    from centerdet.data.mindrecord import convert, find_mindrecord

    work = tempfile.mkdtemp(prefix="bench_data.")
    if args.model == "centerface":
        from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface

        opts = FaceSceneOptions(min_face=8, max_face=min(300, args.image_size // 3), max_faces=20)
        generate_widerface(os.path.join(work, "d"), args.images, 1, seed=0, size=args.image_size, opts=opts)
        cfg = load_config(None, {"model": "centerface"})
        ann, img = os.path.join(work, "d", "annotations", "train.json"), os.path.join(work, "d", "images", "train", "images")
        convert(ann, img, os.path.join(work, "mr"), "b.mind", log=lambda line: None, num_keypoints=5, keep_crowd=False)
    else:
        from centerdet.data.synthetic import generate_coco

        generate_coco(os.path.join(work, "d"), args.images, 1, size=args.image_size, seed=0)
        cfg = load_config(None, {"backbone": args.backbone})  # 80 heatmap channels, as COCO
        ann, img = os.path.join(work, "d", "annotations", "train.json"), os.path.join(work, "d", "images", "train")
        convert(ann, img, os.path.join(work, "mr"), "b.mind", log=lambda line: None)
    cfg.input_res_train, cfg.batch_size = [args.res, args.res], args.batch
    files = find_mindrecord(os.path.join(work, "mr"), "b.mind")
    rates = {w: pipeline_img_per_s(cfg, files, w, args.batches) for w in (1, 2)}

    # The train step on random inputs of the same shape, in its own process (bench_models' child).
    here = os.path.dirname(os.path.abspath(__file__))
    net = "centerface" if args.model == "centerface" else ("r50_dcn" if args.backbone == "resnet50" else "r18_dcn")
    out = subprocess.run([sys.executable, os.path.join(here, "bench_models.py"), "--child", "ms", "--net", net,
                          "--what", "train", "--res", str(args.res), "--batch", str(args.batch), "--iters",
                          str(args.train_steps)], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    import json
    step_ms = json.loads(out.stdout.strip().splitlines()[-1])["ms"]
    train_rate = args.batch * 1000 / step_ms
    print(f"| {args.model} ({net}) | {args.image_size}px JPEGs -> {args.res}² batch {args.batch} | "
          f"pipeline 1 worker {rates[1]:.1f} img/s | 2 workers {rates[2]:.1f} img/s | train step {train_rate:.2f} img/s | "
          f"pipeline / train {rates[2] / train_rate:.1f}x |")


if __name__ == "__main__":
    main()
