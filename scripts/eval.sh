#!/bin/bash
# Usage: bash scripts/eval.sh [GROUND_TRUTH_PATH] [PRED_DIR](optional, default ./output/centerface/999) [--key value ...]
# Prints the Easy / Medium / Hard val AP (IoU 0.5 and the model zoo's 0.4) of the predictions in PRED_DIR
# (<event>/<image>.txt) and writes metrics.json and pr_curves.png beside it, in PRED_DIR_eval.
# GROUND_TRUTH_PATH: the folder of wider_{face,easy,medium,hard}_val.mat.
# Extra options go to python -m centerdet.evaluation.widerface (e.g. --iou 0.4 as the model zoo).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "Usage: bash $0 [GROUND_TRUTH_PATH] [PRED_DIR](optional, default ./output/centerface/999) [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
GROUND_TRUTH_PATH=$1; shift
PRED_DIR=./output/centerface/999
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then PRED_DIR=$1; shift; fi
echo "start eval"
"$PYTHON" -m centerdet.evaluation.widerface --pred "$PRED_DIR" --gt "$GROUND_TRUTH_PATH" "$@"
echo "end eval"
