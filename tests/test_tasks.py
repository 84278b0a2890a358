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
    with pytest.raises(CenterDetError, match="unknown config key 'save_dir'"):
        load_config(None, {"save_dir": "x"}, model="centernet")
    assert load_config(None, {"save_dir": "x"}, model="centerface").save_result_dir == "x"
    cfg = load_config(None, {"test_model": "m", "ckpt_name": "c.ckpt"}, model="centerface")
    assert cfg.load_checkpoint_path == os.path.join("m", "c.ckpt")
