"""WIDER FACE evaluation speed at the real val size, on synthetic data.

python benchmarks/bench_widerface_eval.py [--images 3226] [--events 61] [--boxes 200] [--seed 0]

Builds in a temp dir a ground truth shaped like the val set (61 events, 3,226 images, ~39,700
faces with a long-tailed count per image, keep lists easy ⊂ medium ⊂ hard) and CenterFace-like
predictions (K = 200 per image: a jittered copy of most faces plus random false positives), writes
them as the official .mat / txt files, then times loading the GT, reading the txt files and the
evaluation itself.
"""
import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np
from scipy.io import savemat

from centerdet.evaluation import widerface as wf


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cell(items):
    arr = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        arr[i, 0] = item
    return arr


def make_problem(rng, n_images, n_events, k):
    """Per image: (event, name, faces xywh, {setting: 1-based keep}, dets x1y1x2y2s)."""
    # Lognormal face counts: most images hold a few faces, a few hold hundreds (crowds), mean ~12.3.
    counts = np.minimum(np.round(rng.lognormal(1.86, 1.1, n_images)).astype(int) + 1, 1000)
    event_of = np.sort(rng.integers(0, n_events, n_images))
    event_of[:n_events] = np.arange(n_events)  # every event non-empty
    event_of.sort()
    images = []
    for i, (m, e) in enumerate(zip(counts, event_of)):
        w, h = 1024.0, float(rng.integers(600, 1400))
        size = np.exp(rng.uniform(np.log(6), np.log(300), m))  # small faces dominate WIDER
        xy = rng.uniform(0, 1, (m, 2)) * ([w, h] - size[:, None])
        faces = np.round(np.column_stack([xy, size, size * rng.uniform(1.0, 1.4, m)]))
        # Bigger faces are in more settings, so the keep lists nest as in the official files.
        hard = np.flatnonzero(size > rng.uniform(5, 12, m)) + 1
        medium = hard[size[hard - 1] > rng.uniform(12, 30, len(hard))]
        easy = medium[size[medium - 1] > rng.uniform(25, 60, len(medium))]
        detected = np.flatnonzero(rng.random(m) < 0.85)[:k]
        found = faces[detected]
        jit = found + rng.normal(0, 0.08, found.shape) * found[:, [2, 3, 2, 3]]
        n_fp = k - len(jit)
        fp_size = np.exp(rng.uniform(np.log(4), np.log(200), n_fp))
        fp = np.column_stack([rng.uniform(0, 1, (n_fp, 2)) * [w, h], fp_size, fp_size])
        xywh = np.vstack([jit, fp])
        # Small faces get lower scores, so that Easy > Medium > Hard as with a real detector.
        tp_scores = rng.beta(5, 2, len(jit)) * (0.4 + 0.6 * np.minimum(size[detected] / 60, 1))
        scores = np.concatenate([tp_scores, rng.beta(1, 8, n_fp)])
        dets = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4] - 1, scores])
        images.append((f"{e}--Event_{e}", f"{e}_img_{i}", faces,
                       {"easy": easy, "medium": medium, "hard": hard}, dets))
    return images


def write_gt(root, images):
    events = list(dict.fromkeys(im[0] for im in images))
    groups = [[im for im in images if im[0] == e] for e in events]
    event_list = _cell(events)
    file_list = _cell([_cell([im[1] for im in g]) for g in groups])
    savemat(os.path.join(root, "wider_face_val.mat"),
            {"event_list": event_list, "file_list": file_list,
             "face_bbx_list": _cell([_cell([im[2] for im in g]) for g in groups])})
    for s in wf.SETTINGS:
        gt_list = _cell([_cell([im[3][s].astype(np.int32).reshape(-1, 1) for im in g]) for g in groups])
        savemat(os.path.join(root, f"wider_{s}_val.mat"),
                {"event_list": event_list, "file_list": file_list, "gt_list": gt_list})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=3226)
    p.add_argument("--events", type=int, default=61)
    p.add_argument("--boxes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    images = make_problem(rng, args.images, args.events, args.boxes)
    with tempfile.TemporaryDirectory(prefix="bench_widerface_") as root:
        pred_dir = os.path.join(root, "pred")
        t = time.perf_counter()
        write_gt(root, images)
        t_mat = time.perf_counter() - t
        t = time.perf_counter()
        for event, name, _, _, dets in images:
            wf.write_predictions(pred_dir, event, name, dets)
        t_write = time.perf_counter() - t
        rss_setup = peak_rss_mb()

        t = time.perf_counter()
        gt = wf.load_ground_truth(root)
        t_gt = time.perf_counter() - t
        t = time.perf_counter()
        preds = wf.read_predictions(pred_dir, gt)
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        result = wf.evaluate(preds, gt)
        t_eval = time.perf_counter() - t

    n_boxes = sum(len(d) for d in preds.values())
    print(f"synthetic val: {gt.num_images} images, {len(gt.events)} events, {gt.num_faces()} faces "
          f"(easy {result['num_faces']['easy']}, medium {result['num_faces']['medium']}, "
          f"hard {result['num_faces']['hard']}), {n_boxes} predicted boxes")
    print(f"AP easy {result['easy']:.4f}  medium {result['medium']:.4f}  hard {result['hard']:.4f}")
    print(f"setup (not timed below): savemat {t_mat:.2f} s, write_predictions x{len(images)} "
          f"{t_write:.2f} s, peak RSS {rss_setup:.0f} MB")
    print(f"load_ground_truth {t_gt:.2f} s | read_predictions {t_read:.2f} s | evaluate {t_eval:.2f} s "
          f"| read + evaluate {t_read + t_eval:.2f} s | peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
