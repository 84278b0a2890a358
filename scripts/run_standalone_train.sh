#!/bin/bash
# Usage: bash scripts/run_standalone_train.sh [DEVICE_ID] [MINDRECORD_DATASET_PATH] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]
# DEVICE_TARGET=CPU|GPU|Ascend in the environment overrides the config's device_target.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: bash $0 [DEVICE_ID] [MINDRECORD_DATASET_PATH] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
DEVICE_ID=$1; MINDRECORD_DIR=$2; shift 2
LOAD_CKPT=""
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then LOAD_CKPT=$1; shift; fi
mkdir -p train_log
"$PYTHON" "$REPO_ROOT/train.py" --device_id "$DEVICE_ID" "${TARGET_ARGS[@]}" \
  --mindrecord_dir "$MINDRECORD_DIR" --load_checkpoint_path "$LOAD_CKPT" "$@" 2>&1 | tee train_log/training_log.txt
