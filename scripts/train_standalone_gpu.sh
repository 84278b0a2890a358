#!/bin/bash
# Usage: bash scripts/train_standalone_gpu.sh [USE_DEVICE_ID] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]
# train_standalone.sh on one GPU (DEVICE_TARGET in the environment still wins); checkpoints in
# train_standalone_gpu/output/<date_time>/, as in the model zoo.
set -euo pipefail
CKPT_ROOT="${CKPT_ROOT:-train_standalone_gpu/output}" DEVICE_TARGET="${DEVICE_TARGET:-GPU}" exec bash "$(dirname "$0")/train_standalone.sh" "$@"
