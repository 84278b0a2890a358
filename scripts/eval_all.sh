#!/bin/bash
# Usage: bash scripts/eval_all.sh [GROUND_TRUTH_PATH] [OUTPUT_DIR](optional, default ./output/centerface) [START](optional) [END](optional) [--key value ...]
# Scores every epoch folder OUTPUT_DIR/<n> (test_distribute.sh's results; START <= n <= END when given),
# printing each one's Easy / Medium / Hard AP block (IoU 0.5 and the model zoo's 0.4), then the best
# epoch by each AP and by their sum ("best epoch: N"). Extra options go to
# python -m centerdet.evaluation.best_epoch (e.g. --iou 0.4 to choose by the model zoo's protocol).
set -euo pipefail
USAGE="Usage: bash $0 [GROUND_TRUTH_PATH] [OUTPUT_DIR](optional, default ./output/centerface) [START](optional) [END](optional) [--key value ...]"
if [ $# -lt 1 ]; then echo "$USAGE"; exit 1; fi
source "$(dirname "$0")/env.sh"
GROUND_TRUTH_PATH=$1; shift
POSITIONAL=()
while [ $# -gt 0 ] && [ ${#POSITIONAL[@]} -lt 3 ] && [[ "$1" != --* ]]; do POSITIONAL+=("$1"); shift; done
RANGE=()
if [ -n "${POSITIONAL[1]:-}" ]; then RANGE+=(--start "${POSITIONAL[1]}"); fi
if [ -n "${POSITIONAL[2]:-}" ]; then RANGE+=(--end "${POSITIONAL[2]}"); fi
"$PYTHON" -m centerdet.evaluation.best_epoch --gt "$GROUND_TRUTH_PATH" --root "${POSITIONAL[0]:-./output/centerface}" \
  "${RANGE[@]}" "$@"
