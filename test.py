"""Run a CenterFace checkpoint on the WIDER FACE val images and write the official prediction files
(SAVE_RESULT_DIR/<checkpoint epoch>/<event>/<image>.txt) and pictures; eval.py also scores them.

Usage: python test.py [--config FILE|RECIPE] --load_checkpoint_path CKPT [--data_dir DIR] [--key value ...]
Without --config, the CenterFace WIDER FACE recipe. The model zoo's flags are accepted too:
--test_model DIR --ckpt_name NAME, --save_dir, --ground_truth_mat (a .mat file or its folder).
"""
import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("test", __doc__)

if __name__ == "__main__":
    main()
