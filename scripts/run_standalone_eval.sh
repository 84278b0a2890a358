#!/bin/bash
# Usage: bash scripts/run_standalone_eval.sh [DEVICE_ID] [RUN_MODE] [DATA_DIR] [LOAD_CHECKPOINT_PATH] [--key value ...]
# RUN_MODE: val (COCO metrics) | test (results json only). DEVICE_TARGET=CPU|GPU|Ascend overrides the config.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "Usage: bash $0 [DEVICE_ID] [RUN_MODE] [DATA_DIR] [LOAD_CHECKPOINT_PATH] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
DEVICE_ID=$1; RUN_MODE=$2; DATA_DIR=$3; LOAD_CKPT=$4; shift 4
mkdir -p eval_log
"$PYTHON" "$REPO_ROOT/eval.py" --device_id "$DEVICE_ID" "${TARGET_ARGS[@]}" --run_mode "$RUN_MODE" \
  --data_dir "$DATA_DIR" --load_checkpoint_path "$LOAD_CKPT" "$@" 2>&1 | tee eval_log/eval_log.txt
