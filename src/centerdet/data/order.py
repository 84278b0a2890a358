"""Which images each rank trains on at each step, as a pure function of the data position.

Epoch ``e`` visits the ``n`` samples in one seeded order (``shuffle``) or in file order. A step on
``group`` devices takes the next ``batch × group`` samples of it, rank ``r`` the ``r``-th block of
``batch``; the samples left when fewer than that remain are dropped and epoch ``e + 1`` begins. The
position is (epoch, samples of it taken), so a run resumed on another device count goes on with
the rest of the interrupted epoch, each sample once, re-sharded over the new ranks.
"""
from typing import List, NamedTuple, Tuple

import numpy as np


class Plan(NamedTuple):
    indices: List[np.ndarray]   # per rank: the sample indices of every step, in order
    epochs: np.ndarray          # the epoch each step draws from
    positions: np.ndarray       # the epoch's samples taken after each step


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def steps_per_epoch(n: int, batch: int, group: int) -> int:
    return n // (batch * group)


def plan_steps(n: int, batch: int, group: int, steps: int, start: Tuple[int, int] = (0, 0), seed: int = 0,
               shuffle: bool = True) -> Plan:
    """The next ``steps`` steps from position ``start`` = (epoch, samples of it taken)."""
    per_step = batch * group
    if per_step > n:
        raise ValueError(f"a step takes {per_step} samples, more than the {n} there are")
    epoch, position = start
    ranks = [[] for _ in range(group)]
    epochs, positions = np.empty(steps, np.int64), np.empty(steps, np.int64)
    order = epoch_order(n, seed, epoch, shuffle)
    for i in range(steps):
        if n - position < per_step:
            epoch, position = epoch + 1, 0
            order = epoch_order(n, seed, epoch, shuffle)
        taken = order[position:position + per_step]
        for r in range(group):
            ranks[r].append(taken[r * batch:(r + 1) * batch])
        position += per_step
        epochs[i], positions[i] = epoch, position
    indices = [np.concatenate(r) if r else np.empty(0, np.int64) for r in ranks]
    return Plan(indices, epochs, positions)


def segments(plan: Plan, steps: int) -> List[Tuple[int, int]]:
    """(first step, step count) of each epoch among the plan's first ``steps`` steps."""
    found, first = [], 0
    for i in range(1, steps + 1):
        if i == steps or plan.epochs[i] != plan.epochs[first]:
            found.append((first, i - first))
            first = i
    return found
