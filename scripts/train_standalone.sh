#!/bin/bash
# Usage: bash scripts/train_standalone.sh [USE_DEVICE_ID] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]
# Trains CenterFace on one Ascend device. PRETRAINED_BACKBONE may be "" (train from scratch).
# ANNOTATIONS and IMAGES: absolute, or relative to DATASET. MindRecord files go to DATASET/mindrecord
# unless --mindrecord_dir is given. Checkpoints: device<USE_DEVICE_ID>/outputs/<date_time>/ (the model
# zoo's folder; CKPT_ROOT in the environment replaces device<USE_DEVICE_ID>/outputs, --ckpt_path the
# whole path). DEVICE_TARGET=CPU|GPU|Ascend in the environment overrides Ascend.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "Usage: bash $0 [USE_DEVICE_ID] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
DEVICE_ID=$1; PRETRAINED_BACKBONE=$2; DATASET=$3; ANNOTATIONS=$4; IMAGES=$5; shift 5
mkdir -p train_log
"$PYTHON" "$REPO_ROOT/train.py" --config centerface_mbv2_8xb8-140e_widerface \
  --device_id "$DEVICE_ID" --device_target Ascend "${TARGET_ARGS[@]}" \
  --save_checkpoint_path "${CKPT_ROOT:-device$DEVICE_ID/outputs}/$(date +%Y-%m-%d_time_%H_%M_%S)" \
  --pretrained_backbone "$PRETRAINED_BACKBONE" --data_dir "$DATASET" --train_ann_file "$ANNOTATIONS" \
  --train_img_dir "$IMAGES" --mindrecord_dir "$DATASET/mindrecord" "$@" 2>&1 | tee train_log/training_log.txt
