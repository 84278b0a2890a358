"""The one-command demo: synthetic data → MindRecord → train → eval → pictures.

python -m centerdet.demo [TASK] [--out DIR] [--train N] [--val M] [--seed S] [--key value ...]
TASK is centernet (COCO AP on shapes) or centerface (WIDER FACE Easy/Medium/Hard AP on faces), or
any registered task with a demo. Extra --key value pairs override the task's demo recipe (e.g.
--train_steps 50), --config another recipe.
"""
import argparse
import os
import sys
import time

from centerdet import tasks
from centerdet.cli import parse_overrides
from centerdet.config import load_config
from centerdet.errors import CenterDetError, cli_main
from centerdet.fileio import write_json


def stage(name):
    print(f"\n=== {name} ===", flush=True)
    return time.time()


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(prog="centerdet demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="centernet", help="the task (default centernet)")
    parser.add_argument("--out", default=None, help="output folder (default outputs/demo_<task>)")
    parser.add_argument("--train", type=int, default=None, help="synthetic training images (default: the task's)")
    parser.add_argument("--val", type=int, default=100, help="synthetic validation images")
    parser.add_argument("--seed", type=int, default=0)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    task = tasks.get(args.model)
    if task.demo is None:
        raise CenterDetError(f"task {task.name!r} has no demo")
    out = os.path.abspath(args.out or os.path.join("outputs", f"demo_{task.name}"))
    n_train = task.demo.train_images if args.train is None else args.train
    overrides, config_path = parse_overrides(rest)
    data_dir = os.path.join(out, "data")
    paths = {"model": task.name, "data_dir": data_dir, "save_checkpoint_path": os.path.join(out, "ckpt"),
             "save_result_dir": os.path.join(out, "results"), "result_per_checkpoint": "false"}
    cfg = load_config(config_path or task.demo.config, {**paths, **overrides})
    times, t_all = {}, time.time()

    t = stage(f"1/3 synthetic data: {n_train} train + {args.val} val images -> {data_dir}")
    if os.path.isfile(os.path.join(data_dir, "annotations", "val.json")):
        print("already generated; reusing it (delete the folder to regenerate)")
    else:
        task.demo.generate(data_dir, n_train, args.val, args.seed)
    times["generate_s"] = time.time() - t

    from centerdet.engine.evaluator import run_inference
    from centerdet.engine.trainer import train
    t = stage("2/3 train (MindRecord conversion on first use)")
    ckpt = train(cfg)
    times["train_s"] = time.time() - t

    t = stage("3/3 evaluate on the held-out synthetic val set")
    cfg.load_checkpoint_path = ckpt
    cfg.visual_image = True
    result = run_inference(cfg)
    times["eval_s"] = time.time() - t
    times["total_s"] = time.time() - t_all

    pictures = {"detections": result.picture, "loss_curve": os.path.join(cfg.save_checkpoint_path, "loss_curve.png")}
    if os.path.isfile(os.path.join(result.report_dir, "pr_curves.png")):
        pictures["pr_curves"] = os.path.join(result.report_dir, "pr_curves.png")
    summary = {"model": task.name, "checkpoint": ckpt, "metrics": result.metrics, "times": times, "pictures": pictures}
    write_json(os.path.join(out, "summary.json"), summary, indent=2)
    print(f"\ndemo finished in {times['total_s'] / 60:.1f} min: {task.demo.summary(result.metrics)}")
    for name, path in summary["pictures"].items():
        print(f"  {name}: {path}")
    print(f"  metrics: {os.path.join(result.report_dir, 'metrics.json')}")


if __name__ == "__main__":
    main()
