#!/bin/bash
# Usage: bash scripts/test.sh [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [DEVICE_ID] [CKPT] [--key value ...]
# Runs checkpoint MODEL_PATH/CKPT on the val images of DATASET (e.g. .../images/val/images) and writes
# SAVE_PATH/<epoch>/<event>/<image>.txt (<epoch> from centerface-<epoch>_<step>.ckpt).
# DEVICE_TARGET: Ascend | GPU | CPU. GROUND_TRUTH_MAT: wider_face_val.mat or its folder (gives the image list).
# Paths are taken as given, relative to the current directory, as test.py's --data_dir is the image folder.
set -euo pipefail
if [ $# -lt 7 ]; then
  echo "Usage: bash $0 [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [DEVICE_ID] [CKPT] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
TARGET=$1; MODEL_PATH=$2; DATASET=$3; GROUND_TRUTH_MAT=$4; SAVE_PATH=$5; DEVICE_ID=$6; CKPT=$7; shift 7
mkdir -p test_log
"$PYTHON" "$REPO_ROOT/test.py" --device_target "$TARGET" --device_id "$DEVICE_ID" \
  --test_model "$MODEL_PATH" --ckpt_name "$CKPT" --data_dir "$DATASET" --ground_truth_mat "$GROUND_TRUTH_MAT" \
  --save_dir "$SAVE_PATH" "$@" 2>&1 | tee test_log/test.txt
