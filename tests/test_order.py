"""The data order (data/order.py) against hand-computed plans."""
import numpy as np
import pytest

from centerdet.data.order import epoch_order, plan_steps, segments, steps_per_epoch


def test_two_devices_take_blocks_and_drop_the_remainder():
    plan = plan_steps(10, batch=2, group=2, steps=5, shuffle=False)
    # epoch 0: [0 1 | 2 3], [4 5 | 6 7], 8 and 9 dropped; epochs 1 and 2 start over
    assert plan.indices[0].tolist() == [0, 1, 4, 5, 0, 1, 4, 5, 0, 1]
    assert plan.indices[1].tolist() == [2, 3, 6, 7, 2, 3, 6, 7, 2, 3]
    assert plan.epochs.tolist() == [0, 0, 1, 1, 2] and plan.positions.tolist() == [4, 8, 4, 8, 4]
    assert segments(plan, 5) == [(0, 2), (2, 2), (4, 1)] and segments(plan, 3) == [(0, 2), (2, 1)]
    assert steps_per_epoch(10, 2, 2) == 2


def test_a_resume_on_one_device_takes_the_rest_of_the_epoch_once():
    # epoch 1 stopped after 4 of its samples on two devices: one device takes 4..9, then epoch 2
    plan = plan_steps(10, batch=2, group=1, steps=4, start=(1, 4), shuffle=False)
    assert plan.indices[0].tolist() == [4, 5, 6, 7, 8, 9, 0, 1]
    assert plan.epochs.tolist() == [1, 1, 1, 2] and plan.positions.tolist() == [6, 8, 10, 2]


def test_shuffled_epochs_are_seeded_permutations():
    first = epoch_order(12, seed=3, epoch=0, shuffle=True)
    assert sorted(first.tolist()) == list(range(12))
    assert np.array_equal(first, epoch_order(12, seed=3, epoch=0, shuffle=True))
    assert not np.array_equal(first, epoch_order(12, seed=3, epoch=1, shuffle=True))
    plan = plan_steps(12, batch=3, group=2, steps=4, seed=3)
    joined = np.concatenate([plan.indices[0][:6].reshape(2, 3), plan.indices[1][:6].reshape(2, 3)], 1)
    assert joined.reshape(-1).tolist() == first.tolist()  # epoch 0 in its order, rank 0's block first
    with pytest.raises(ValueError, match="a step takes 12 samples, more than the 10 there are"):
        plan_steps(10, batch=6, group=2, steps=1)
