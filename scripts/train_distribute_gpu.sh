#!/bin/bash
# Usage: bash scripts/train_distribute_gpu.sh [DEVICE_NUM] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]
# Trains CenterFace on DEVICE_NUM GPUs of this machine with msrun (scheduler port MASTER_PORT,
# default 8118); worker logs (grep "loss:") and checkpoints go to train_distribute_gpu/ and
# train_distribute_gpu/output/<date_time>/, as in the model zoo. Other arguments as train_standalone_gpu.sh.
# DEVICE_TARGET=CPU|GPU|Ascend in the environment overrides GPU.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "Usage: bash $0 [DEVICE_NUM] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
DEVICE_NUM=$1; PRETRAINED_BACKBONE=$2; DATASET=$3; ANNOTATIONS=$4; IMAGES=$5; shift 5
PATH="$(dirname "$(command -v "$PYTHON")"):$PATH"   # msrun sits beside the python
msrun_log_env train_distribute_gpu   # MindSpore's C++ log: errors only (env.sh)
msrun --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" --master_port="${MASTER_PORT:-8118}" \
  --log_dir=train_distribute_gpu --join=True "$REPO_ROOT/train.py" --config centerface_mbv2_8xb8-140e_widerface \
  --device_target GPU "${TARGET_ARGS[@]}" --distribute true --device_num "$DEVICE_NUM" \
  --save_checkpoint_path "train_distribute_gpu/output/$(date +%Y-%m-%d_time_%H_%M_%S)" \
  --pretrained_backbone "$PRETRAINED_BACKBONE" --data_dir "$DATASET" --train_ann_file "$ANNOTATIONS" \
  --train_img_dir "$IMAGES" --mindrecord_dir "$DATASET/mindrecord" "$@"
