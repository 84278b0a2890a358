"""Post-processing speed: decode + soft-NMS per image (Cython kernels vs their numpy twins), COCO
evaluation, and the WIDER FACE evaluation of a val-sized set next to a straightforward per-image
Python loop over the same protocol (which must give the same AP).

python benchmarks/bench_post.py [--images 50] [--coco_images 500] [--wider_images 3226] [--quick]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

import centerdet  # noqa: F401
from centerdet.decode import merge_detections, sigmoid
from centerdet.tasks.centerface import decode_centerface
from centerdet.tasks.centernet import decode_centernet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_widerface_eval import make_problem, write_gt  # noqa: E402  (the val-sized synthetic set: one home)


def decode_timing(backend, n_images, rng):
    """ms/img of CenterNet (80 classes, 128x128 map, K 100) and CenterFace (208x208, K 200) decode +
    soft-NMS, on heatmaps with a few hundred peaks."""
    import centerdet.nms as nms_mod

    old = nms_mod._use_cython
    nms_mod._use_cython = lambda _backend: backend == "cython"
    try:
        out = {}
        for name, c, size, k in (("centernet", 80, 128, 100), ("centerface", 1, 208, 200)):
            maps = []
            for _ in range(n_images):
                heat = sigmoid(rng.normal(-4, 1.5, (c, size, size)).astype(np.float32))
                wh = rng.uniform(1, 3, (2, size, size)).astype(np.float32) if c == 1 else \
                    rng.uniform(2, 40, (2, size, size)).astype(np.float32)
                reg = rng.uniform(0, 1, (2, size, size)).astype(np.float32)
                maps.append((heat, wh, reg, rng.normal(0, 0.3, (10, size, size)).astype(np.float32)))
            t = time.perf_counter()
            for heat, wh, reg, lm in maps:
                dets = decode_centerface(heat, wh, reg, lm, k) if c == 1 else decode_centernet(heat, wh, reg, k)
                merge_detections([dets], c, True, 2, 0.5, 0.5, 0.001, k)
            out[name] = 1000 * (time.perf_counter() - t) / n_images
        return out
    finally:
        nms_mod._use_cython = old


def coco_timing(n_images, rng):
    from centerdet.evaluation.coco import evaluate

    images, anns, results = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        for _ in range(7):
            x, y, w, h = rng.uniform(0, 500), rng.uniform(0, 380), rng.uniform(10, 140), rng.uniform(10, 100)
            c = int(rng.integers(1, 81))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
            results.append({"image_id": i, "category_id": c, "score": float(rng.uniform(0.3, 1)),
                            "bbox": [x + rng.normal(0, 3), y + rng.normal(0, 3), w, h]})
        for _ in range(93):
            results.append({"image_id": i, "category_id": int(rng.integers(1, 81)), "score": float(rng.uniform(0, 0.5)),
                            "bbox": [rng.uniform(0, 500), rng.uniform(0, 380), rng.uniform(5, 100), rng.uniform(5, 100)]})
    with tempfile.TemporaryDirectory() as root:
        gt = os.path.join(root, "gt.json")
        with open(gt, "w") as f:
            json.dump({"images": images, "annotations": anns,
                       "categories": [{"id": c, "name": str(c)} for c in range(1, 81)]}, f)
        t = time.perf_counter()
        evaluate(gt, results, log=lambda line: None)
        return time.perf_counter() - t, len(results)


def naive_widerface(preds, gt, iou_thresh=0.5, steps=1000):
    """The protocol as a plain loop: per image, per prediction, per threshold."""
    all_scores = np.concatenate([d[:, 4] for d in preds.values() if len(d)])
    lo, hi = all_scores.min(), all_scores.max()
    aps = {}
    for setting in ("easy", "medium", "hard"):
        acc = np.zeros((steps, 2))
        count = 0
        for e, (event, names, boxes) in enumerate(gt.events):
            for j, name in enumerate(names):
                keep = gt.keep[setting][e][j]
                count += len(keep)
                dets = preds.get((event, name), np.zeros((0, 5)))
                gt_boxes = boxes[j]
                if len(dets) == 0 or len(gt_boxes) == 0:
                    continue
                dets = dets[np.argsort(-dets[:, 4], kind="stable")]
                scores = (dets[:, 4] - lo) / (hi - lo)
                counted = np.zeros(len(gt_boxes), bool)
                counted[np.asarray(keep, int)] = True  # 0-based here
                g = gt_boxes.astype(np.float64).copy()
                g[:, 2:4] += g[:, 0:2]
                state = np.zeros(len(gt_boxes), int)
                proposal = np.ones(len(dets), int)
                tp_cum = np.zeros(len(dets), int)
                for h in range(len(dets)):
                    b = dets[h, :4].astype(np.float64).copy()  # x, y, w, h -> corners
                    b[2:4] += b[0:2]
                    iw = np.minimum(b[2], g[:, 2]) - np.maximum(b[0], g[:, 0]) + 1
                    ih = np.minimum(b[3], g[:, 3]) - np.maximum(b[1], g[:, 1]) + 1
                    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0)
                    union = (b[2] - b[0] + 1) * (b[3] - b[1] + 1) + (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1) - inter
                    iou = inter / union
                    best = int(np.argmax(iou))
                    if iou[best] >= iou_thresh:
                        if not counted[best]:
                            state[best], proposal[h] = -1, -1
                        elif state[best] == 0:
                            state[best] = 1
                    tp_cum[h] = int((state == 1).sum())
                for t in range(steps):
                    above = np.nonzero(scores >= 1 - (t + 1) / steps)[0]
                    if len(above):
                        r = above[-1]
                        acc[t, 0] += (proposal[:r + 1] == 1).sum()
                        acc[t, 1] += tp_cum[r]
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.nan_to_num(acc[:, 1] / acc[:, 0])
        rec = acc[:, 1] / max(count, 1)
        mrec, mpre = np.concatenate([[0], rec, [1]]), np.concatenate([[0], prec, [0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
        aps[setting] = float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))
    return aps


def wider_timing(n_images, rng):
    from centerdet.evaluation import widerface as wf

    images = make_problem(rng, n_images, min(61, n_images), 200)
    with tempfile.TemporaryDirectory() as root:
        write_gt(root, images)
        for event, name, _, _, dets in images:
            wf.write_predictions(os.path.join(root, "pred"), event, name, dets)
        t = time.perf_counter()
        gt = wf.load_ground_truth(root)
        preds = wf.read_predictions(os.path.join(root, "pred"), gt, log=lambda line: None)
        result = wf.evaluate(preds, gt)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        naive = naive_widerface(preds, gt)
        naive_s = time.perf_counter() - t
    return ours, naive_s, {s: float(result[s]) for s in ("easy", "medium", "hard")}, naive


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=50, help="images for the decode timing")
    p.add_argument("--coco_images", type=int, default=500)
    p.add_argument("--wider_images", type=int, default=3226)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.images, args.coco_images, args.wider_images = 3, 20, 40
    rng = np.random.default_rng(0)
    print("| step | Cython | numpy twin |")
    print("|---|---|---|")
    cy, py = decode_timing("cython", args.images, rng), decode_timing("numpy", args.images, rng)
    for name in cy:
        print(f"| decode + soft-NMS, {name} | {cy[name]:.2f} ms/img | {py[name]:.2f} ms/img |")
    coco_s, n = coco_timing(args.coco_images, rng)
    print(f"\nCOCO evaluation (pycocotools), {args.coco_images} images, {n} detections: {coco_s:.2f} s")
    ours, naive_s, ap, naive_ap = wider_timing(args.wider_images, rng)
    same = all(abs(ap[s] - naive_ap[s]) < 1e-9 for s in ap)
    print(f"WIDER FACE evaluation, {args.wider_images} images x 200 boxes (read + 3 settings): ours {ours:.2f} s, "
          f"per-image loop {naive_s:.1f} s ({naive_s / ours:.0f}x); AP easy/medium/hard "
          f"{ap['easy']:.4f}/{ap['medium']:.4f}/{ap['hard']:.4f}, {'equal' if same else 'DIFFERENT'} in both")
    if not same:
        print(f"loop AP: {naive_ap}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
