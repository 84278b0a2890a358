"""test.py's work (and eval.py's for CenterFace): detect faces on the WIDER FACE val images, write
the official prediction files, draw boxes + landmarks, and score Easy/Medium/Hard AP."""
import os
import re

import numpy as np

from centerdet.data.coco import resolve
from centerdet.engine.evaluator import load_detector, predict_each
from centerdet.errors import CenterDetError
from centerdet.evaluation.widerface import write_predictions
from centerdet.fileio import ensure_writable_dir, write_text


def ground_truth_dir(cfg):
    """The folder of the official .mat files; a path to one of the files is accepted too (the
    seed's scripts pass GROUND_TRUTH_MAT). Empty string when there is none."""
    path = resolve(cfg.data_dir, cfg.ground_truth_dir) if cfg.ground_truth_dir else ""
    if path.endswith(".mat"):
        path = os.path.dirname(path)
    return path if path and os.path.isfile(os.path.join(path, "wider_face_val.mat")) else ""


def checkpoint_id(path):
    """'centerface-140_1234.ckpt' → '140' (the epoch, as the model zoo names its output folders)."""
    m = re.search(r"-(\d+)_\d+\.ckpt$", os.path.basename(path))
    return m.group(1) if m else os.path.splitext(os.path.basename(path))[0]


def val_images(cfg, gt_dir, log=print):
    """[(event, image name without .jpg, path, gt boxes or None)]: the ground truth's list when there
    is one (what the official evaluation expects), else every image of the val annotation file."""
    img_dir = resolve(cfg.data_dir, cfg.val_img_dir)
    ann_file = resolve(cfg.data_dir, cfg.val_ann_file)
    boxes = {}
    if os.path.isfile(ann_file):
        from centerdet.data.widerface import FaceDataset
        boxes = {im.file_name: im.boxes for im in FaceDataset(ann_file, img_dir).images}
    if gt_dir:
        from centerdet.evaluation.widerface import load_ground_truth
        items = [(event, name, f"{event}/{name}.jpg") for event, names, _ in load_ground_truth(gt_dir).events
                 for name in names]
    elif boxes:
        items = [(rel.split("/")[0], os.path.splitext(os.path.basename(rel))[0], rel) for rel in boxes]
    else:
        raise CenterDetError(f"no val image list: neither {os.path.join(cfg.ground_truth_dir, 'wider_face_val.mat')} "
                             f"nor {ann_file} exists (set data_dir, ground_truth_dir or val_ann_file)")
    return [(event, name, os.path.join(img_dir, rel), boxes.get(rel)) for event, name, rel in items]


def _landmark_lines(dets):
    return "\n".join(" ".join(f"{v:.1f}" for v in row[6:16]) + f" {row[4]:.3f}" for row in dets)


def test_widerface(cfg, net=None, evaluate=True, log=print):
    """Write ``save_result_dir/<checkpoint id>/<event>/<image>.txt`` for every val image; with
    ``evaluate`` and the ground truth present, also print and write Easy/Medium/Hard AP.
    Returns the metrics dict (or None) and the prediction folder."""
    from centerdet.inference import Predictor
    from centerdet.visualize import draw_for_display, make_grid, save_image

    gt_dir = ground_truth_dir(cfg)
    images = val_images(cfg, gt_dir, log)
    if cfg.eval_max_images > 0:
        images = images[:cfg.eval_max_images]
    net = net if net is not None else load_detector(cfg, log)
    run_id = checkpoint_id(cfg.load_checkpoint_path) if cfg.load_checkpoint_path else "latest"
    pred_dir = ensure_writable_dir(os.path.join(cfg.save_result_dir, run_id), "save_result_dir")
    predictor = Predictor(net, cfg)
    log(f"test: {len(images)} images, input {cfg.input_res_test} (keep_res={cfg.keep_res}), scales "
        f"{cfg.multi_scales}, flip={cfg.flip_test} -> {pred_dir}")
    skipped, pictures = [], []
    for (event, name, _, gt_boxes), img, dets in predict_each(predictor, images, lambda item: item[2], "test",
                                                              skipped, log):
        write_predictions(pred_dir, event, name, dets[:, :5])
        if cfg.write_landmarks:
            write_text(os.path.join(pred_dir, event, name + "_landmarks.txt"), _landmark_lines(dets) + "\n")
        if cfg.visual_image and len(pictures) < cfg.visual_max_images:
            pic = draw_for_display(img, dets, ["face"], cfg.score_thresh, gt_boxes=gt_boxes)
            save_image(os.path.join(pred_dir, "visual", f"{event}_{name}.png"), pic)
            pictures.append(pic)
    if skipped:
        log(f"test: {len(skipped)} unreadable images skipped (their faces count as missed)")
    if pictures:
        save_image(os.path.join(pred_dir, "detections.png"), make_grid(pictures, cols=min(4, len(pictures))))
    if not evaluate:
        return None, pred_dir
    if not gt_dir:
        log(f"eval: no ground truth .mat files at {cfg.ground_truth_dir!r}; predictions only")
        return None, pred_dir
    from centerdet.evaluation.widerface import evaluate as wider_eval
    from centerdet.evaluation.widerface import load_ground_truth, read_predictions, report

    gt = load_ground_truth(gt_dir)
    if cfg.eval_max_images > 0:
        gt = _subset(gt, {(e, n) for e, n, _, _ in images})
    result = wider_eval(read_predictions(pred_dir, gt, log), gt, iou_thresh=cfg.eval_iou)
    report(result, pred_dir, pred_dir, log)
    return {s: float(np.nan_to_num(result[s])) for s in ("easy", "medium", "hard")}, pred_dir


def _subset(gt, keep):
    """The ground truth restricted to the images in ``keep`` (for eval_max_images runs)."""
    from centerdet.evaluation.widerface import GroundTruth

    events, masks = [], []
    for event, names, boxes in gt.events:
        idx = [j for j, n in enumerate(names) if (event, n) in keep]
        events.append((event, [names[j] for j in idx], [boxes[j] for j in idx]))
        masks.append(idx)
    kept = {s: [[per_event[j] for j in idx] for per_event, idx in zip(gt.keep[s], masks)] for s in gt.keep}
    return GroundTruth(events, kept)
