"""Score every epoch folder of a CenterFace test run and name the best epoch: the model zoo's
select-best step (its eval_all.sh and find_best_checkpoint.py) in one command.

python -m centerdet.evaluation.best_epoch --gt GT_DIR --root OUTPUT_DIR [--start N] [--end N] [--iou 0.5]

OUTPUT_DIR holds one prediction tree per epoch, ``<epoch>/<event>/<image>.txt`` (test.py's
``--save_dir``); each is scored as ``python -m centerdet.evaluation.widerface`` would (both IoU
protocols printed, files beside the tree), then the best epoch by Easy, Medium and Hard AP and by
their sum is printed, the sum's last, as ``best epoch: N``.
"""
import argparse
import os
import sys
from typing import List, Optional, Tuple

from centerdet.errors import CenterDetError, cli_main
from centerdet.evaluation.widerface import (SETTINGS, beside, evaluate_protocols, load_ground_truth,
                                            read_predictions, report)


def epoch_folders(root: str, start: Optional[int] = None, end: Optional[int] = None) -> List[Tuple[int, str]]:
    """(epoch, folder) of the numeric subfolders of ``root`` within start..end, in epoch order."""
    if not os.path.isdir(root):
        raise CenterDetError(f"output folder not found: {root}")
    found = sorted((int(n), os.path.join(root, n)) for n in os.listdir(root)
                   if n.isdigit() and os.path.isdir(os.path.join(root, n)))
    found = [(e, p) for e, p in found if (start is None or e >= start) and (end is None or e <= end)]
    if not found:
        span = f" from {start}" if start is not None else ""
        span += f" to {end}" if end is not None else ""
        raise CenterDetError(f"no epoch folders (numeric names) in {root}{span}: run test.py or test_distribute.sh first")
    return found


def best(scores):
    """{criterion: (epoch, aps)} for easy, medium, hard and their sum; ties go to the later epoch."""
    out = {}
    for criterion in (*SETTINGS, "sum"):
        key = (lambda aps: sum(aps.values())) if criterion == "sum" else (lambda aps, c=criterion: aps[c])
        out[criterion] = max(scores, key=lambda item: (key(item[1]), item[0]))
    return out


OPTIONS = (("--gt", {"required": True, "help": "directory of the official ground-truth .mat files"}),
           ("--root", {"required": True, "help": "folder of the epoch folders (test.py's --save_dir)"}),
           ("--start", {"type": int, "help": "first epoch to score"}),
           ("--end", {"type": int, "help": "last epoch to score"}),
           ("--iou", {"type": float, "default": 0.5, "help": "IoU of the APs the choice uses (0.5 official)"}),
           ("--overwrite", {"action": "store_true", "help": "replace the metrics of earlier evaluations"}))


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m centerdet.evaluation.best_epoch", description=__doc__.split("\n\n")[0])
    for flag, options in OPTIONS:
        parser.add_argument(flag, **options)
    args = parser.parse_args(argv)
    gt = load_ground_truth(args.gt)
    scores = []
    for epoch, folder in epoch_folders(args.root, args.start, args.end):
        results = evaluate_protocols(read_predictions(folder, gt), gt, args.iou)
        report(results, folder, beside(folder), overwrite=args.overwrite)
        scores.append((epoch, {s: float(results[0][s]) for s in SETTINGS}))
    for criterion, (epoch, aps) in best(scores).items():
        name = "Easy + Medium + Hard AP" if criterion == "sum" else f"{criterion.capitalize()} AP"
        print(f"best by {name} (IoU {args.iou:g}): epoch {epoch}: Easy {aps['easy']:.4f}, Medium {aps['medium']:.4f}, "
              f"Hard {aps['hard']:.4f}")
    print(f"best epoch: {best(scores)['sum'][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
