"""A third task proves the task interface: "points" (a heatmap and an offset head, no sizes) on
synthetic dots is defined here, registered, then trained, evaluated and exported through the
ordinary entry points, without a line of src/ knowing about it."""
import dataclasses
import json
import os

import cv2
import numpy as np
import pytest

import centerdet  # noqa: F401  (the oneDNN setting before mindspore loads)
from centerdet import tasks
from centerdet.cli import main
from centerdet.config import CommonConfig, field
from centerdet.evaluation import EvalImage, Metric
from centerdet.fileio import write_json
from centerdet.tasks import HeadSpec, Task

from conftest import ROOT

SIZE = 64


@dataclasses.dataclass
class PointsConfig(CommonConfig):
    model: str = "points"
    backbone: str = field("resnet18", ("resnet18",))
    neck_width: int = 32
    num_classes: int = 1
    match_radius: float = 3.0       # px: a detection this close to a dot finds it
    point_box: float = 6.0          # px: the box side drawn around a detected point


class PointMetric(Metric):
    """Recall and precision of the points scoring at least score_thresh, each dot matched once."""
    class_names = ("dot",)

    def __init__(self, cfg, out_dir, log):
        from centerdet.data.coco import DetectionDataset, split_paths

        self.cfg, self.out_dir, self.log = cfg, out_dir, log
        self.dataset = DetectionDataset(*split_paths(cfg, "val"))
        self.found = self.dots = self.kept = 0

    def images(self):
        return [EvalImage(im.id, self.dataset.image_path(im), str(im.id), im.boxes) for im in self.dataset.images]

    def update(self, image, dets):
        dots = (image.gt_boxes[:, :2] + image.gt_boxes[:, 2:4]) / 2
        points = (dets[dets[:, 4] >= self.cfg.score_thresh, :2] + dets[dets[:, 4] >= self.cfg.score_thresh, 2:4]) / 2
        free = np.ones(len(dots), bool)
        for p in points:
            d = np.where(free, np.hypot(*(dots - p).T), np.inf)
            if len(d) and d.min() <= self.cfg.match_radius:
                free[d.argmin()] = False
        self.found += int((~free).sum())
        self.dots += len(dots)
        self.kept += len(points)

    def compute(self, score=True):
        metrics = {"recall": self.found / max(self.dots, 1), "precision": self.found / max(self.kept, 1)}
        write_json(os.path.join(self.out_dir, "metrics.json"), metrics)
        self.log(f"points: recall {metrics['recall']:.3f}, precision {metrics['precision']:.3f}")
        return metrics


class PointsTask(Task):
    name = "points"
    schema = PointsConfig

    def describe(self, cfg):
        return f"{cfg.backbone} + ida neck (width {cfg.neck_width}), points"

    def build_backbone_neck(self, cfg):
        from centerdet.models.backbones import resnet
        from centerdet.models.necks import IdaUpNeck

        backbone = resnet(cfg.backbone, all_levels=True)
        return backbone, IdaUpNeck(backbone.out_channels, cfg.neck_width)

    def heads(self, cfg):
        from centerdet.losses import FocalLoss, RegL1Loss

        return [HeadSpec("hm", cfg.num_classes, FocalLoss, ("hm",), "hm_weight", heatmap=True, flip="mean",
                         bias=-2.19, small_init=False),
                HeadSpec("reg", 2, RegL1Loss, ("ind", "mask", "reg"), "off_weight")]

    def target_columns(self, cfg):
        return ("hm", "reg", "ind", "mask")

    def encode(self, target, out_size, cfg):
        from centerdet.data.targets import encode_centers

        t = encode_centers(target["boxes"], target["labels"], out_size, cfg.num_classes, cfg.max_objs)
        return {k: t[k] for k in self.target_columns(cfg)}

    def decode(self, maps, cfg):
        from centerdet.decode import peak_topk

        scores, cls, ys, xs = peak_topk(maps["hm"], cfg.K)
        cx, cy, r = xs + maps["reg"][0, ys, xs], ys + maps["reg"][1, ys, xs], cfg.point_box / cfg.down_ratio / 2
        return np.stack([cx - r, cy - r, cx + r, cy + r, scores, cls], 1).astype(np.float32)

    def metric(self, cfg, out_dir, log=print):
        return PointMetric(cfg, out_dir, log)


tasks.register(PointsTask())


