# Sourced by the launch scripts: pick the repo's python and the device target.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO_ROOT/.venv/bin/python" ]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
# DEVICE_TARGET=CPU|GPU|Ascend in the environment overrides the config's device_target.
TARGET_ARGS=()
if [ -n "${DEVICE_TARGET:-}" ]; then TARGET_ARGS=(--device_target "$DEVICE_TARGET"); fi
export ONEDNN_MAX_CPU_ISA="${ONEDNN_MAX_CPU_ISA:-AVX2}"   # fast CPU convolutions (see README)
