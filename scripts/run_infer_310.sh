#!/bin/bash
# CenterNet: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATASET_PATH] [PREPROCESS_IMAGES] [DEVICE_ID] [--key value ...]
# CenterFace: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATA_PATH] [SAVE_PATH] [LABEL_PATH] [DVPP] [DEVICE_ID] [--key value ...]
# Ascend 310 batch inference of an exported MINDIR: preprocess (python, or C++ with DVPP=CPU) ->
# ascend310_infer/main -> postprocess (acc.log for CenterNet, ap.log for CenterFace, in the
# working directory). PREPROCESS_IMAGES y|n: write the inputs again or reuse preprocess_Result/.
# Each run replaces the results of the previous one (as the model zoo's does: --overwrite true).
# Needs MindSpore's C++ inference package: MINDSPORE_PATH (see ascend310_infer/CMakeLists.txt).
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [ $# -ge 5 ] && [[ "$5" =~ ^(DVPP|CPU|dvpp|cpu)$ ]]; then   # CenterFace; DEVICE_ID optional (default 0)
  MODEL=centerface; MINDIR=$1; DATA=$2; SAVE=$3; LABEL=$4; DVPP=$(echo "$5" | tr a-z A-Z); shift 5
  DEVICE_ID=0
  if [ $# -gt 0 ] && [[ "$1" != --* ]]; then DEVICE_ID=$1; shift; fi
  if [ "$DVPP" != "CPU" ]; then echo "error: DVPP preprocessing is not supported; pass CPU"; exit 1; fi
  ARGS=(--config centerface_mbv2_8xb8-140e_widerface --data_dir "$DATA" --ground_truth_dir "$LABEL"
        --save_result_dir "$SAVE")
  PREPROCESS=y
elif [ $# -ge 4 ]; then
  MODEL=centernet; MINDIR=$1; DATA=$2; PREPROCESS=$3; DEVICE_ID=$4; shift 4
  ARGS=(--data_dir "$DATA" --save_result_dir .)
else
  echo "Usage: bash $0 [MINDIR_PATH] [DATASET_PATH] [PREPROCESS_IMAGES] [DEVICE_ID]  (CenterNet)"
  echo "       bash $0 [MINDIR_PATH] [DATA_PATH] [SAVE_PATH] [LABEL_PATH] [DVPP] [DEVICE_ID]  (CenterFace)"
  exit 1
fi
if [ ! -f "$MINDIR" ]; then echo "error: MINDIR not found: $MINDIR"; exit 1; fi
if [ "$PREPROCESS" = "y" ] || [ ! -f preprocess_Result/meta.json ]; then
  "$PYTHON" "$REPO_ROOT/preprocess.py" "${ARGS[@]}" --output_path preprocess_Result --overwrite true "$@"
fi
cmake -S "$REPO_ROOT/ascend310_infer" -B build_310 > build_310.log && cmake --build build_310 -j >> build_310.log
if [ ! -x build_310/main ]; then
  echo "error: ascend310_infer/main was not built: set MINDSPORE_PATH to MindSpore's C++ inference package"; exit 1
fi
if [ "$MODEL" = centerface ]; then   # inputs made in C++ (the DVPP=CPU path), as the model zoo does
  build_310/preprocess_tool preprocess_Result preprocess_Result
fi
build_310/main "$MINDIR" preprocess_Result result_Files "$DEVICE_ID" | tee infer.log
"$PYTHON" "$REPO_ROOT/postprocess.py" "${ARGS[@]}" --pre_result_path preprocess_Result --result_path result_Files \
  --overwrite true "$@"
if [ "$MODEL" = centerface ]; then cp "${SAVE%/}_eval/ap.log" ap.log; fi   # beside the prediction tree
