"""Per-step learning-rate arrays (MindSpore optimizers take them as a dynamic learning rate).

Every schedule starts with a linear warm-up (warmup_steps, plus warmup_epochs whole epochs, the
CenterFace model zoo's flag); the cosine and exponential schedules change the rate once per epoch,
as the model zoo's do.
"""
import math

import numpy as np


def warmup_factor(step, warmup_steps):
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def multi_decay(base_lr, total_steps, steps_per_epoch, warmup_steps, milestones_epochs, factor):
    """Linear warm-up, then divide by ``factor`` at each milestone epoch."""
    bounds = [m * steps_per_epoch for m in milestones_epochs]
    lr = np.empty(total_steps, np.float32)
    for i in range(total_steps):
        drops = sum(i >= b for b in bounds)
        lr[i] = base_lr * warmup_factor(i, warmup_steps) / (factor ** drops)
    return lr


def poly_decay(base_lr, end_lr, total_steps, warmup_steps, power):
    """Linear warm-up, then (base − end)·(1 − t)^power + end over the remaining steps."""
    lr = np.empty(total_steps, np.float32)
    span = max(1, total_steps - warmup_steps)
    for i in range(total_steps):
        if i < warmup_steps:
            lr[i] = base_lr * warmup_factor(i, warmup_steps)
        else:
            t = min(1.0, (i - warmup_steps) / span)
            lr[i] = (base_lr - end_lr) * (1 - t) ** power + end_lr
    return lr


def cosine_annealing(base_lr, end_lr, total_steps, steps_per_epoch, warmup_steps, t_max):
    """Linear warm-up, then per epoch e: end + (base − end)·(1 + cos(π·e / t_max)) / 2."""
    lr = np.empty(total_steps, np.float32)
    for i in range(total_steps):
        if i < warmup_steps:
            lr[i] = base_lr * warmup_factor(i, warmup_steps)
        else:
            lr[i] = end_lr + (base_lr - end_lr) * (1 + math.cos(math.pi * (i // steps_per_epoch) / t_max)) / 2
    return lr


def exponential(base_lr, total_steps, steps_per_epoch, warmup_steps, factor):
    """Linear warm-up, then divided by ``factor`` once per epoch."""
    lr = np.empty(total_steps, np.float32)
    for i in range(total_steps):
        lr[i] = base_lr * warmup_factor(i, warmup_steps) / factor ** (i // steps_per_epoch)
    return lr


def build_lr(cfg, total_steps, steps_per_epoch):
    warmup = cfg.warmup_steps + int(round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.lr_schedule == "PolyDecay":
        return poly_decay(cfg.learning_rate, cfg.end_learning_rate, total_steps, warmup, cfg.power)
    if cfg.lr_schedule == "CosineAnnealing":
        return cosine_annealing(cfg.learning_rate, cfg.end_learning_rate, total_steps, steps_per_epoch, warmup,
                                cfg.t_max or cfg.epoch_size)
    if cfg.lr_schedule == "Exponential":
        return exponential(cfg.learning_rate, total_steps, steps_per_epoch, warmup, cfg.factor)
    return multi_decay(cfg.learning_rate, total_steps, steps_per_epoch, warmup, cfg.multi_epochs, cfg.factor)
