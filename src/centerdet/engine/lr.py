"""Per-step learning-rate arrays (MindSpore optimizers take them as a dynamic learning rate)."""
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


def build_lr(cfg, total_steps, steps_per_epoch):
    if cfg.lr_schedule == "PolyDecay":
        return poly_decay(cfg.learning_rate, cfg.end_learning_rate, total_steps, cfg.warmup_steps, cfg.power)
    return multi_decay(cfg.learning_rate, total_steps, steps_per_epoch, cfg.warmup_steps, cfg.multi_epochs,
                       cfg.factor)
