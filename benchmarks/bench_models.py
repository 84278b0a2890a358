"""Forward latency, train-step time, compile time and peak memory of our networks, each next to the
same network in plain PyTorch (tests/torch_nets.py), on this CPU.

python benchmarks/bench_models.py [--nets centerface,r18,r18_dcn,r50,r50_dcn] [--sizes 512,800]
       [--train_res 256] [--train_batch 4] [--rounds 2] [--iters 3] [--threads 2] [--quick]
       [--ms_kernels onednn|mindspore] [--torch_isa AVX2]
Every measurement runs in a fresh child process (so peak RSS is that framework's alone), MindSpore
and PyTorch alternating round by round; the table keeps each side's best round. "Private" is the
child's peak anonymous memory (RssAnon, polled every 5 ms from this process): its heap and other
private pages, without the shared-library pages that peak RSS also counts (those are shared between
processes and dropped under memory pressure; they are most of MindSpore's). Inputs are random;
MindSpore runs in graph mode (compile time = first call, shown apart), PyTorch eagerly, and by
default on centerdet's CPU kernels (cpu_kernels onednn, as train.py and eval.py run); --ms_kernels
mindspore measures MindSpore's own kernels instead.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETS = {"centerface": "CenterFace (MobileNetV2, D=64)", "r18": "CenterNet R18", "r18_dcn": "CenterNet R18 DCN",
        "r50": "CenterNet R50", "r50_dcn": "CenterNet R50 DCN"}


def _ms_child(args):
    import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn

    from centerdet import cpu_ops
    from centerdet.config import load_config
    from centerdet.engine.step import NetWithLoss, TrainStep
    from centerdet.losses import build_loss
    from centerdet.models import build_model
    from centerdet.runtime import compile_cell

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    cpu_ops.set_enabled(None if args.ms_kernels == "onednn" else False)
    if args.net == "centerface":
        cfg = load_config(None, {"model": "centerface"})
    else:
        cfg = load_config(None, {"backbone": "resnet18" if args.net.startswith("r18") else "resnet50",
                                 "use_dcn": str(args.net.endswith("_dcn")).lower()})
    net = build_model(cfg)
    rng = np.random.default_rng(0)
    if args.what == "forward":
        from centerdet.models.fuse import fold_batchnorm

        net.set_train(False)
        fold_batchnorm(net)  # as eval.py / export.py run it
        x = Tensor(rng.standard_normal((1, 3, args.res, args.res)).astype(np.float32))

        def run():
            [o.asnumpy() for o in net(x)]
        run.compile = lambda: compile_cell(net, x)  # as Predictor does for each new input shape
    else:
        b, o, m, c = args.batch, args.res // 4, cfg.max_objs, cfg.num_classes
        batch = [rng.standard_normal((b, 3, args.res, args.res)).astype(np.float32),
                 (rng.random((b, c, o, o)) * 0.5).astype(np.float32), (rng.random((b, m, 2)) * 20).astype(np.float32),
                 rng.random((b, m, 2)).astype(np.float32), rng.integers(0, o * o, (b, m)).astype(np.int32),
                 (rng.random((b, m)) > 0.8).astype(np.float32)]
        if args.net == "centerface":
            batch += [np.ones((b, m), np.float32), rng.standard_normal((b, m, 10)).astype(np.float32),
                      (rng.random((b, m, 10)) > 0.3).astype(np.float32)]
        batch = [Tensor(v) for v in batch]
        step = TrainStep(NetWithLoss(net, build_loss(cfg)), nn.Adam(net.trainable_params(), 1e-4), 1024.0,
                         nn.DynamicLossScaleUpdateCell(1024.0, 2, 500))
        step.set_train()

        def run():
            step(*batch)[0].asnumpy()
        run.compile = lambda: compile_cell(step, *batch)  # as the trainer does before its first step
    return run


def _torch_child(args):
    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    import torch_nets

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.net == "centerface":
        net, c = torch_nets.CenterFace(), 1
    else:
        net, c = torch_nets.CenterNetResDCN("resnet18" if args.net.startswith("r18") else "resnet50", 80,
                                            use_dcn=args.net.endswith("_dcn")), 80
    rng = np.random.default_rng(0)
    if args.what == "forward":
        net.eval()
        x = torch.from_numpy(rng.standard_normal((1, 3, args.res, args.res)).astype(np.float32))

        def run():
            with torch.no_grad():
                [o.numpy() for o in net(x)]
        return run
    b, o, m = args.batch, args.res // 4, 128 if c == 80 else 64
    x = torch.from_numpy(rng.standard_normal((b, 3, args.res, args.res)).astype(np.float32))
    hm = torch.from_numpy((rng.random((b, c, o, o)) * 0.5).astype(np.float32))
    ind = torch.from_numpy(rng.integers(0, o * o, (b, m)))
    mask = torch.from_numpy((rng.random((b, m)) > 0.8).astype(np.float32))
    targets = [torch.from_numpy(rng.random((b, m, n)).astype(np.float32)) for n in ((2, 2, 10) if c == 1 else (2, 2))]
    opt = torch.optim.Adam(net.parameters(), 1e-4)

    def loss_fn(outs):
        # CenterNet's focal loss and masked L1 on gathered regression slots, as our losses compute.
        pred = outs[0].sigmoid().clamp(1e-4, 1 - 1e-4)
        pos = hm.eq(1).float()
        pos_loss = (torch.log(pred) * (1 - pred) ** 2 * pos).sum()
        neg_loss = (torch.log(1 - pred) * pred ** 2 * (1 - hm) ** 4 * (1 - pos)).sum()
        loss = -(pos_loss + neg_loss) / pos.sum().clamp(min=1)
        for out, target in zip(outs[1:], targets):
            flat = out.flatten(2).transpose(1, 2)
            picked = torch.gather(flat, 1, ind[..., None].expand(-1, -1, flat.shape[2]))
            loss = loss + ((picked - target).abs() * mask[..., None]).sum() / (mask.sum() * flat.shape[2] + 1e-4)
        return loss

    def run():
        opt.zero_grad()
        loss_fn(net(x)).backward()
        opt.step()
    net.train()
    return run


def child(args):
    run = (_ms_child if args.side == "ms" else _torch_child)(args)
    t = time.perf_counter()
    if hasattr(run, "compile"):
        run.compile()
    run()
    first = time.perf_counter() - t
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"ms": 1000 * times[len(times) // 2], "first_s": first,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def measure(side, net, what, res, batch, iters, threads, torch_isa="default", ms_kernels="onednn"):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if side == "torch" and torch_isa != "default":
        env["ONEDNN_MAX_CPU_ISA"] = torch_isa  # PyTorch's bundled oneDNN reads the same cap
    cmd = [sys.executable, os.path.abspath(__file__), "--child", side, "--net", net, "--what", what, "--res", str(res),
           "--batch", str(batch), "--iters", str(iters), "--threads", str(threads), "--ms_kernels", ms_kernels]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        anon_kb = _watch_anon(proc)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{side} {net} {what} {res} failed:\n{err.read()[-2000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["anon_mb"] = anon_kb / 1024.0
    return result


def _watch_anon(proc, interval=0.005):
    """Peak RssAnon of a running child, polled from outside: the private memory a process cannot
    share or drop, as opposed to its shared-library pages (which are most of MindSpore's import)."""
    peak = 0
    status = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]))
                        break
        except OSError:  # the child exited between poll() and open()
            break
        time.sleep(interval)
    proc.wait()
    return peak


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default="centerface,r18,r18_dcn,r50,r50_dcn")
    p.add_argument("--sizes", default="512,800", help="forward input sides")
    p.add_argument("--train_res", type=int, default=256)
    p.add_argument("--train_batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--torch_isa", default="default",
                   help="ONEDNN_MAX_CPU_ISA for the PyTorch side (e.g. AVX2, the cap MindSpore runs under here)")
    p.add_argument("--ms_kernels", choices=("onednn", "mindspore"), default="onednn",
                   help="MindSpore side on centerdet's CPU kernels (default) or on MindSpore's own")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    p.add_argument("--child", choices=("ms", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    p.add_argument("--what", help=argparse.SUPPRESS)
    p.add_argument("--res", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.side = args.child
        return child(args)
    sys.path.insert(0, HERE)
    from peers import require

    require("torch")
    if args.quick:
        args.sizes, args.train_res, args.train_batch, args.rounds, args.iters = "64", 64, 2, 1, 1
    print(f"threads: MindSpore OMP_NUM_THREADS={args.threads}, PyTorch torch.set_num_threads({args.threads}); "
          f"oneDNN ISA: MindSpore {os.environ.get('ONEDNN_MAX_CPU_ISA', 'AVX2')} (set by centerdet), PyTorch "
          f"{args.torch_isa}; MindSpore kernels: {args.ms_kernels}; {args.rounds} alternating rounds, "
          f"median of {args.iters} runs each")
    jobs = [(what, res, batch) for what, res, batch in
            [("forward", int(s), 1) for s in args.sizes.split(",")] + [("train", args.train_res, args.train_batch)]]
    print("| network | measure | MindSpore ms | PyTorch ms | ratio (MS/PT) | MS compile s | MS peak RSS MB | "
          "PT peak RSS MB | RSS ratio | MS / PT private MB | private ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for net in args.nets.split(","):
        for what, res, batch in jobs:
            best = {"ms": None, "torch": None}
            for _ in range(args.rounds):
                for side in ("ms", "torch"):
                    r = measure(side, net, what, res, batch, args.iters, args.threads, args.torch_isa,
                                args.ms_kernels)
                    if best[side] is None or r["ms"] < best[side]["ms"]:
                        best[side] = r
            m, t = best["ms"], best["torch"]
            label = f"forward b1 {res}²" if what == "forward" else f"train step b{batch} {res}²"
            print(f"| {NETS[net]} | {label} | {m['ms']:.1f} | {t['ms']:.1f} | {m['ms'] / t['ms']:.2f} | "
                  f"{m['first_s'] - m['ms'] / 1000:.1f} | {m['rss_mb']:.0f} | {t['rss_mb']:.0f} | "
                  f"{m['rss_mb'] / t['rss_mb']:.2f} | {m['anon_mb']:.0f} / {t['anon_mb']:.0f} | "
                  f"{m['anon_mb'] / t['anon_mb']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
