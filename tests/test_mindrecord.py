"""MindRecord conversion (skip-and-count, all-or-nothing) and the MindDataset training pipeline."""
import json
import os
import shutil

import numpy as np
import pytest

from centerdet.config import load_config
from centerdet.data import mindrecord
from centerdet.data.mindrecord import convert, find_mindrecord
from centerdet.errors import CenterDetError


def copy_split(tiny_coco, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco, root)
    return root, str(root / "annotations" / "train.json"), str(root / "images" / "train")


def test_bad_images_are_skipped_and_counted(tiny_coco, tmp_path):
    root, ann, img_dir = copy_split(tiny_coco, tmp_path)
    names = sorted(os.listdir(img_dir))
    os.unlink(os.path.join(img_dir, names[0]))                       # missing
    with open(os.path.join(img_dir, names[1]), "r+b") as f:          # truncated JPEG
        f.truncate(50)
    lines = []
    written, skipped = convert(ann, img_dir, str(tmp_path / "mr"), "t.mind", log=lines.append)
    assert (written, skipped) == (10, 2)
    skips = [line for line in lines if line.startswith("skip:")]
    assert len(skips) == 2 and names[0] in skips[0] and names[1] in skips[1]
    assert "skipped 2 unreadable images" in lines[-1]
    assert find_mindrecord(str(tmp_path / "mr"), "t.mind") == [str(tmp_path / "mr" / "t.mind")]


def test_interrupted_conversion_leaves_nothing(tiny_coco, tmp_path, monkeypatch):
    root, ann, img_dir = copy_split(tiny_coco, tmp_path)
    calls = {"n": 0}
    real = mindrecord.decode_image

    def dies_midway(data, source):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(data, source)

    monkeypatch.setattr(mindrecord, "decode_image", dies_midway)
    out = tmp_path / "mr"
    with pytest.raises(KeyboardInterrupt):
        convert(ann, img_dir, str(out), "t.mind")
    assert find_mindrecord(str(out), "t.mind") == []
    assert os.listdir(out) == []  # not even the temporary folder


def test_kill_while_moving_shards_into_place_leaves_nothing_taken_as_finished(tiny_coco, tmp_path, monkeypatch):
    """Four files (2 shards + their .db) move one by one: stopped after the first three, the folder
    holds a complete-looking shard pair, which must still not count as a conversion."""
    root, ann, img_dir = copy_split(tiny_coco, tmp_path)
    out = tmp_path / "mr"
    real, moved = os.replace, []

    def dies_on_fourth(src, dst):
        if len(moved) == 3:
            raise KeyboardInterrupt
        moved.append(dst)
        return real(src, dst)

    monkeypatch.setattr(mindrecord.os, "replace", dies_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        convert(ann, img_dir, str(out), "t.mind", shards=2)
    assert len(moved) == 3 and find_mindrecord(str(out), "t.mind") == []
    monkeypatch.setattr(mindrecord.os, "replace", real)
    assert convert(ann, img_dir, str(out), "t.mind", shards=2) == (12, 0)  # a later run converts again
    assert find_mindrecord(str(out), "t.mind") == [str(out / "t.mind0"), str(out / "t.mind1")]


def test_sigkill_during_conversion_leaves_nothing(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from centerdet.data.synthetic import generate_coco

    generate_coco(str(tmp_path / "coco"), n_train=400, n_val=1, size=128, seed=1)
    out = tmp_path / "mr"
    code = ("import sys; from centerdet.data.mindrecord import convert; "
            "convert(sys.argv[1], sys.argv[2], sys.argv[3], 't.mind', shards=2)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "coco" / "annotations" / "train.json"),
                             str(tmp_path / "coco" / "images" / "train"), str(out)])
    deadline = time.time() + 120
    while not (out.is_dir() and any(n.startswith(".t.mind.partial") for n in os.listdir(out))):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.005)
    time.sleep(0.05)  # into the writing
    assert proc.poll() is None  # still converting when killed
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert find_mindrecord(str(out), "t.mind") == []


def test_no_usable_annotation_is_an_error(tmp_path):
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 10}],
                               "categories": [{"id": 1, "name": "a"}], "annotations": []}))
    with pytest.raises(CenterDetError, match="no image has a usable annotation"):
        convert(str(ann), str(tmp_path), str(tmp_path / "mr"), "t.mind")


