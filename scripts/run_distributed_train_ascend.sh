#!/bin/bash
# Usage: bash scripts/run_distributed_train_ascend.sh [MINDRECORD_DATASET_PATH] [RANK_TABLE_FILE] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]
# Trains CenterNet (default_config.yaml) on the Ascend devices of an HCCL rank table, one process per
# device (rank i on device i), logging to LOGi/training_log.txt. The device count is DEVICE_NUM from
# the environment, else the number of "device_id" entries of the rank table. batch_size is per device.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: bash $0 [MINDRECORD_DATASET_PATH] [RANK_TABLE_FILE] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
MINDRECORD_DIR=$1; RANK_TABLE=$2; shift 2
LOAD_CKPT=""
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then LOAD_CKPT=$1; shift; fi
if [ ! -f "$RANK_TABLE" ]; then echo "error: rank table not found: $RANK_TABLE"; exit 1; fi
export RANK_TABLE_FILE="$RANK_TABLE"
RANK_SIZE="${DEVICE_NUM:-$(grep -o '"device_id"' "$RANK_TABLE" | wc -l || true)}"
RANK_SIZE=$((RANK_SIZE))
if [ "$RANK_SIZE" -lt 1 ]; then echo "error: no \"device_id\" in $RANK_TABLE and DEVICE_NUM not set"; exit 1; fi
export RANK_SIZE
PIDS=()
for ((i = 0; i < RANK_SIZE; i++)); do
  mkdir -p "LOG$i"
  echo "start training for rank $i, device $i (log: LOG$i/training_log.txt)"
  DEVICE_ID=$i RANK_ID=$i "$PYTHON" "$REPO_ROOT/train.py" --device_id "$i" --device_target Ascend "${TARGET_ARGS[@]}" \
    --distribute true --device_num "$RANK_SIZE" --mindrecord_dir "$MINDRECORD_DIR" \
    --load_checkpoint_path "$LOAD_CKPT" "$@" > "LOG$i/training_log.txt" 2>&1 &
  PIDS+=("$!")
done
STATUS=0
for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done
exit "$STATUS"
