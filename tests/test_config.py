"""Config schema: YAML defaults, overrides, and loud failures for unknown keys and wrong types."""
import dataclasses
import os
import subprocess
import sys

import pytest

from centerdet.cli import parse_overrides
from centerdet.config import find_config, load_config, recipe_names
from centerdet.errors import CenterDetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_default_config_holds_the_seed_defaults():
    cfg = load_config(os.path.join(ROOT, "default_config.yaml"))
    # one home for defaults: the file, the CenterNet schema and its COCO recipe give the same config
    # the runs are named for their files (and so are their folders); that is all that differs
    same = {"run_name": "", "save_checkpoint_path": "", "save_result_dir": "", "export_name": ""}
    assert (dataclasses.replace(cfg, **same) == dataclasses.replace(load_config(None), **same)
            == dataclasses.replace(load_config("centernet_r50-dcn_8xb32-330e_coco"), **same))
    assert (cfg.mindrecord_shards, cfg.num_parallel_workers, cfg.save_checkpoint_num) == (8, 8, 5)
    assert (cfg.batch_size, cfg.optimizer, cfg.lr_schedule, cfg.learning_rate) == (32, "Adam", "MultiDecay", 4.8e-4)
    assert cfg.input_res_train == [512, 512] and cfg.input_res_test == [680, 680] and cfg.keep_res
    assert (cfg.down_ratio, cfg.K, cfg.SOFT_NMS, cfg.max_objs, cfg.num_classes) == (4, 100, True, 128, 80)
    assert (cfg.hm_weight, cfg.wh_weight, cfg.off_weight) == (1.0, 0.1, 1.0)
    assert (cfg.flip_prop, cfg.shift, cfg.scale, cfg.color_aug) == (0.5, 0.1, 0.4, True)
    assert cfg.eig_val == [0.2141788, 0.01817699, 0.00341571]
    assert cfg.deconv_channels == [256, 128, 64] and cfg.head_conv == 64 and cfg.use_dcn
    assert cfg.warmup_steps == 2000 and cfg.multi_epochs == [290, 320] and cfg.epoch_size == 330


def test_empty_paths_are_named_for_the_run_under_output_dir(tmp_path):
    cfg = load_config(os.path.join(ROOT, "default_config.yaml"))
    assert (cfg.run_name, cfg.save_checkpoint_path, cfg.save_result_dir, cfg.export_name) == (
        "default_config", "outputs/default_config/ckpt", "outputs/default_config/results",
        "outputs/default_config/centernet")
    assert cfg.mindrecord_dir == "" and not cfg.overwrite  # no data_dir, no MindRecord folder to name
    cfg = load_config("centerface_mbv2_1xb16-20e_synthetic", {"data_dir": "/data/faces", "output_dir": str(tmp_path)})
    assert cfg.mindrecord_dir == "/data/faces/mindrecord"  # beside the data it is converted from
    assert cfg.save_checkpoint_path == str(tmp_path / "centerface_mbv2_1xb16-20e_synthetic" / "ckpt")
    cfg = load_config(None, {"model": "centerface", "run_name": "exp1", "save_result_dir": "mine",
                             "mindrecord_dir": "mr", "data_dir": "d"})
    assert (cfg.save_checkpoint_path, cfg.save_result_dir, cfg.mindrecord_dir) == ("outputs/exp1/ckpt", "mine", "mr")


@pytest.mark.parametrize("name", recipe_names())
def test_shipped_recipes_load_and_state_only_what_differs(name):
    """Each packaged recipe loads by name (and by path), and every key it states changes a default."""
    import yaml

    from centerdet import tasks

    path = find_config(name)
    assert load_config(name) == load_config(path) == load_config(name + ".yaml")
    with open(path) as f:
        values = yaml.safe_load(f)
    defaults = tasks.get(values["model"]).schema()
    restated = [k for k, v in values.items() if k != "model" and getattr(defaults, k) == v]
    assert not restated, f"{name} restates schema defaults: {restated}"


