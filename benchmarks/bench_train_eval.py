"""Train-step throughput (img/s) and eval latency (ms/img, network + decode + soft-NMS) of CenterNet
or CenterFace.

python benchmarks/bench_train_eval.py [--model centernet|centerface] [--backbone resnet50] [--res 512]
       [--eval_res RES] [--batch 4] [--use_dcn true] [--neck deconv|ida] [--steps 5] [--eval_images 10]
       [--num_classes 80] [--torch_peer]
Random inputs (no data loading), graph mode, after one warm-up call (compile time printed apart).
"""
import argparse
import os
import resource
import sys
import time

import numpy as np

import centerdet  # noqa: F401  (oneDNN fix before mindspore)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="centernet", choices=["centernet", "centerface"])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--res", type=int, default=512)
    p.add_argument("--eval_res", type=int, default=0, help="eval input side (default: --res)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--use_dcn", default="true")
    p.add_argument("--neck", default="deconv", choices=["deconv", "ida"])
    p.add_argument("--num_classes", type=int, default=80)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--eval_images", type=int, default=10)
    p.add_argument("--torch_peer", action="store_true",
                   help="centerface only: also time the plain-PyTorch peer (benchmarks/torch_centerface.py) "
                        "and print MindSpore / PyTorch ratios")
    args = p.parse_args()
    if args.torch_peer:
        if args.model != "centerface":
            p.error("--torch_peer exists for --model centerface only")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from peers import require

        require("torch", "--torch_peer")

    import mindspore as ms
    from mindspore import Tensor, nn

    from centerdet import tasks
    from centerdet.config import load_config
    from centerdet.decode import merge_detections, sigmoid
    from centerdet.engine.step import NetWithLoss, TrainStep
    from centerdet.losses import build_loss
    from centerdet.models import build_model, describe_model

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    if args.model == "centerface":
        cfg = load_config(None, {}, model="centerface")
    else:
        cfg = load_config(None, {"backbone": args.backbone, "use_dcn": args.use_dcn, "neck": args.neck,
                                 "num_classes": str(args.num_classes)})
    rng = np.random.default_rng(0)
    b, r, o, m, c = args.batch, args.res, args.res // 4, cfg.max_objs, cfg.num_classes
    batch = [rng.standard_normal((b, 3, r, r)).astype(np.float32),
             (rng.random((b, c, o, o)) * 0.5).astype(np.float32),
             (rng.random((b, m, 2)) * 20).astype(np.float32), rng.random((b, m, 2)).astype(np.float32),
             rng.integers(0, o * o, (b, m)).astype(np.int32), (rng.random((b, m)) > 0.8).astype(np.float32)]
    if args.model == "centerface":
        batch += [np.ones((b, m), np.float32), rng.standard_normal((b, m, 10)).astype(np.float32),
                  (rng.random((b, m, 10)) > 0.3).astype(np.float32)]
    batch = [Tensor(x) for x in batch]

    net = build_model(cfg)
    opt = nn.Adam(net.trainable_params(), learning_rate=1e-4)
    step = TrainStep(NetWithLoss(net, build_loss(cfg)), opt, 1024.0, nn.DynamicLossScaleUpdateCell(1024.0, 2, 500))
    step.set_train()
    t = time.time()
    step(*batch)[0].asnumpy()
    compile_train = time.time() - t
    t = time.time()
    for _ in range(args.steps):
        step(*batch)[0].asnumpy()
    train_s = (time.time() - t) / args.steps

    net.set_train(False)
    r = args.eval_res or r
    x = Tensor(rng.standard_normal((1, 3, r, r)).astype(np.float32))
    t = time.time()
    net(x)[0].asnumpy()
    compile_eval = time.time() - t
    t_net = t_post = 0.0
    for _ in range(args.eval_images):
        t = time.time()
        maps = [o_.asnumpy()[0] for o_ in net(x)]
        t_net += time.time() - t
        t = time.time()
        maps[0] = sigmoid(maps[0])
        dets = tasks.of(cfg).decode(dict(zip(net.head_names, maps)), cfg)
        merge_detections([dets], c)
        t_post += time.time() - t
    n = args.eval_images
    print(f"| {describe_model(cfg)} | train {args.res}x{args.res}, eval {r}x{r} | batch {b} | train {b / train_s:.2f} img/s "
          f"({train_s * 1000:.0f} ms/step) | eval {1000 * (t_net + t_post) / n:.1f} ms/img "
          f"(net {1000 * t_net / n:.1f} + decode/NMS {1000 * t_post / n:.1f}) | compile train {compile_train:.1f} s, "
          f"eval {compile_eval:.1f} s | peak RSS {peak_rss_mb():.0f} MB |")
    if args.torch_peer:
        from torch_centerface import time_peer

        peer_train, peer_eval = time_peer(args.res, b, r, args.steps, n, cfg.max_objs)
        print(f"PyTorch peer: train {b / peer_train:.2f} img/s ({peer_train * 1000:.0f} ms/step), eval net "
              f"{1000 * peer_eval:.1f} ms/img | MindSpore / PyTorch: train speed {peer_train / train_s:.2f}x, "
              f"eval net speed {peer_eval * n / t_net:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
