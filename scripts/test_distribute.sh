#!/bin/bash
# Usage: bash scripts/test_distribute.sh [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [DEVICE_NUM] [STEPS_PER_EPOCH] [START] [END] [--key value ...]
# Tests the checkpoints of a training run, as the model zoo's script: one test.py per device i in
# 0..DEVICE_NUM-1, each testing epochs loop * DEVICE_NUM + i + 1 for loop = START..END, i.e. the
# checkpoints MODEL_PATH/0-<epoch>_<epoch * STEPS_PER_EPOCH>.ckpt (missing ones are skipped).
# Results: SAVE_PATH/<epoch>/<event>/<image>.txt; logs: test_log/test_<device>.txt. Other arguments as test.sh.
set -euo pipefail
if [ $# -lt 9 ]; then
  echo "Usage: bash $0 [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [DEVICE_NUM] [STEPS_PER_EPOCH] [START] [END] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
TARGET=$1; MODEL_PATH=$2; DATASET=$3; GROUND_TRUTH_MAT=$4; SAVE_PATH=$5
DEVICE_NUM=$6; STEPS_PER_EPOCH=$7; START=$8; END=$9; shift 9
mkdir -p test_log
PIDS=()
for ((i = 0; i < DEVICE_NUM; i++)); do
  echo "start rank $i (log: test_log/test_$i.txt)"
  "$PYTHON" "$REPO_ROOT/test.py" --device_target "$TARGET" --device_id "$i" --is_distributed 0 \
    --data_dir "$DATASET" --test_model "$MODEL_PATH" --ground_truth_mat "$GROUND_TRUTH_MAT" --save_dir "$SAVE_PATH" \
    --rank "$i" --device_num "$DEVICE_NUM" --steps_per_epoch "$STEPS_PER_EPOCH" --start "$START" --end "$END" \
    "$@" > "test_log/test_$i.txt" 2>&1 &
  PIDS+=("$!")
done
STATUS=0
for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done
if [ "$STATUS" != 0 ]; then echo "a test failed (see test_log/)"; exit 1; fi
echo "test done: results in $SAVE_PATH"
