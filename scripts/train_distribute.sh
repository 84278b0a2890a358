#!/bin/bash
# Usage: bash scripts/train_distribute.sh [RANK_TABLE] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]
# Trains CenterFace on the Ascend devices of an HCCL rank table, one process per device (rank i on
# device i), logging to LOGi/training_log.txt. The device count is DEVICE_NUM from the environment,
# else the number of "device_id" entries of the rank table. Other arguments as train_standalone.sh.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "Usage: bash $0 [RANK_TABLE] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
RANK_TABLE=$1; PRETRAINED_BACKBONE=$2; DATASET=$3; ANNOTATIONS=$4; IMAGES=$5; shift 5
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
  DEVICE_ID=$i RANK_ID=$i "$PYTHON" "$REPO_ROOT/train.py" --config centerface_mbv2_8xb8-140e_widerface \
    --device_id "$i" --device_target Ascend "${TARGET_ARGS[@]}" --distribute true --device_num "$RANK_SIZE" \
    --pretrained_backbone "$PRETRAINED_BACKBONE" --data_dir "$DATASET" --train_ann_file "$ANNOTATIONS" \
    --train_img_dir "$IMAGES" --mindrecord_dir "$DATASET/mindrecord" "$@" > "LOG$i/training_log.txt" 2>&1 &
  PIDS+=("$!")
done
STATUS=0
for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done
exit "$STATUS"
