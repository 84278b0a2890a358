#!/bin/bash
# Usage: bash scripts/train_distribute.sh [RANK_TABLE] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]
# Trains CenterFace on the Ascend devices this server has in an HCCL rank table, one process per
# device (python -m centerdet.engine.launcher writes distributed_cmd.sh, which this runs). Logs:
# device<i>/training_log.txt; checkpoints: device0/output/<date_time>/ (the model zoo's folders).
# Other arguments as train_standalone.sh.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "Usage: bash $0 [RANK_TABLE] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
RANK_TABLE=$1; PRETRAINED_BACKBONE=$2; DATASET=$3; ANNOTATIONS=$4; IMAGES=$5; shift 5
"$PYTHON" -m centerdet.engine.launcher --run_script_dir "$REPO_ROOT/train.py" --python "$PYTHON" \
  --mindrecord_dir "$DATASET/mindrecord" --hccl_config_dir "$RANK_TABLE" --log_dir_prefix device \
  --cmd_file distributed_cmd.sh -- --config centerface_mbv2_8xb8-140e_widerface --device_target Ascend \
  "${TARGET_ARGS[@]}" --save_checkpoint_path "device0/output/$(date +%Y-%m-%d_time_%H_%M_%S)" \
  --pretrained_backbone "$PRETRAINED_BACKBONE" --data_dir "$DATASET" --train_ann_file "$ANNOTATIONS" \
  --train_img_dir "$IMAGES" "$@"
bash distributed_cmd.sh
