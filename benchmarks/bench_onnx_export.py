"""CenterNet R50-DCN (the seed's recipe, 80 classes, random weights) exported by export.py's ONNX
writer and run by onnxruntime (all graph optimisations), in both DCN forms, against our network in
graph mode on centerdet's CPU kernels with BatchNorm folded (what eval.py runs), batch 1, 2
threads each. Rounds alternate the runners; each figure is the median over rounds of each round's
median call.

.venv/bin/python benchmarks/bench_onnx_export.py                 # 512², 4 rounds
.venv/bin/python benchmarks/bench_onnx_export.py --quick         # R18 at 128², 1 round (a smoke test)
"""
import argparse
import statistics
import sys
import time

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
import numpy as np

from peers import require


def median_ms(fn, calls):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    backbone = "resnet50"
    if args.quick:
        args.size, args.rounds, args.calls, backbone = 128, 1, 2, "resnet18"
    require("onnxruntime")
    require("onnx")
    import mindspore as ms
    import onnxruntime as ort

    from centerdet.config import load_config
    from centerdet.deploy.onnx_export import build_onnx
    from centerdet.models import build_model
    from centerdet.models.fuse import fold_batchnorm
    from centerdet.runtime import init_device

    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config("centernet_r50-dcn_8xb32-330e_coco", {"backbone": backbone})
    init_device("CPU", 0, "graph", cfg.cpu_kernels)
    ms.set_seed(0)
    net = build_model(cfg)
    net.set_train(False)
    fold_batchnorm(net)
    x = np.random.default_rng(0).normal(size=(1, 3, args.size, args.size)).astype(np.float32)
    xt = ms.Tensor(x)
    t = time.perf_counter()
    net(xt)
    compile_s = time.perf_counter() - t

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    ort.set_default_logger_severity(3)
    sessions = {}
    for form in ("deformconv", "decomposed"):
        model = build_onnx(net, dcn=form)
        sessions[form] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        sessions[form].run(None, {"input": x})
    runners = {"ours": lambda: [o.asnumpy() for o in net(xt)]}
    runners.update({f"onnxruntime {f}": (lambda s=s: s.run(None, {"input": x})) for f, s in sessions.items()})
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, fn in runners.items():
            fn()
            times[name].append(median_ms(fn, args.calls))
    ours = statistics.median(times["ours"])
    print(f"CenterNet {backbone}-DCN, {args.size}², batch 1, {args.threads} threads, {args.rounds} rounds; "
          f"ours compiled in {compile_s:.1f} s")
    print("| runner | ms | ours / runner |")
    print("|---|---|---|")
    for name, ts in times.items():
        ms_ = statistics.median(ts)
        print(f"| {name} | {ms_:.1f} | {ours / ms_:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
