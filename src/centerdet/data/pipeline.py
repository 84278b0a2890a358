"""MindDataset training pipeline: MindRecord → decode → augment → encode targets → batches.

The per-sample work is a picklable callable run by MindSpore's parallel python workers, each with
its own random generator seeded from the config seed and the worker's pid; with one worker the
stream is seeded from the config seed alone, so such runs are reproducible.
"""
import os

import numpy as np

from centerdet.data.images import decode_image
from centerdet.data.mindrecord import unpack_annotation
from centerdet.data.targets import encode_centernet
from centerdet.data.transforms import normalize, train_sample

TRAIN_COLUMNS = ["image", "hm", "wh", "reg", "ind", "mask"]


def aug_params(cfg):
    return {"rand_crop": cfg.rand_crop, "scale": cfg.scale, "shift": cfg.shift, "flip_prop": cfg.flip_prop,
            "rotate": cfg.rotate, "aug_rot": cfg.aug_rot, "color_aug": cfg.color_aug, "eig_val": cfg.eig_val,
            "eig_vec": cfg.eig_vec}


class CenterNetSample:
    """(encoded image bytes, packed annotation) → network input + CenterNet targets."""

    def __init__(self, cfg, per_process_seed=True):
        self.aug = aug_params(cfg)
        self.per_process_seed = per_process_seed
        self.input_size = tuple(cfg.input_res_train)
        self.down_ratio = cfg.down_ratio
        self.num_classes = cfg.num_classes
        self.max_objs = cfg.max_objs
        self.mean, self.std = cfg.mean, cfg.std
        self.seed = cfg.seed
        self._rng = None
        self._pid = None

    def rng(self):
        if self._pid != os.getpid():
            self._rng = np.random.default_rng([self.seed, os.getpid()] if self.per_process_seed else [self.seed])
            self._pid = os.getpid()
        return self._rng

    def __call__(self, image, annotation):
        img = decode_image(np.asarray(image).tobytes(), "mindrecord sample")
        boxes, labels = unpack_annotation(annotation)
        inp, out_boxes, _ = train_sample(self.rng(), img, boxes, self.aug, self.input_size, self.down_ratio)
        out_size = (self.input_size[0] // self.down_ratio, self.input_size[1] // self.down_ratio)
        t = encode_centernet(out_boxes, labels, out_size, self.num_classes, self.max_objs)
        return normalize(inp, self.mean, self.std), t["hm"], t["wh"], t["reg"], t["ind"], t["mask"]


def create_train_dataset(files, cfg, rank=0, group_size=1, sample_fn=None):
    import mindspore.dataset as ds

    ds.config.set_seed(cfg.seed)
    data = ds.MindDataset(files, columns_list=["image", "annotation"], shuffle=cfg.do_shuffle,
                          num_shards=group_size if group_size > 1 else None,
                          shard_id=rank if group_size > 1 else None)
    workers = max(1, cfg.num_parallel_workers)
    sample_fn = sample_fn or CenterNetSample(cfg, per_process_seed=workers > 1)
    data = data.map(operations=sample_fn, input_columns=["image", "annotation"],
                    output_columns=TRAIN_COLUMNS, num_parallel_workers=workers,
                    python_multiprocessing=workers > 1)
    data = data.project(TRAIN_COLUMNS)
    return data.batch(cfg.batch_size, drop_remainder=True)
