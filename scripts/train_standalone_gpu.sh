#!/bin/bash
# Usage: bash scripts/train_standalone_gpu.sh [USE_DEVICE_ID] [PRETRAINED_BACKBONE] [DATASET] [ANNOTATIONS] [IMAGES] [--key value ...]
# train_standalone.sh on one GPU (DEVICE_TARGET in the environment still wins).
set -euo pipefail
DEVICE_TARGET="${DEVICE_TARGET:-GPU}" exec bash "$(dirname "$0")/train_standalone.sh" "$@"
