#!/bin/bash
# Usage: bash scripts/test_and_eval.sh [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [CKPT] [GROUND_TRUTH_PATH] [--key value ...]
# test.sh on MODEL_PATH/CKPT (device DEVICE_ID from the environment, default 0), then eval.sh on
# SAVE_PATH/<epoch> (<epoch> from centerface-<epoch>_<step>.ckpt, else CKPT without its extension).
# Extra options go to test.py.
# Paths are taken as given, relative to the current directory, as test.py's --data_dir is the image folder.
set -euo pipefail
if [ $# -lt 7 ]; then
  echo "Usage: bash $0 [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [CKPT] [GROUND_TRUTH_PATH] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
TARGET=$1; MODEL_PATH=$2; DATASET=$3; GROUND_TRUTH_MAT=$4; SAVE_PATH=$5; CKPT=$6; GROUND_TRUTH_PATH=$7; shift 7
NAME=$(basename "$CKPT")
if [[ "$NAME" =~ -([0-9]+)_[0-9]+\.ckpt$ ]]; then EPOCH=${BASH_REMATCH[1]}; else EPOCH=${NAME%.*}; fi
mkdir -p test_log
"$PYTHON" "$REPO_ROOT/test.py" --device_target "$TARGET" --device_id "${DEVICE_ID:-0}" \
  --test_model "$MODEL_PATH" --ckpt_name "$CKPT" --data_dir "$DATASET" --ground_truth_mat "$GROUND_TRUTH_MAT" \
  --save_dir "$SAVE_PATH" "$@" 2>&1 | tee test_log/test.txt
echo "start eval"
"$PYTHON" -m centerdet.evaluation.widerface --pred "$SAVE_PATH/$EPOCH" --gt "$GROUND_TRUTH_PATH"
echo "end eval"
