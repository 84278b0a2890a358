#!/bin/bash
# Usage: bash scripts/run_distributed_train_gpu.sh [DEVICE_NUM] [MINDRECORD_DATASET_PATH] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]
# Trains CenterNet (default_config.yaml) on DEVICE_NUM GPUs of this machine with msrun (scheduler
# port MASTER_PORT, default 8118); msrun's worker logs go to LOG/, each rank's own log to
# <save_checkpoint_path>/LOG<rank>/. batch_size is per device. DEVICE_TARGET=CPU runs the same on CPU.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: bash $0 [DEVICE_NUM] [MINDRECORD_DATASET_PATH] [LOAD_CHECKPOINT_PATH](optional) [--key value ...]"; exit 1
fi
source "$(dirname "$0")/env.sh"
DEVICE_NUM=$1; MINDRECORD_DIR=$2; shift 2
LOAD_CKPT=""
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then LOAD_CKPT=$1; shift; fi
PATH="$(dirname "$(command -v "$PYTHON")"):$PATH"   # msrun sits beside the python
msrun_log_env LOG   # MindSpore's C++ log: errors only (env.sh)
msrun --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" --master_port="${MASTER_PORT:-8118}" \
  --log_dir=LOG --join=True "$REPO_ROOT/train.py" --device_target GPU "${TARGET_ARGS[@]}" \
  --distribute true --device_num "$DEVICE_NUM" --mindrecord_dir "$MINDRECORD_DIR" \
  --load_checkpoint_path "$LOAD_CKPT" "$@"