def test_recipe_names_describe_what_they_hold():
    assert set(recipe_names()) >= {"centernet_r50-dcn_8xb32-330e_coco", "centerface_mbv2_8xb8-140e_widerface",
                                   "centernet_r18-ida_1xb16-16e_synthetic", "centerface_mbv2_1xb16-20e_synthetic"}
    coco, wider = load_config("centernet_r50-dcn_8xb32-330e_coco"), load_config("centerface_mbv2_8xb8-140e_widerface")
    assert (coco.backbone, coco.use_dcn, coco.batch_size, coco.epoch_size) == ("resnet50", True, 32, 330)
    assert (wider.backbone, wider.batch_size, wider.epoch_size, wider.model) == ("mobilenet_v2", 8, 140, "centerface")
    with pytest.raises(CenterDetError, match="config file not found: nope.yaml .shipped recipes: .*centernet_r50"):
        load_config("nope.yaml")


def test_overrides_are_typed():
    values, path = parse_overrides(["--backbone", "resnet18", "--multi_scales=[0.5, 1.0]", "--visual_image",
                                    "true", "--data_dir", "123", "--config", "x.yaml"])
    assert path == "x.yaml"
    cfg = load_config(None, values)
    assert cfg.backbone == "resnet18" and cfg.multi_scales == [0.5, 1.0] and cfg.visual_image is True
    assert cfg.data_dir == "123"  # str keys keep the text verbatim
    assert load_config(None, {"learning_rate": "1"}).learning_rate == 1.0  # int accepted for float
    assert load_config(None, {"learning_rate": "2e-3"}).learning_rate == 0.002  # YAML 1.1 reads this as text


@pytest.mark.parametrize("overrides, key", [
    ({"bacbone": "resnet18"}, "bacbone"),
    ({"batch_size": "abc"}, "batch_size"),
    ({"batch_size": "1.5"}, "batch_size"),
    ({"learning_rate": "true"}, "learning_rate"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"visual_image": "1"}, "visual_image"),
    ({"multi_scales": "1.0"}, "multi_scales"),
    ({"multi_scales": "[a"}, "multi_scales"),
    ({"backbone": "vgg16"}, "backbone"),
    ({"input_res_train": "[500, 512]"}, "input_res_train"),
    ({"batch_size": "0"}, "batch_size"),
])
def test_bad_override_names_the_key(overrides, key):
    with pytest.raises(CenterDetError, match=f"'{key}"):
        load_config(None, overrides)


def test_bad_yaml_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: [1, 2\n")
    with pytest.raises(CenterDetError, match="not valid YAML"):
        load_config(str(bad))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("batch_sise: 4\n")
    with pytest.raises(CenterDetError, match="unknown config key 'batch_sise'.*unknown.yaml"):
        load_config(str(unknown))
    with pytest.raises(CenterDetError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(CenterDetError, match="mapping"):
        load_config(str(listy))


def test_cli_prints_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--batch_size", "many"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: config key 'batch_size' must be of type int, got 'many'"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--no_such_key", "1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown config key 'no_such_key'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_refuse_overwrite_covers_files_and_folders_with_anything_in_them(tmp_path):
    from centerdet.fileio import refuse_overwrite

    refuse_overwrite(tmp_path / "new", "x")            # nothing there
    (tmp_path / "empty").mkdir()
    refuse_overwrite(tmp_path / "empty", "x")          # an empty folder is no earlier result
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(CenterDetError, match=r"--out .*f.json already holds an earlier run's results \(file\)"):
        refuse_overwrite(tmp_path / "f.json", "--out")
    (tmp_path / "empty" / ".hidden").write_text("")
    with pytest.raises(CenterDetError, match=r"\(folder\): choose another key, or pass --overwrite true"):
        refuse_overwrite(tmp_path / "empty", "key")
    refuse_overwrite(tmp_path / "f.json", "--out", overwrite=True)
