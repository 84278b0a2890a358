#!/bin/bash
# Usage: bash scripts/eval_all.sh [GROUND_TRUTH_PATH] [OUTPUT_DIR](optional, default ./output/centerface) [START](optional) [END](optional) [--key value ...]
# Evaluates every numeric subfolder OUTPUT_DIR/<n> (test_distribute.sh's per-epoch results), in numeric
# order, limited to START <= n <= END when given, printing the Easy / Medium / Hard AP block of each.
# Extra options go to python -m centerdet.evaluation.widerface (e.g. --iou 0.4 as the model zoo).
set -euo pipefail
USAGE="Usage: bash $0 [GROUND_TRUTH_PATH] [OUTPUT_DIR](optional, default ./output/centerface) [START](optional) [END](optional) [--key value ...]"
if [ $# -lt 1 ]; then echo "$USAGE"; exit 1; fi
source "$(dirname "$0")/env.sh"
GROUND_TRUTH_PATH=$1; shift
POSITIONAL=()
while [ $# -gt 0 ] && [ ${#POSITIONAL[@]} -lt 3 ] && [[ "$1" != --* ]]; do POSITIONAL+=("$1"); shift; done
OUTPUT_DIR=${POSITIONAL[0]:-./output/centerface}; START=${POSITIONAL[1]:-}; END=${POSITIONAL[2]:-}
if [ ! -d "$OUTPUT_DIR" ]; then echo "error: output folder not found: $OUTPUT_DIR"; exit 1; fi
EPOCHS=()
for dir in "$OUTPUT_DIR"/*/; do
  n=$(basename "$dir")
  if [[ "$n" =~ ^[0-9]+$ ]] && { [ -z "$START" ] || [ "$n" -ge "$START" ]; } && { [ -z "$END" ] || [ "$n" -le "$END" ]; }; then
    EPOCHS+=("$n")
  fi
done
if [ ${#EPOCHS[@]} -eq 0 ]; then echo "error: no numeric result folders in $OUTPUT_DIR${START:+ from $START}${END:+ to $END}"; exit 1; fi
mapfile -t EPOCHS < <(printf '%s\n' "${EPOCHS[@]}" | sort -n)
FAILED=()
for n in "${EPOCHS[@]}"; do
  "$PYTHON" -m centerdet.evaluation.widerface --pred "$OUTPUT_DIR/$n" --gt "$GROUND_TRUTH_PATH" "$@" || FAILED+=("$n")
done
if [ ${#FAILED[@]} -gt 0 ]; then echo "evaluation failed for: ${FAILED[*]}"; exit 1; fi
