# Sourced by the launch scripts: pick the repo's python and the device target.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO_ROOT/.venv/bin/python" ]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
# DEVICE_TARGET=CPU|GPU|Ascend in the environment overrides the config's device_target.
TARGET_ARGS=()
if [ -n "${DEVICE_TARGET:-}" ]; then TARGET_ARGS=(--device_target "$DEVICE_TARGET"); fi
export ONEDNN_MAX_CPU_ISA="${ONEDNN_MAX_CPU_ISA:-AVX2}"   # fast CPU convolutions (see README)
# For msrun launches: MindSpore's C++ log at errors only, on the terminal and in <msrun log dir>/ms_log/
# (the cluster bring-up logs its connection retries and group creation as warnings); GLOG_v=2 brings
# the warnings back.
msrun_log_env() {
  export GLOG_v="${GLOG_v:-3}" GLOG_logtostderr="${GLOG_logtostderr:-0}" GLOG_stderrthreshold="${GLOG_stderrthreshold:-3}"
  export GLOG_log_dir="${GLOG_log_dir:-$PWD/$1/ms_log}"
  mkdir -p "$GLOG_log_dir"
}
