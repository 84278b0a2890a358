"""The one-command demo: synthetic data → MindRecord → train → eval → pictures.

python -m centerdet.demo [centernet|centerface] [--out DIR] [--train N] [--val M] [--key value ...]
CenterNet is scored with COCO AP, CenterFace with WIDER FACE Easy/Medium/Hard AP.
Extra --key value pairs override configs/<model>_synthetic.yaml (e.g. --train_steps 50).
"""
import argparse
import os
import sys
import time

from centerdet.config import load_config, parse_overrides
from centerdet.errors import cli_main
from centerdet.fileio import write_json

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# Image size and scene difficulty per model: gentler than the generator's defaults (bigger objects,
# fewer of them, lighter clutter) so that a network trained from scratch shows real detections
# within the demo's ~15 minutes on a 2-core CPU.
SYNTH = {"centernet": {"train": 1000, "size": 128,
                       "opts": {"min_box_frac": 0.12, "max_objects": 6, "clutter": (0.1, 0.6)}},
         "centerface": {"train": 800, "size": 256, "opts": {"min_face": 10, "max_face": 120, "max_faces": 8}}}


def generate(model, data_dir, n_train, n_val, seed):
    synth = SYNTH[model]
    if model == "centerface":
        from centerdet.data.synthetic import FaceSceneOptions, generate_widerface
        generate_widerface(data_dir, n_train, n_val, seed, synth["size"], FaceSceneOptions(**synth["opts"]),
                           progress=True)
    else:
        from centerdet.data.synthetic import SceneOptions, generate_coco
        generate_coco(data_dir, n_train, n_val, synth["size"], seed, progress=True,
                      opts=SceneOptions(**synth["opts"]))


def evaluate(cfg):
    """(metrics, detections picture, one-line summary)."""
    if cfg.model == "centerface":
        from centerdet.engine.face_evaluator import test_widerface
        metrics, pred_dir = test_widerface(cfg)
        line = f"Easy AP {metrics['easy']:.3f}, Medium AP {metrics['medium']:.3f}, Hard AP {metrics['hard']:.3f}"
        return metrics, os.path.join(pred_dir, "detections.png"), line
    from centerdet.engine.evaluator import evaluate_coco
    metrics = evaluate_coco(cfg)
    return (metrics, os.path.join(cfg.save_result_dir, "detections.png"),
            f"AP {metrics['AP']:.3f}, AP50 {metrics['AP50']:.3f}")


def stage(name):
    print(f"\n=== {name} ===", flush=True)
    return time.time()


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="centernet", choices=sorted(SYNTH))
    parser.add_argument("--out", default=None, help="output folder (default outputs/demo_<model>)")
    parser.add_argument("--train", type=int, default=None,
                        help="synthetic training images (default 1000 for centernet, 800 for centerface)")
    parser.add_argument("--val", type=int, default=100, help="synthetic validation images")
    parser.add_argument("--seed", type=int, default=0)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    out = os.path.abspath(args.out or os.path.join("outputs", f"demo_{args.model}"))
    if args.train is None:
        args.train = SYNTH[args.model]["train"]
    overrides, config_path = parse_overrides(rest)
    data_dir = os.path.join(out, "data")
    paths = {"data_dir": data_dir, "mindrecord_dir": os.path.join(data_dir, "mindrecord"),
             "save_checkpoint_path": os.path.join(out, "ckpt"), "save_result_dir": os.path.join(out, "results")}
    cfg = load_config(config_path or os.path.join(ROOT, "configs", f"{args.model}_synthetic.yaml"),
                      {**paths, **overrides})
    times, t_all = {}, time.time()

    t = stage(f"1/3 synthetic data: {args.train} train + {args.val} val images -> {data_dir}")
    if os.path.isfile(os.path.join(data_dir, "annotations", "val.json")):
        print("already generated; reusing it (delete the folder to regenerate)")
    else:
        generate(args.model, data_dir, args.train, args.val, args.seed)
    times["generate_s"] = time.time() - t

    from centerdet.engine.trainer import train
    t = stage("2/3 train (MindRecord conversion on first use)")
    ckpt = train(cfg)
    times["train_s"] = time.time() - t

    t = stage("3/3 evaluate on the held-out synthetic val set")
    cfg.load_checkpoint_path = ckpt
    cfg.visual_image = True
    metrics, picture, line = evaluate(cfg)
    times["eval_s"] = time.time() - t
    times["total_s"] = time.time() - t_all

    pictures = {"detections": picture, "loss_curve": os.path.join(cfg.save_checkpoint_path, "loss_curve.png")}
    if args.model == "centerface":
        pictures["pr_curves"] = os.path.join(os.path.dirname(picture), "pr_curves.png")
    summary = {"model": args.model, "checkpoint": ckpt, "metrics": metrics, "times": times, "pictures": pictures}
    write_json(os.path.join(out, "summary.json"), summary, indent=2)
    print(f"\ndemo finished in {times['total_s'] / 60:.1f} min: {line}")
    for name, path in summary["pictures"].items():
        print(f"  {name}: {path}")
    print(f"  metrics: {os.path.join(os.path.dirname(picture), 'metrics.json')}")


if __name__ == "__main__":
    main()
