"""Learning-rate schedules against hand-computed values (steps_per_epoch 2)."""
import math

import numpy as np
import pytest

from centerdet.config import load_config
from centerdet.engine.lr import build_lr


def lr(**keys):
    cfg = load_config(None, {k: str(v) for k, v in keys.items()}, model="centerface")
    return build_lr(cfg, 8, 2)


def test_multistep_with_warmup_epochs():
    # 1 warm-up epoch = 2 steps: 0.5, 1.0; then ÷10 at epoch 2 (step 4) and epoch 3 (step 6)
    np.testing.assert_allclose(lr(learning_rate=1.0, warmup_epochs=1, multi_epochs="[2, 3]", factor=10),
                               [0.5, 1, 1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)


def test_cosine_annealing_changes_once_per_epoch():
    # end + (1 - end)(1 + cos(pi e / 4)) / 2 for epochs e = 0..3, end = 0.2
    want = [0.2 + 0.8 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (0, 0, 1, 1, 2, 2, 3, 3)]
    np.testing.assert_allclose(lr(learning_rate=1.0, lr_schedule="CosineAnnealing", t_max=4, end_learning_rate=0.2),
                               want, rtol=1e-6)
    assert want[4] == pytest.approx(0.6)  # half way: the mean of start and end


def test_exponential_and_the_zoo_flag_names():
    np.testing.assert_allclose(lr(learning_rate=1.0, lr_schedule="Exponential", factor=2),
                               [1, 1, .5, .5, .25, .25, .125, .125], rtol=1e-6)
    cfg = load_config(None, {"lr_scheduler": "exponential", "lr_gamma": "0.5", "lr": "1.0"}, model="centerface")
    np.testing.assert_allclose(build_lr(cfg, 4, 2), [1, 1, .5, .5], rtol=1e-6)
