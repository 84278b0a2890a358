#!/bin/bash
# Usage: bash scripts/run_distributed_train_cpu.sh [WORKER_NUM] [CONFIG] [--key value ...]
# Data-parallel training of either model on this machine's CPU with WORKER_NUM msrun workers
# (scheduler port MASTER_PORT, default 8118); msrun's worker logs go to LOG/, each rank's own log
# to <save_checkpoint_path>/LOG<rank>/. batch_size is per worker.
set -euo pipefail
if [ $# -lt 2 ]; then echo "Usage: bash $0 [WORKER_NUM] [CONFIG] [--key value ...]"; exit 1; fi
source "$(dirname "$0")/env.sh"
WORKER_NUM=$1; CONFIG=$2; shift 2
PATH="$(dirname "$(command -v "$PYTHON")"):$PATH"   # msrun sits beside the python
msrun_log_env LOG   # MindSpore's C++ log: errors only (env.sh)
msrun --worker_num="$WORKER_NUM" --local_worker_num="$WORKER_NUM" --master_port="${MASTER_PORT:-8118}" \
  --log_dir=LOG --join=True "$REPO_ROOT/train.py" --config "$CONFIG" --device_target CPU \
  --distribute true --device_num "$WORKER_NUM" "$@"