def test_pipeline_batches_have_consistent_targets(tiny_coco, tmp_path):
    root, ann, img_dir = copy_split(tiny_coco, tmp_path)
    convert(ann, img_dir, str(tmp_path / "mr"), "t.mind", shards=2, log=lambda *a: None)
    files = find_mindrecord(str(tmp_path / "mr"), "t.mind")
    assert len(files) == 2
    from centerdet.data.pipeline import create_train_dataset

    cfg = load_config(None, {"input_res_train": "[128, 128]", "num_classes": "6", "max_objs": "16",
                             "batch_size": "4", "num_parallel_workers": "2"})
    data = create_train_dataset(files, cfg)
    assert data.get_dataset_size() == 3
    batches = list(data.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(batches) == 3
    image, hm, wh, reg, ind, mask = batches[0]
    assert image.shape == (4, 3, 128, 128) and image.dtype == np.float32
    assert hm.shape == (4, 6, 32, 32) and wh.shape == (4, 16, 2) and ind.shape == (4, 16)
    for b in range(4):
        for k in np.flatnonzero(mask[b]):
            y, x = divmod(int(ind[b, k]), 32)
            # every object's centre cell is a heatmap peak of exactly 1 in some class channel
            assert hm[b, :, y, x].max() == pytest.approx(1.0)
            assert wh[b, k].min() > 0 and 0 <= reg[b, k].min() and reg[b, k].max() < 1
    assert np.isfinite(image).all() and 0 <= hm.min() and hm.max() <= 1


def test_other_ranks_wait_for_rank_0_and_never_convert(tiny_coco, tmp_path):
    import threading

    from centerdet.engine.build import prepare_mindrecord

    root, ann, img_dir = copy_split(tiny_coco, tmp_path)
    cfg = load_config("centernet_r18-ida_1xb16-16e_synthetic",
                      {"data_dir": str(root), "mindrecord_dir": str(tmp_path / "mr")})
    lines = []
    # Rank 0's conversion lands while rank 1 polls.
    late = threading.Timer(0.3, lambda: convert(ann, img_dir, cfg.mindrecord_dir, cfg.mindrecord_prefix, log=lambda s: None))
    late.start()
    files = prepare_mindrecord(cfg, log=lines.append, rank=1, poll_seconds=0.05)
    late.join()
    assert files == find_mindrecord(cfg.mindrecord_dir, cfg.mindrecord_prefix) and files
    assert "waiting for rank 0" in lines[0] and "rank 1: reading 1 MindRecord" in lines[-1]
    assert not any("converting" in line for line in lines)
    # Arriving after rank 0 finished: no wait, same files.
    lines.clear()
    assert prepare_mindrecord(cfg, log=lines.append, rank=1) == files and len(lines) == 1


def test_mindrecord_of_another_annotation_file_is_refused(tiny_coco, tmp_path):
    from centerdet.engine.build import prepare_mindrecord

    root, ann, img_dir = copy_split(tiny_coco, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(root, other)
    cfg_path = "centernet_r18-ida_1xb16-16e_synthetic"
    mr = str(tmp_path / "mr")
    cfg = load_config(cfg_path, {"data_dir": str(root), "mindrecord_dir": mr})
    files = prepare_mindrecord(cfg, log=lambda s: None)
    assert prepare_mindrecord(cfg, log=lambda s: None) == files
    # Same MindRecord folder, another data set: an error, not a silent run on the old data.
    moved = load_config(cfg_path, {"data_dir": str(other), "mindrecord_dir": mr})
    with pytest.raises(CenterDetError, match=r"was converted from .*/coco/annotations/train\.json, not from the "
                                             r"configured .*/other/annotations/train\.json: delete"):
        prepare_mindrecord(moved, log=lambda s: None)
    # The annotation file edited after the conversion.
    data = json.loads(open(ann).read())
    data["annotations"] = data["annotations"][:-1]
    with open(ann, "w") as f:
        json.dump(data, f)
    with pytest.raises(CenterDetError, match="changed after the conversion"):
        prepare_mindrecord(cfg, log=lambda s: None)
    # Files converted by other tools carry no record: used as they are. So are they without data_dir.
    os.unlink(os.path.join(mr, f".{cfg.mindrecord_prefix}.source.json"))
    assert prepare_mindrecord(moved, log=lambda s: None) == files
