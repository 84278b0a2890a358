"""The one-command demo: synthetic data → MindRecord → train → COCO eval → pictures.

python -m centerdet.demo [centernet] [--out DIR] [--train N] [--val M] [--key value ...]
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
SYNTH = {"centernet": {"size": 128, "opts": {"min_box_frac": 0.12, "max_objects": 6, "clutter": (0.1, 0.6)}}}


def stage(name):
    print(f"\n=== {name} ===", flush=True)
    return time.time()


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="centernet", choices=sorted(SYNTH))
    parser.add_argument("--out", default=None, help="output folder (default outputs/demo_<model>)")
    parser.add_argument("--train", type=int, default=1000, help="synthetic training images")
    parser.add_argument("--val", type=int, default=100, help="synthetic validation images")
    parser.add_argument("--seed", type=int, default=0)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    out = os.path.abspath(args.out or os.path.join("outputs", f"demo_{args.model}"))
    overrides, config_path = parse_overrides(rest)
    data_dir = os.path.join(out, "data")
    paths = {"data_dir": data_dir, "mindrecord_dir": os.path.join(data_dir, "mindrecord"),
             "save_checkpoint_path": os.path.join(out, "ckpt"), "save_result_dir": os.path.join(out, "results")}
    cfg = load_config(config_path or os.path.join(ROOT, "configs", f"{args.model}_synthetic.yaml"),
                      {**paths, **overrides})
    times, t_all = {}, time.time()

    from centerdet.data.synthetic import SceneOptions, generate_coco
    t = stage(f"1/3 synthetic data: {args.train} train + {args.val} val images -> {data_dir}")
    if os.path.isfile(os.path.join(data_dir, "annotations", "val.json")):
        print("already generated; reusing it (delete the folder to regenerate)")
    else:
        synth = SYNTH[args.model]
        generate_coco(data_dir, args.train, args.val, synth["size"], args.seed, progress=True,
                      opts=SceneOptions(**synth["opts"]))
    times["generate_s"] = time.time() - t

    from centerdet.engine.trainer import train
    t = stage("2/3 train (MindRecord conversion on first use)")
    ckpt = train(cfg)
    times["train_s"] = time.time() - t

    from centerdet.engine.evaluator import evaluate_coco
    t = stage("3/3 evaluate on the held-out synthetic val set")
    cfg.load_checkpoint_path = ckpt
    cfg.visual_image = True
    metrics = evaluate_coco(cfg)
    times["eval_s"] = time.time() - t
    times["total_s"] = time.time() - t_all

    summary = {"model": args.model, "checkpoint": ckpt, "metrics": metrics, "times": times,
               "pictures": {"detections": os.path.join(cfg.save_result_dir, "detections.png"),
                            "loss_curve": os.path.join(cfg.save_checkpoint_path, "loss_curve.png")}}
    write_json(os.path.join(out, "summary.json"), summary, indent=2)
    print(f"\ndemo finished in {times['total_s'] / 60:.1f} min: AP {metrics['AP']:.3f}, AP50 {metrics['AP50']:.3f}")
    for name, path in summary["pictures"].items():
        print(f"  {name}: {path}")
    print(f"  metrics: {os.path.join(cfg.save_result_dir, 'metrics.json')}")


if __name__ == "__main__":
    main()
