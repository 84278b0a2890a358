#!/bin/bash
# The model zoo's name for run_standalone_eval.sh (same arguments), on Ascend unless DEVICE_TARGET says otherwise.
DEVICE_TARGET="${DEVICE_TARGET:-Ascend}" exec bash "$(dirname "$0")/run_standalone_eval.sh" "$@"
