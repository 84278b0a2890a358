"""MindDataset training pipeline: MindRecord → decode → augment → encode targets → batches.

The per-sample work is a picklable callable run by MindSpore's parallel python workers, each with
its own random generator seeded from the config seed and the worker's pid; with one worker the
stream is seeded from the config seed alone, so such runs are reproducible.
"""
import os

import numpy as np

from centerdet.data.images import decode_image
from centerdet.data.mindrecord import unpack_annotation, unpack_faces
from centerdet.data import targets
from centerdet.data.face_transforms import face_train_sample
from centerdet.data.transforms import normalize, train_sample

TRAIN_COLUMNS = ["image", "hm", "wh", "reg", "ind", "mask"]
FACE_COLUMNS = TRAIN_COLUMNS + ["wh_weight", "lm", "lm_mask"]


def aug_params(cfg):
    return {"rand_crop": cfg.rand_crop, "scale": cfg.scale, "shift": cfg.shift, "flip_prop": cfg.flip_prop,
            "rotate": cfg.rotate, "aug_rot": cfg.aug_rot, "color_aug": cfg.color_aug, "eig_val": cfg.eig_val,
            "eig_vec": cfg.eig_vec}


class _Sample:
    """Shared sample settings and the per-worker random stream: seeded by config seed + pid, or by
    the seed alone (one worker)."""

    # A per-worker line every this many samples: how many boxes the random crops cut away entirely.
    report_every = 5000

    def __init__(self, cfg, per_process_seed=True):
        self.per_process_seed = per_process_seed
        self.input_size = tuple(cfg.input_res_train)
        self.down_ratio = cfg.down_ratio
        self.out_size = (self.input_size[0] // self.down_ratio, self.input_size[1] // self.down_ratio)
        self.max_objs = cfg.max_objs
        self.mean, self.std = cfg.mean, cfg.std
        self.seed = cfg.seed
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
            self._rng = np.random.default_rng([self.seed, os.getpid()] if self.per_process_seed else [self.seed])
            self._pid = os.getpid()
        return self._rng


class CenterNetSample(_Sample):
    """(encoded image bytes, packed annotation) → network input + CenterNet targets."""

    columns = TRAIN_COLUMNS

    def __init__(self, cfg, per_process_seed=True):
        super().__init__(cfg, per_process_seed)
        self.aug = aug_params(cfg)
        self.num_classes = cfg.num_classes

    def __call__(self, image, annotation):
        img = decode_image(np.asarray(image).tobytes(), "mindrecord sample")
        boxes, labels = unpack_annotation(annotation)
        inp, out_boxes, keep = train_sample(self.rng(), img, boxes, self.aug, self.input_size, self.down_ratio)
        self.count_dropped(keep)
        t = targets.encode_centernet(out_boxes, labels, self.out_size, self.num_classes, self.max_objs)
        return normalize(inp, self.mean, self.std), t["hm"], t["wh"], t["reg"], t["ind"], t["mask"]


def face_aug_params(cfg):
    return {**aug_params(cfg), "anchor_sampling": cfg.anchor_sampling, "crop_scales": cfg.crop_scales,
            "min_landmark_area": cfg.min_landmark_area}


class CenterFaceSample(_Sample):
    """(encoded image bytes, packed faces) → network input + CenterFace targets."""

    columns = FACE_COLUMNS

    def __init__(self, cfg, per_process_seed=True):
        super().__init__(cfg, per_process_seed)
        self.aug = face_aug_params(cfg)

    def __call__(self, image, annotation):
        rng = self.rng()
        img = decode_image(np.asarray(image).tobytes(), "mindrecord sample")
        boxes, landmarks, visible = unpack_faces(annotation)
        if len(boxes) > self.max_objs:
            # Crowds beyond max_objs: a random subset each epoch (the model zoo samples with replacement).
            pick = rng.choice(len(boxes), self.max_objs, replace=False)
            boxes, landmarks, visible = boxes[pick], landmarks[pick], visible[pick]
        inp, out_boxes, out_lms, out_vis, keep = face_train_sample(
            rng, img, boxes, landmarks, visible, self.aug, self.input_size, self.down_ratio)
        self.count_dropped(keep)
        t = targets.encode_centerface(out_boxes[keep], out_lms[keep], out_vis[keep], self.out_size, self.max_objs)
        return (normalize(inp, self.mean, self.std), t["hm"], t["wh"], t["reg"], t["ind"], t["mask"],
                t["wh_weight"], t["lm"], t["lm_mask"])


SAMPLES = {"centernet": CenterNetSample, "centerface": CenterFaceSample}


def create_train_dataset(files, cfg, rank=0, group_size=1, sample_fn=None, with_ids=False):
    """Batches of the sample columns (+ the image ids as a last column with ``with_ids``); with
    ``group_size`` > 1, this rank's shard only."""
    import mindspore.dataset as ds

    ds.config.set_seed(cfg.seed)
    data = ds.MindDataset(files, columns_list=["image", "annotation", "image_id"], shuffle=cfg.do_shuffle,
                          num_shards=group_size if group_size > 1 else None,
                          shard_id=rank if group_size > 1 else None)
    workers = max(1, cfg.num_parallel_workers)
    sample_fn = sample_fn or SAMPLES[cfg.model](cfg, per_process_seed=workers > 1)
    data = data.map(operations=sample_fn, input_columns=["image", "annotation"],
                    output_columns=sample_fn.columns, num_parallel_workers=workers,
                    python_multiprocessing=workers > 1)
    data = data.project(sample_fn.columns + (["image_id"] if with_ids else []))
    return data.batch(cfg.batch_size, drop_remainder=True)
