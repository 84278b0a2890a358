"""Forward latency, train-step time, compile time and private memory of our networks, each next to
its strongest peers on this CPU: the same network in PyTorch (tests/torch_nets.py) run the ways its
expert users run it, and our own network exported to ONNX (centerdet's writer, DeformConv form) in
onnxruntime with every graph optimisation.

python benchmarks/bench_models.py [--nets centerface,r18,r18_dcn,r50,r50_dcn] [--sizes 512,800,640x480]
       [--peers eager,channels_last,script,compile,onnxruntime] [--train_res 256] [--train_batch 4]
       [--rounds 2] [--iters 3] [--threads 2] [--quick] [--ms_kernels onednn|mindspore] [--torch_isa AVX2]

PyTorch modes: eager NCHW; channels_last (eager, NHWC memory); frozen TorchScript (channels_last,
traced, torch.jit.freeze); torch.compile (inductor, channels_last; its compile is the first call).
"strongest" is the fastest of the must-reach peers (every one but torch.compile, which is shown
beside it); train rows time the eager modes (same loss and Adam as ours). Every measurement runs in
a fresh child process, the runners alternating round by round; the times are each runner's best
round, the ratios the median over rounds of ours against the peer's time in the same round (this
machine's speed drifts by tens of per cent between minutes).
"Private" is the child's peak anonymous memory (RssAnon, polled every 5 ms from this process): its
heap and other private pages, without the shared-library pages that peak RSS also counts (most of
MindSpore's); "above import" subtracts each child's RssAnon right after importing its runtime
(``import mindspore`` alone holds ~146 MB), and the private ratio is taken on those. Inputs are
random; MindSpore runs in graph mode (compile time = first call, shown apart) on centerdet's CPU
kernels (cpu_kernels onednn, as train.py and eval.py run); --ms_kernels mindspore measures
MindSpore's own kernels instead.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETS = {"centerface": "CenterFace (MobileNetV2, D=64)", "r18": "CenterNet R18", "r18_dcn": "CenterNet R18 DCN",
        "r50": "CenterNet R50", "r50_dcn": "CenterNet R50 DCN"}


# name → (column label, framework); PyTorch's modes as its expert users run them on a CPU.
PEERS = {"eager": ("PyTorch eager NCHW", "torch"), "channels_last": ("PyTorch channels_last", "torch"),
         "script": ("PyTorch frozen TorchScript", "torch"), "compile": ("torch.compile", "torch"),
         "onnxruntime": ("onnxruntime", "onnxruntime")}
MUST_REACH = ("eager", "channels_last", "script", "onnxruntime")
TRAIN_PEERS = ("eager", "channels_last")


def _ms_config(args):
    import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
    import mindspore as ms

    from centerdet import cpu_ops
    from centerdet.config import load_config

    ms.set_device("CPU")
    cpu_ops.set_enabled(None if args.ms_kernels == "onednn" else False)
    if args.net == "centerface":
        return load_config(None, {"model": "centerface"})
    return load_config(None, {"backbone": "resnet18" if args.net.startswith("r18") else "resnet50",
                              "use_dcn": str(args.net.endswith("_dcn")).lower()})


def _ms_network(args, cfg=None, inference=True):
    import mindspore as ms

    from centerdet.models import build_model
    from centerdet.models.fuse import fold_batchnorm

    ms.set_seed(0)
    net = build_model(cfg or _ms_config(args))
    if inference:
        net.set_train(False)
        fold_batchnorm(net)  # as eval.py / export.py run it
    return net


def _ms_child(args):
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn

    from centerdet.engine.step import NetWithLoss, TrainStep
    from centerdet.losses import build_loss
    from centerdet.runtime import compile_cell

    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = _ms_config(args)
    net = _ms_network(args, cfg, inference=args.what == "forward")
    rng = np.random.default_rng(0)
    if args.what == "forward":
        x = Tensor(rng.standard_normal((1, 3, args.res, args.width or args.res)).astype(np.float32))

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
    """PyTorch in one of the modes its expert users run it: ``eager`` (NCHW), ``channels_last``
    (eager, NHWC memory), ``script`` (channels_last, traced and frozen TorchScript), ``compile``
    (channels_last, torch.compile's inductor; its compile is the first call)."""
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
    fmt = torch.contiguous_format if args.mode == "eager" else torch.channels_last
    net = net.to(memory_format=fmt)
    rng = np.random.default_rng(0)
    if args.what == "forward":
        net.eval()
        x = torch.from_numpy(rng.standard_normal((1, 3, args.res, args.width or args.res)).astype(np.float32))
        x = x.contiguous(memory_format=fmt)
        with torch.no_grad():
            if args.mode == "script":
                net = torch.jit.freeze(torch.jit.trace(net, x))
            elif args.mode == "compile":
                net = torch.compile(net)

        def run():
            with torch.no_grad():
                [o.numpy() for o in net(x)]
        return run
    if args.mode not in ("eager", "channels_last"):
        raise SystemExit(f"train steps run eagerly; mode {args.mode} is for forward rows")
    b, o, m = args.batch, args.res // 4, 128 if c == 80 else 64
    x = torch.from_numpy(rng.standard_normal((b, 3, args.res, args.res)).astype(np.float32))
    x = x.contiguous(memory_format=fmt)
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


def _export_child(args):
    """Our network as the ms child builds it (same seed, BN folded), written by our ONNX writer."""
    import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
    import mindspore as ms

    from centerdet.deploy.onnx_export import build_onnx

    ms.set_context(mode=ms.GRAPH_MODE)
    net = _ms_network(args)
    with open(args.onnx, "wb") as f:
        f.write(build_onnx(net).SerializeToString())


def _ort_child(args):
    """onnxruntime as its users run it: every graph optimisation, intra-op threads = --threads."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    ort.set_default_logger_severity(3)
    x = np.random.default_rng(0).standard_normal((1, 3, args.res, args.width or args.res)).astype(np.float32)
    state = {}

    def run():
        state["session"].run(None, {"input": x})
    run.compile = lambda: state.setdefault(
        "session", ort.InferenceSession(args.onnx, opts, providers=["CPUExecutionProvider"]))
    return run


def _own_anon_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 1024.0


def child(args):
    # the runtime's own baseline: private memory once it is imported, before any network exists
    if args.child == "ms":
        import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
        import mindspore  # noqa: F401
    else:
        __import__({"torch": "torch", "ort": "onnxruntime"}[args.child])
    base_mb = _own_anon_mb()
    run = {"ms": _ms_child, "torch": _torch_child, "ort": _ort_child}[args.child](args)
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
    print(json.dumps({"ms": 1000 * times[len(times) // 2], "first_s": first, "base_mb": base_mb,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def _child_cmd(args, kind, net, **extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--net", net, "--threads",
           str(args.threads), "--iters", str(args.iters), "--ms_kernels", args.ms_kernels]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def export_onnx_file(args, net, folder):
    """Our network of the ms child, exported once per network (height and width stay free)."""
    path = os.path.join(folder, f"{net}.onnx")
    if not os.path.exists(path):
        done = subprocess.run(_child_cmd(args, "export", net, onnx=path), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"exporting {net} to ONNX failed:\n{done.stderr[-2000:]}")
    return path


def measure(args, side, net, what, size, batch, onnx_file=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    kind = {"ms": "ms", "onnxruntime": "ort"}.get(side, "torch")
    if kind == "torch" and args.torch_isa != "default":
        env["ONEDNN_MAX_CPU_ISA"] = args.torch_isa  # PyTorch's bundled oneDNN reads the same cap
    extra = {"what": what, "res": _canvas(size[0]), "width": _canvas(size[1]), "batch": batch}
    if kind == "torch":
        extra["mode"] = side
    if onnx_file:
        extra["onnx"] = onnx_file
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(_child_cmd(args, kind, net, **extra), stdout=out, stderr=err, text=True, env=env)
        anon_kb = _watch_anon(proc)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{side} {net} {what} {_label(size)} failed:\n{err.read()[-2000:]}")
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


def _size(text):
    """(height, width) of a --sizes item: "512" or "640x480" (width x height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x")) if "x" in text.lower() else (int(text),) * 2
    except ValueError:
        raise SystemExit(f"error: --sizes {text!r}: give a side (512) or width x height (640x480)") from None
    return h, w


def _canvas(n):
    # the networks halve their maps five times: a photo's canvas is padded to a multiple of 32, as detect pads it
    return -(-n // 32) * 32


def _label(size):
    label = f"{size[0]}²" if size[0] == size[1] else f"{size[1]}×{size[0]}"
    canvas = tuple(_canvas(n) for n in size)
    return label if canvas == tuple(size) else f"{label} (canvas {canvas[1]}×{canvas[0]})"


def _cell(result):
    return "–" if result is None else f"{result['ms']:.1f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default="centerface,r18,r18_dcn,r50,r50_dcn")
    p.add_argument("--sizes", default="512,800",
                   help="forward inputs: sides (512) or width x height (640x480), padded to multiples of 32")
    p.add_argument("--train_res", type=int, default=256)
    p.add_argument("--train_batch", type=int, default=4)
    p.add_argument("--peers", default=",".join(PEERS),
                   help=f"comma list of {', '.join(PEERS)} (train rows time the eager ones only)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--torch_isa", default="default",
                   help="ONEDNN_MAX_CPU_ISA for the PyTorch side (e.g. AVX2, the cap MindSpore runs under here)")
    p.add_argument("--ms_kernels", choices=("onednn", "mindspore"), default="onednn",
                   help="MindSpore side on centerdet's CPU kernels (default) or on MindSpore's own")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    p.add_argument("--child", choices=("ms", "torch", "ort", "export"), help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    p.add_argument("--what", help=argparse.SUPPRESS)
    p.add_argument("--res", type=int, help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "export":
        return _export_child(args)
    if args.child:
        return child(args)
    peers = [name for name in args.peers.split(",") if name]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        sys.exit(f"error: --peers {','.join(unknown)}: not a peer; choose from {','.join(PEERS)}")
    sys.path.insert(0, HERE)
    from peers import require

    if any(PEERS[name][1] == "torch" for name in peers):
        require("torch")
    if "onnxruntime" in peers:
        require("onnxruntime")
        require("onnx")
    if args.quick:
        args.sizes, args.train_res, args.train_batch, args.rounds, args.iters = "96x64", 64, 2, 1, 1
    print(f"threads: {args.threads} for every runner (MindSpore OMP_NUM_THREADS, torch.set_num_threads, onnxruntime "
          f"intra-op); oneDNN ISA: MindSpore {os.environ.get('ONEDNN_MAX_CPU_ISA', 'AVX2')} (set by centerdet), "
          f"PyTorch {args.torch_isa}; MindSpore kernels: {args.ms_kernels}; {args.rounds} alternating rounds, "
          f"median of {args.iters} calls each; times: each runner's best round; ratios: median over rounds of the "
          "ratio within a round")
    print("strongest = the fastest of " + ", ".join(PEERS[n][0] for n in peers if n in MUST_REACH) +
          " (the must-reach peers); torch.compile is reported beside it")
    shown = [n for n in PEERS if n in peers]
    print("| network | measure | ours ms | " + " | ".join(PEERS[n][0] for n in shown) +
          " | strongest | ours / strongest | ours / torch.compile | ours compile s | ours / strongest private MB |"
          " same above import | private ratio above import |")
    print("|---|---|---|" + "---|" * len(shown) + "---|---|---|---|---|---|---|")
    jobs = [("forward", _size(s), 1) for s in args.sizes.split(",")]
    jobs.append(("train", (args.train_res, args.train_res), args.train_batch))
    folder = tempfile.mkdtemp(prefix="bench_models.")
    for net in args.nets.split(","):
        onnx_file = export_onnx_file(args, net, folder) if "onnxruntime" in peers else None
        for what, size, batch in jobs:
            sides = ["ms"] + [n for n in shown if what == "forward" or n in TRAIN_PEERS]
            runs = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side in sides:
                    runs[side].append(measure(args, side, net, what, size, batch,
                                              onnx_file if side == "onnxruntime" else None))
            best = {side: min(results, key=lambda r: r["ms"]) for side, results in runs.items()}

            def ratio(peer):  # the machine's speed drifts between rounds: compare within each round
                return statistics.median(a["ms"] / b["ms"] for a, b in zip(runs["ms"], runs[peer]))
            ours = best.pop("ms")
            strong = min((n for n in best if n in MUST_REACH), key=lambda n: best[n]["ms"], default=None)
            label = f"forward b1 {_label(size)}" if what == "forward" else f"train step b{batch} {_label(size)}"
            cells = [NETS[net], label, f"{ours['ms']:.1f}"] + [_cell(best.get(n)) for n in shown]
            if strong:
                s = best[strong]
                cells += [PEERS[strong][0], f"{ratio(strong):.2f}"]
            else:
                cells += ["–", "–"]
            cells.append(f"{ratio('compile'):.2f}" if "compile" in best else "–")
            cells.append(f"{ours['first_s'] - ours['ms'] / 1000:.1f}")
            if strong:
                mine, theirs = ours["anon_mb"] - ours["base_mb"], s["anon_mb"] - s["base_mb"]
                cells += [f"{ours['anon_mb']:.0f} / {s['anon_mb']:.0f}", f"{mine:.0f} / {theirs:.0f}",
                          f"{mine / theirs:.2f}"]
            else:
                cells += ["–", "–", "–"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
