#!/bin/bash
# Usage: bash scripts/test_distribute.sh [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [DEVICE_NUM] [STEPS_PER_EPOCH] [START] [END] [--key value ...]
# Tests the checkpoints MODEL_PATH/centerface-<epoch>_<epoch*STEPS_PER_EPOCH>.ckpt of epochs START..END
# (inclusive), up to DEVICE_NUM at once on devices 0..DEVICE_NUM-1; missing checkpoints are skipped.
# Results: SAVE_PATH/<epoch>/<event>/<image>.txt; logs: test_log/test_<epoch>.txt. Other arguments as test.sh.
# Paths are taken as given, relative to the current directory (--data_dir "" stops the config's data_dir
# from prefixing them).
set -euo pipefail
if [ $# -lt 9 ]; then
  echo "Usage: bash $0 [DEVICE_TARGET] [MODEL_PATH] [DATASET] [GROUND_TRUTH_MAT] [SAVE_PATH] [DEVICE_NUM] [STEPS_PER_EPOCH] [START] [END] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
TARGET=$1; MODEL_PATH=$2; DATASET=$3; GROUND_TRUTH_MAT=$4; SAVE_PATH=$5
DEVICE_NUM=$6; STEPS_PER_EPOCH=$7; START=$8; END=$9; shift 9
mkdir -p test_log
SLOT_PID=(); SLOT_EPOCH=(); FAILED=()
finish() {  # collect the exit status of the test running on device $1
  wait "${SLOT_PID[$1]}" || FAILED+=("${SLOT_EPOCH[$1]}")
  SLOT_PID[$1]=""
}
take_slot() {  # sets SLOT to a device with no test running, waiting for one when all are busy
  while true; do
    for ((SLOT = 0; SLOT < DEVICE_NUM; SLOT++)); do
      if [ -z "${SLOT_PID[SLOT]:-}" ]; then return; fi
      if ! kill -0 "${SLOT_PID[SLOT]}" 2>/dev/null; then finish "$SLOT"; return; fi
    done
    sleep 1
  done
}
for ((epoch = START; epoch <= END; epoch++)); do
  CKPT="centerface-${epoch}_$((epoch * STEPS_PER_EPOCH)).ckpt"
  if [ ! -f "$MODEL_PATH/$CKPT" ]; then echo "skip epoch $epoch: $MODEL_PATH/$CKPT not found"; continue; fi
  take_slot
  echo "test $CKPT on device $SLOT (log: test_log/test_$epoch.txt)"
  "$PYTHON" "$REPO_ROOT/test.py" --device_target "$TARGET" --device_id "$SLOT" \
    --load_checkpoint_path "$MODEL_PATH/$CKPT" --data_dir "" --val_img_dir "$DATASET" --ground_truth_dir "$GROUND_TRUTH_MAT" \
    --save_result_dir "$SAVE_PATH" "$@" > "test_log/test_$epoch.txt" 2>&1 &
  SLOT_PID[SLOT]=$!; SLOT_EPOCH[SLOT]=$epoch
done
for ((SLOT = 0; SLOT < DEVICE_NUM; SLOT++)); do
  if [ -n "${SLOT_PID[SLOT]:-}" ]; then finish "$SLOT"; fi
done
if [ ${#FAILED[@]} -gt 0 ]; then echo "failed epochs (see test_log/): ${FAILED[*]}"; exit 1; fi
echo "test done: results in $SAVE_PATH"
