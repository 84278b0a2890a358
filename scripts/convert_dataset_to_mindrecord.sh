#!/bin/bash
# Usage: bash scripts/convert_dataset_to_mindrecord.sh [COCO_DATASET_DIR] [MINDRECORD_DATASET_DIR] [--key value ...]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: bash $0 [COCO_DATASET_DIR] [MINDRECORD_DATASET_DIR] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
DATA_DIR=$1; MINDRECORD_DIR=$2; shift 2
"$PYTHON" -m centerdet mindrecord --coco_data_dir "$DATA_DIR" --mindrecord_dir "$MINDRECORD_DIR" "$@"
