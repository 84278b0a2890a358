"""Deployment path on this machine: export a (randomly initialised) network to MINDIR, check it
against the checkpoint network, and time the Python batch runner (python -m centerdet.deploy.infer)
per image (median; the runner's first, compiling call is left out) next to eval.py's network call
on the same fixed-shape inputs.

.venv/bin/python benchmarks/bench_deploy.py --model centerface --res 832 --images 20
.venv/bin/python benchmarks/bench_deploy.py --model centernet --backbone resnet50 --res 512 --images 10
"""
import argparse
import os
import tempfile
import time

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("centernet", "centerface"), default="centerface")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--use_dcn", default="true")
    parser.add_argument("--res", type=int, default=512)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()

    import mindspore as ms
    from mindspore import nn

    from centerdet.config import load_config
    from centerdet.deploy.export import export_network
    from centerdet.deploy.files import head_layout, input_path, save_meta, write_array
    from centerdet.deploy.infer import run_mindir
    from centerdet.engine.evaluator import load_detector
    from centerdet.models import build_model

    work = tempfile.mkdtemp(prefix="bench_deploy.")
    overrides = {"model": args.model, "input_res_test": f"[{args.res}, {args.res}]"}
    if args.model == "centernet":
        overrides.update({"backbone": args.backbone, "use_dcn": args.use_dcn})
    ms.set_seed(0)
    ckpt = os.path.join(work, "net.ckpt")
    ms.save_checkpoint(build_model(load_config(None, overrides)), ckpt)
    cfg = load_config(None, {**overrides, "load_checkpoint_path": ckpt, "export_name": os.path.join(work, "net")})
    t = time.time()
    mindir = export_network(cfg, log=lambda line: None)
    export_s = time.time() - t

    rng = np.random.default_rng(0)
    shape = [1, 3, args.res, args.res]
    names = [f"{i:06d}" for i in range(args.images)]
    for name in names:
        write_array(input_path(os.path.join(work, "pre"), name), rng.normal(size=shape).astype(np.float32))
    heads, head_shapes = head_layout(cfg, args.res, args.res)
    save_meta(os.path.join(work, "pre"), {"model": cfg.model, "input_shape": shape, "heads": heads,
                                          "head_shapes": head_shapes, "images": [{"name": n} for n in names]})
    runner_ms = run_mindir(mindir, os.path.join(work, "pre"), os.path.join(work, "out"), log=lambda line: None)

    net = load_detector(cfg, log=lambda line: None)
    graph = nn.GraphCell(ms.load(mindir))
    x = ms.Tensor(rng.normal(size=shape).astype(np.float32))
    diff = max(np.abs(a.asnumpy() - b.asnumpy()).max() for a, b in zip(net(x), graph(x)))
    net(x)
    times = []
    for _ in range(args.images):
        t = time.time()
        [o.asnumpy() for o in net(x)]
        times.append(time.time() - t)
    eval_ms = 1000 * float(np.median(times))
    name = args.model if args.model == "centerface" else f"centernet {args.backbone} dcn={args.use_dcn}"
    print("| model | input | export | MINDIR vs checkpoint max abs diff | runner ms/img | checkpoint net ms/img |")
    print("|---|---|---|---|---|---|")
    print(f"| {name} | {args.res}² | {export_s:.1f} s | {diff:.1e} | {runner_ms:.0f} | {eval_ms:.0f} |")


if __name__ == "__main__":
    main()
