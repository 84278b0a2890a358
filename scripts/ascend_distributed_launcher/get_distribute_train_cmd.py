"""The model zoo's launcher generator, by its name and flags (python -m centerdet.engine.launcher):

python scripts/ascend_distributed_launcher/get_distribute_train_cmd.py --run_script_dir ./train.py
    --hyper_parameter_config_dir scripts/ascend_distributed_launcher/hyper_parameter_config.ini
    --mindrecord_dir /path/mindrecord --hccl_config_dir /path/hccl.json [--load_checkpoint_path CKPT]
    [--cmd_file distributed_cmd.sh] [-- --key value ...]
then: bash distributed_cmd.sh
"""
import sys

from centerdet.engine.launcher import main

if __name__ == "__main__":
    sys.exit(main())
