"""The task interface: one registry, tasks that state everything that differs, and nothing else in
src/ (or the top-level scripts) deciding by the model's name."""
import os
import re

import numpy as np
import pytest

import centerdet  # noqa: F401
from centerdet import tasks
from centerdet.config import load_config
from centerdet.errors import CenterDetError

from conftest import ROOT

BUILTIN = ("centernet", "centerface")
# `cfg.model == ...`, `model in (...)`, or a dict keyed by a task's name
BRANCHING = re.compile(r"\bmodel\s*(==|!=|\bin\b|\bnot in\b)|[\"'](centernet|centerface)[\"']\s*:")


def _sources():
    for name in sorted(os.listdir(ROOT)):
        if name.endswith(".py"):
            yield os.path.join(ROOT, name)
    for folder, _, files in os.walk(os.path.join(ROOT, "src", "centerdet")):
        if os.path.join("centerdet", "tasks") in folder:
            continue  # the task modules and the registry are where the differences live
        yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def test_nothing_outside_the_tasks_branches_on_the_model_name():
    hits = []
    for path in _sources():
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if BRANCHING.search(line.split("#")[0]):
                    hits.append(f"{os.path.relpath(path, ROOT)}:{lineno}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_registry_names_and_unknown_task():
    assert set(BUILTIN) <= set(tasks.names())
    with pytest.raises(CenterDetError, match=r"config key 'model' must be one of \[.*'centerface'.*\], got 'yolo'"):
        tasks.get("yolo")
    with pytest.raises(CenterDetError, match="config key 'model' must be one of"):
        load_config(None, {"model": "yolo"})


@pytest.mark.parametrize("name", BUILTIN)
def test_heads_targets_and_decode_fit_together(name):
    """Every head's loss reads columns the task encodes; encode gives exactly its columns with one
    slot layout; decode turns maps of the heads' channels into rows of 6 + 2·keypoints columns."""
    task = tasks.get(name)
    cfg = load_config(None, {"max_objs": "4"}, model=name)
    specs = task.heads(cfg)
    columns = task.target_columns(cfg)
    assert specs[0].heatmap and specs[0].name == "hm" and specs[0].channels == cfg.num_classes
    assert all(set(s.loss_inputs) <= set(columns) for s in specs)
    assert len({s.name for s in specs}) == len(specs) and len({s.part for s in specs}) == len(specs)
    k = task.num_keypoints
    target = {"boxes": np.float32([[2, 3, 9, 11], [4, 4, 4, 9]]), "labels": np.int32([0, 0]),
              "keypoints": np.full((2, k, 2), 5, np.float32), "visible": np.ones((2, k), bool)}
    encoded = task.encode(target, (16, 16), cfg)
    assert tuple(encoded) == columns
    assert encoded["mask"].tolist() == [1, 0, 0, 0]  # the zero-width box has no slot
    assert encoded["hm"].shape == (cfg.num_classes, 16, 16) and encoded["ind"][0] == 7 * 16 + 5
    rng = np.random.default_rng(0)
    maps = {s.name: rng.random((s.channels, 16, 16)).astype(np.float32) for s in specs}
    dets = task.decode(maps, cfg)
    assert dets.shape == (min(cfg.K, 16 * 16 * cfg.num_classes), 6 + 2 * k) and dets.dtype == np.float32


@pytest.mark.parametrize("name", BUILTIN)
def test_model_zoo_flags_are_the_tasks_own(name):
    task = tasks.get(name)
    for flag, key in task.aliases.items():
        assert key in load_config(None, model=name).__dataclass_fields__, (flag, key)


def test_centerface_flags_are_not_centernet_keys():
    with pytest.raises(CenterDetError, match="--save_dir is a flag of the centerface task"):
        load_config(None, {"save_dir": "x"}, model="centernet")
    assert load_config(None, {"save_dir": "x"}, model="centerface").save_result_dir == "x"


def test_centerface_train_py_flags_keep_the_model_zoos_meaning():
    zoo = {"lr": "0.002", "per_batch_size": "4", "is_distributed": "0", "max_epoch": "12", "warmup_epochs": "1",
           "lr_scheduler": "cosine_annealing", "t_max": "10", "lr_epochs": "8,10", "lr_gamma": "0.5",
           "weight_decay": "0.001", "loss_scale": "512", "annot_path": "a.json", "img_dir": "imgs",
           "resume": "start.ckpt", "ckpt_interval": "0", "optimizer": "adam", "eta_min": "1e-6"}
    cfg = load_config("centerface_mbv2_8xb8-140e_widerface", zoo)
    assert (cfg.learning_rate, cfg.batch_size, cfg.distribute, cfg.epoch_size) == (0.002, 4, False, 12)
    assert (cfg.lr_schedule, cfg.t_max, cfg.warmup_epochs, cfg.end_learning_rate) == ("CosineAnnealing", 10, 1.0, 1e-6)
    assert (cfg.multi_epochs, cfg.factor, cfg.weight_decay, cfg.loss_scale_value) == ([8, 10], 2.0, 0.001, 512.0)
    assert (cfg.train_ann_file, cfg.train_img_dir, cfg.load_checkpoint_path, cfg.resume) == ("a.json", "imgs",
                                                                                             "start.ckpt", False)
    assert (cfg.save_checkpoint_epochs, cfg.optimizer) == (1, "Adam")
    for flag, value, words in (("lr_gamma", "2", "expected a factor in (0, 1]"),
                               ("lr_scheduler", "step", "expected one of ['cosine_annealing', 'exponential'"),
                               ("lr_epochs", "ninety", "expected comma-separated epochs")):
        with pytest.raises(CenterDetError, match=re.escape(f"--{flag} {value!r}: {words}")):
            load_config(None, {flag: value}, model="centerface")


def test_test_command_takes_the_model_zoos_test_py_flags(tmp_path):
    """test.py: --data_dir is the image folder, --test_model/--ckpt_name the checkpoint, and
    --start/--end/--rank/--device_num/--steps_per_epoch the epochs of a run this rank tests."""
    from centerdet.cli import COMMANDS, parse

    cfg, paths = parse(COMMANDS["test"], ["--data_dir", "v/images", "--test_model", "m", "--ckpt_name", "c.ckpt",
                                          "--start", "1", "--end", "2", "--rank", "1", "--device_num", "4",
                                          "--steps_per_epoch", "198", "--is_distributed", "0"])
    assert (cfg.model, cfg.data_dir, cfg.val_img_dir, cfg.device_num, cfg.checkpoint_prefix) == (
        "centerface", "", "v/images", 4, "0")
    assert paths == {"test_model": "m", "ckpt_name": "c.ckpt", "start": "1", "end": "2", "rank": "1",
                     "steps_per_epoch": "198"}
    with pytest.raises(CenterDetError, match="give --data_dir or --val_img_dir, not both"):
        parse(COMMANDS["test"], ["--data_dir", "a", "--val_img_dir", "b"])
    # rank 1 of 4 tests epochs loop * 4 + 2: 6 and 10 for loops 1..2 (the one present is run, the other skipped)
    import centerdet.engine.evaluator as evaluator

    (tmp_path / "0-6_1188.ckpt").write_bytes(b"")
    seen = []
    real = evaluator.run_inference
    evaluator.run_inference = lambda c, score, log: seen.append((c.load_checkpoint_path, score))
    try:
        COMMANDS["test"].run(cfg, {**paths, "test_model": str(tmp_path)})
    finally:
        evaluator.run_inference = real
    assert seen == [(str(tmp_path / "0-6_1188.ckpt"), False)]


def test_centernet_model_zoo_switches(tmp_path):
    """--enable_eval false: results only; --enable_data_sink: one line where it cannot run; the
    ModelArts switches: one line saying why."""
    cfg = load_config(None, {"enable_eval": "false", "file_name": "net", "enable_modelarts": "False"})
    assert cfg.enable_eval is False and cfg.export_name == "net"
    with pytest.raises(CenterDetError, match="--enable_modelarts True: ModelArts and its OBS storage"):
        load_config(None, {"enable_modelarts": "True"})
    from centerdet.engine.build import build_run

    with pytest.raises(CenterDetError, match="'enable_data_sink' is true but MindSpore's data sink runs on Ascend and GPU"):
        build_run(load_config(None, {"enable_data_sink": "true", "data_sink_steps": "10",
                                     "save_checkpoint_path": str(tmp_path / "ck")}))
    assert not (tmp_path / "ck").exists()  # refused before anything is written


def test_a_flag_of_the_other_task_names_its_recipe():
    with pytest.raises(CenterDetError, match=r"--per_batch_size is a flag of the centerface task, and this run is "
                                             r"centernet: add --config centerface_mbv2_8xb8-140e_widerface"):
        load_config(None, {"per_batch_size": "8"})
    with pytest.raises(CenterDetError, match="--use_dcn is a flag of the centernet task"):
        load_config(None, {"use_dcn": "false"}, model="centerface")
    with pytest.raises(CenterDetError, match="unknown config key 'no_such_flag'"):
        load_config(None, {"no_such_flag": "1"})
