"""eval.py's work: run a checkpoint over a COCO-format split, write results, metrics and pictures."""
import os
import time

from centerdet.data.coco import CocoDataset, split_paths
from centerdet.data.images import read_image
from centerdet.engine.progress import log_progress
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir



def predict_each(predictor, items, path_of, stage, skipped, log=print):
    """Yield (item, image, detections) for every readable image, with a progress line (ETA) per
    image; unreadable images are logged and their paths appended to ``skipped`` (they count as misses)."""
    start = time.time()
    for i, item in enumerate(items):
        path = path_of(item)
        try:
            img = read_image(path)
        except CenterDetError as exc:
            skipped.append(path)
            log(f"skip: {exc}")
        else:
            yield item, img, predictor(img)
        log_progress(stage, i + 1, len(items), start, log)


def load_detector(cfg, log=print):
    """Build the network of ``cfg`` and load ``load_checkpoint_path`` (required) for inference."""
    from centerdet.engine.checkpoint import load_weights
    from centerdet.models import build_model
    from centerdet.runtime import init_device

    if not cfg.load_checkpoint_path:
        raise CenterDetError("config key 'load_checkpoint_path' is empty: give the checkpoint to evaluate")
    init_device(cfg.device_target, cfg.device_id, cfg.mode, cfg.cpu_kernels)
    net = build_model(cfg)
    _, _, missing = load_weights(net, cfg.load_checkpoint_path, log=log)
    if missing:
        raise CenterDetError(f"{cfg.load_checkpoint_path} does not hold {len(missing)} tensors of this "
                             f"{cfg.backbone} network (first: {missing[0]}); check backbone/use_dcn/num_classes")
    net.set_train(False)
    if cfg.fold_bn:
        from centerdet.models.fuse import fold_batchnorm

        fold_batchnorm(net)
    return net


def evaluate_coco(cfg, net=None, log=print):
    """Returns the metrics dict (val) or None (test); writes everything under save_result_dir."""
    from centerdet.evaluation.coco import detections_to_results, evaluate, write_metrics, write_results
    from centerdet.inference import Predictor
    from centerdet.visualize import draw_for_display, make_grid, save_image

    ann, img_dir = split_paths(cfg, cfg.run_mode)
    dataset = CocoDataset(ann, img_dir)
    if dataset.num_classes != cfg.num_classes:
        raise CenterDetError(f"{ann} has {dataset.num_classes} categories but config key 'num_classes' is "
                             f"{cfg.num_classes}")
    out_dir = ensure_writable_dir(cfg.save_result_dir, "save_result_dir")
    net = net if net is not None else load_detector(cfg, log)
    predictor = Predictor(net, cfg)
    images = dataset.images[:cfg.eval_max_images] if cfg.eval_max_images > 0 else dataset.images
    results, skipped, pictures = [], [], []
    log(f"eval: {len(images)} images from {img_dir} ({cfg.run_mode}), keep_res={cfg.keep_res}, "
        f"scales {cfg.multi_scales}, flip={cfg.flip_test}")
    for image, img, dets in predict_each(predictor, images, dataset.image_path, "eval", skipped, log):
        results += detections_to_results(image.id, dets, dataset.cat_ids)
        if cfg.visual_image and len(pictures) < cfg.visual_max_images:
            pic = draw_for_display(img, dets, dataset.class_names, cfg.score_thresh, gt_boxes=image.boxes)
            save_image(os.path.join(out_dir, "visual", f"{image.id}.png"), pic)
            pictures.append(pic)
    if skipped:
        log(f"eval: {len(skipped)} unreadable images skipped (they count as missed detections)")
    write_results(os.path.join(out_dir, "results.json"), results)
    if pictures:
        save_image(os.path.join(out_dir, "detections.png"), make_grid(pictures, cols=min(4, len(pictures))))
    log(f"eval: wrote {len(results)} detections to {os.path.join(out_dir, 'results.json')}")
    if cfg.run_mode != "val":
        return None
    metrics = evaluate(ann, results, image_ids=[im.id for im in images], log=log)
    write_metrics(os.path.join(out_dir, "metrics.json"), metrics)
    return metrics
