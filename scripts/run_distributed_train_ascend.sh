#!/bin/bash
# Usage: bash scripts/run_distributed_train_ascend.sh [MINDRECORD_DATASET_PATH] [RANK_TABLE_FILE] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]
# Trains CenterNet (default_config.yaml + scripts/ascend_distributed_launcher/hyper_parameter_config.ini)
# on the Ascend devices this server has in an HCCL rank table, one process per device: the
# launcher writes distributed_cmd.sh, which this runs. Logs: LOG<device>/training_log.txt and
# LOG<device>/ms_log/; checkpoints: LOG<device of rank 0>/ckpt_0/. batch_size is per device.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: bash $0 [MINDRECORD_DATASET_PATH] [RANK_TABLE_FILE] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
MINDRECORD_DIR=$1; RANK_TABLE=$2; shift 2
LOAD_CKPT=""
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then LOAD_CKPT=$1; shift; fi
"$PYTHON" -m centerdet.engine.launcher --run_script_dir "$REPO_ROOT/train.py" --python "$PYTHON" \
  --hyper_parameter_config_dir "$REPO_ROOT/scripts/ascend_distributed_launcher/hyper_parameter_config.ini" \
  --mindrecord_dir "$MINDRECORD_DIR" --load_checkpoint_path "$LOAD_CKPT" --hccl_config_dir "$RANK_TABLE" \
  --hccl_time_out 1200 --cmd_file distributed_cmd.sh -- --device_target Ascend "${TARGET_ARGS[@]}" "$@"
bash distributed_cmd.sh
