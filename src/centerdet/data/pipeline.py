"""MindDataset training pipeline: MindRecord → decode → augment → the task's targets → batches.

The per-sample work is a picklable callable run by MindSpore's parallel python workers, each with
its own random generator seeded from the config seed and the worker's pid; with one worker the
stream is seeded from the config seed alone, so such runs are reproducible.
"""
import os

import numpy as np

from centerdet import tasks
from centerdet.data.images import decode_image
from centerdet.data.mindrecord import unpack_annotation
from centerdet.data.transforms import aug_params, normalize, train_sample


class TrainSample:
    """(encoded image bytes, packed annotation) → network input + the task's target columns."""

    # A per-worker line every this many samples: how many boxes the random crops cut away entirely.
    report_every = 5000

    def __init__(self, cfg, per_process_seed=True):
        self.task = tasks.of(cfg)
        self.cfg = cfg
        self.columns = ["image", *self.task.target_columns(cfg)]
        self.per_process_seed = per_process_seed
        self.input_size = tuple(cfg.input_res_train)
        self.down_ratio = cfg.down_ratio
        self.out_size = (self.input_size[0] // self.down_ratio, self.input_size[1] // self.down_ratio)
        self.aug = aug_params(cfg)
        self._rng = None
        self._pid = None
        self._tally = [0, 0, 0]  # samples, boxes, boxes dropped

    def count_dropped(self, keep):
        """Tally boxes left with no area inside the crop (they get no target); a crop setting that
        discards most objects then shows up in the log instead of silently weakening training."""
        tally = self._tally
        tally[0] += 1
        tally[1] += len(keep)
        tally[2] += len(keep) - int(np.count_nonzero(keep))
        if tally[0] % self.report_every == 0:
            print(f"augment (worker {os.getpid()}): {tally[2]} of {tally[1]} boxes dropped in {tally[0]} samples "
                  f"(zero size or outside the crop)", flush=True)

    def rng(self):
        if self._pid != os.getpid():
            self._rng = np.random.default_rng([self.cfg.seed, os.getpid()] if self.per_process_seed else [self.cfg.seed])
            self._pid = os.getpid()
        return self._rng

    def __call__(self, image, annotation):
        rng = self.rng()
        img = decode_image(np.asarray(image).tobytes(), "mindrecord sample")
        target = unpack_annotation(annotation, self.task.num_keypoints)
        if len(target["boxes"]) > self.cfg.max_objs:
            # Crowds beyond max_objs: a random subset each epoch (the model zoo samples with replacement).
            pick = rng.choice(len(target["boxes"]), self.cfg.max_objs, replace=False)
            target = {k: v[pick] for k, v in target.items()}
        inp, target, keep = train_sample(rng, img, target, self.aug, self.input_size, self.down_ratio,
                                         self.task.keypoint_flip)
        self.count_dropped(keep)
        encoded = self.task.encode({k: v[keep] for k, v in target.items()}, self.out_size, self.cfg)
        return (normalize(inp, self.cfg.mean, self.cfg.std), *(encoded[c] for c in self.columns[1:]))


def count_samples(files) -> int:
    import mindspore.dataset as ds

    return ds.MindDataset(files, columns_list=["image_id"], shuffle=False).get_dataset_size()


def create_train_dataset(files, cfg, rank=0, group_size=1, sample_fn=None, with_ids=False, plan=None, steps=None):
    """Batches of the sample columns (+ the image ids as a last column with ``with_ids``): this
    rank's part of steps ``steps`` = (first, stop) of ``plan`` (data/order.py; MindSpore's
    sampler takes at most one epoch's samples, so a plan is run one epoch at a time), by default
    the first epoch from the start."""
    import mindspore.dataset as ds

    from centerdet.data.order import plan_steps, steps_per_epoch

    if plan is None:
        n = count_samples(files)
        plan = plan_steps(n, cfg.batch_size, group_size, max(steps_per_epoch(n, cfg.batch_size, group_size), 0),
                          seed=cfg.seed, shuffle=cfg.do_shuffle)
    first, stop = steps if steps is not None else (0, len(plan.epochs))
    data = ds.MindDataset(files, columns_list=["image", "annotation", "image_id"],
                          sampler=ds.SubsetSampler(plan.indices[rank][first * cfg.batch_size:
                                                                       stop * cfg.batch_size].tolist()))
    # MindSpore refuses more workers than cores; the recipes' 8 are for the zoo's servers
    workers = max(1, min(cfg.num_parallel_workers, os.cpu_count() or 1))
    sample_fn = sample_fn or TrainSample(cfg, per_process_seed=workers > 1)
    data = data.map(operations=sample_fn, input_columns=["image", "annotation"],
                    output_columns=sample_fn.columns, num_parallel_workers=workers,
                    python_multiprocessing=workers > 1)
    data = data.project(sample_fn.columns + (["image_id"] if with_ids else []))
    return data.batch(cfg.batch_size, drop_remainder=True)