def write_dots(root, split, n, seed):
    """Dark images with 1-3 bright dots of radius 3; the COCO json gives each dot a 7 px box."""
    from centerdet.data.coco import make_record, write_coco_json

    rng = np.random.default_rng(seed)
    records = []
    os.makedirs(os.path.join(root, split), exist_ok=True)
    for i in range(n):
        img = rng.integers(0, 40, (SIZE, SIZE, 3), dtype=np.uint8)
        centres = rng.uniform(8, SIZE - 8, (int(rng.integers(1, 4)), 2))
        for x, y in centres:
            cv2.circle(img, (int(round(x)), int(round(y))), 3, (255, 255, 255), -1)
        name = f"{i:04d}.png"
        cv2.imwrite(os.path.join(root, split, name), img)
        c = np.round(centres)
        records.append(make_record(i + 1, name, SIZE, SIZE, np.concatenate([c - 3.5, c + 3.5], 1)))
    write_coco_json(os.path.join(root, f"{split}.json"), records, [{"id": 1, "name": "dot"}])


def test_no_src_file_names_the_third_task():
    for folder, _, files in os.walk(os.path.join(ROOT, "src", "centerdet")):
        for name in files:
            if name.endswith((".py", ".yaml")):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    text = f.read()
                assert "PointsTask" not in text and "model: points" not in text, name


def test_points_train_eval_export_through_the_entry_points(tmp_path, capsys):
    import mindspore as ms

    data = tmp_path / "dots"
    write_dots(str(data), "train", 16, 0)
    write_dots(str(data), "val", 6, 1)
    common = ["--model", "points", "--data_dir", str(data), "--train_ann_file", "train.json", "--train_img_dir", "train",
              "--val_ann_file", "val.json", "--val_img_dir", "val", "--input_res_train", f"[{SIZE}, {SIZE}]",
              "--input_res_test", f"[{SIZE}, {SIZE}]", "--keep_res", "false", "--max_objs", "8"]
    ckpt_dir = tmp_path / "ckpt"
    assert main(["train", *common, "--mindrecord_dir", str(tmp_path / "mr"), "--mindrecord_shards", "1",
                 "--num_parallel_workers", "1", "--batch_size", "4", "--train_steps", "12", "--warmup_steps", "0",
                 "--lr_schedule", "PolyDecay", "--learning_rate", "3e-3", "--log_interval", "1",
                 "--save_checkpoint_path", str(ckpt_dir), "--save_checkpoint_steps", "12"]) == 0
    out = capsys.readouterr().out
    assert "train: points resnet18 + ida neck (width 32), points" in out and "(hm " in out and " off " in out
    history = json.loads((ckpt_dir / "history.json").read_text())
    assert set(history) == {"step", "loss", "hm_loss", "off_loss"} and history["step"][-1] == 12
    assert np.mean(history["loss"][-3:]) < np.mean(history["loss"][:3])  # it learns
    ckpt = ckpt_dir / "points-3_12.ckpt"
    names = set(ms.load_checkpoint(str(ckpt)))
    assert any(n.startswith("hm.") for n in names) and any(n.startswith("reg.") for n in names)
    assert not any(n.startswith(("wh.", "lm.")) for n in names)

    results = tmp_path / "results"
    assert main(["eval", *common, "--load_checkpoint_path", str(ckpt), "--save_result_dir", str(results),
                 "--visual_image", "true", "--score_thresh", "0.2"]) == 0
    metrics = json.loads((results / "metrics.json").read_text())
    assert set(metrics) == {"recall", "precision"} and 0 <= metrics["recall"] <= 1
    assert "points: recall" in capsys.readouterr().out
    assert len(os.listdir(results / "visual")) == 6 and (results / "detections.png").stat().st_size > 1000

    assert main(["export", *common, "--load_checkpoint_path", str(ckpt), "--export_name", str(tmp_path / "points"),
                 "--file_format", "MINDIR"]) == 0
    graph = ms.nn.GraphCell(ms.load(str(tmp_path / "points.mindir")))
    outs = graph(ms.Tensor(np.zeros((1, 3, SIZE, SIZE), np.float32)))
    assert [tuple(o.shape) for o in outs] == [(1, 1, SIZE // 4, SIZE // 4), (1, 2, SIZE // 4, SIZE // 4)]


def test_unknown_task_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "pointz"])
    assert exc.value.code == 2
