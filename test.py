"""Run a CenterFace checkpoint on the WIDER FACE val images and write the official prediction files
(SAVE_DIR/<checkpoint epoch>/<event>/<image>.txt); eval.py also scores them.

Usage, as the model zoo's test.py (without --config: the WIDER FACE recipe):
  python test.py --data_dir VAL_IMAGES --test_model CKPT_DIR --ckpt_name NAME --ground_truth_mat GT.mat --save_dir OUT
  python test.py ... --test_model CKPT_DIR --steps_per_epoch S --start A --end B [--rank R --device_num N]
    (the epochs loop * N + R + 1 for loop = A..B: checkpoints 0-<epoch>_<epoch * S>.ckpt)
--data_dir is the image folder here (as in the model zoo); --load_checkpoint_path CKPT and every
other config key work too.
"""
import centerdet  # noqa: F401  (sets the CPU oneDNN fix before MindSpore loads)
from centerdet.cli import script

main = script("test", __doc__)

if __name__ == "__main__":
    main()
