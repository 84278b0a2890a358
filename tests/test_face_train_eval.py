"""CenterFace end to end on a tiny synthetic WIDER FACE set: train.py (json and label.txt), test.py with
the model zoo's flags, eval.py, and the shell scripts."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_script

CFG = "centerface_mbv2_1xb16-20e_synthetic"
TINY = ["--config", CFG, "--input_res_train", "[64, 64]", "--input_res_test", "[96, 96]", "--batch_size", "4",
        "--num_parallel_workers", "1", "--log_interval", "1", "--warmup_steps", "2", "--head_conv", "24"]


run = run_script


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from centerdet.data.synthetic import FaceSceneOptions, generate_widerface

    root = tmp_path_factory.mktemp("faces")
    generate_widerface(str(root), 12, 6, seed=2, size=96, opts=FaceSceneOptions(min_face=10, max_face=40, max_faces=4))
    return root


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory):
    work = tmp_path_factory.mktemp("face_run")
    args = TINY + ["--data_dir", str(faces), "--mindrecord_dir", str(work / "mr"),
                   "--save_checkpoint_path", str(work / "ckpt"), "--train_steps", "4", "--save_checkpoint_steps", "3"]
    return work, run("train.py", args, work)


def test_train_logs_four_losses_and_writes_checkpoints(trained):
    work, proc = trained
    assert "mindrecord: wrote 12 images" in proc.stdout and "mobilenet_v2 (relu6) + ida neck (width 24)" in proc.stdout
    assert "step 4/4" in proc.stdout and " lm " in proc.stdout
    assert sorted(n for n in os.listdir(work / "ckpt") if n.endswith(".ckpt")) == ["centerface-1_3.ckpt", "centerface-2_4.ckpt"]
    history = json.loads((work / "ckpt" / "history.json").read_text())
    assert len(history["lm_loss"]) == 4 and (work / "ckpt" / "loss_curve.png").exists()


def test_train_from_label_txt(faces, tmp_path):
    proc = run("train.py", TINY + ["--data_dir", str(faces), "--train_ann_file", "annotations/train/label.txt",
                                   "--mindrecord_dir", str(tmp_path / "mr"), "--save_checkpoint_path",
                                   str(tmp_path / "ck"), "--train_steps", "1"], tmp_path)
    assert "mindrecord: wrote 12 images" in proc.stdout and "train: done 1 steps" in proc.stdout


def _prediction_files(pred_dir):
    return sorted(os.path.relpath(os.path.join(d, f), pred_dir) for d, _, fs in os.walk(pred_dir) for f in fs
                  if f.endswith(".txt"))


def test_test_py_with_model_zoo_flags_writes_official_files(trained, faces, tmp_path):
    work, _ = trained
    proc = run("test.py", ["--config", CFG, "--input_res_test", "[96, 96]", "--head_conv", "24",
                           "--data_dir", str(faces / "images" / "val" / "images"), "--test_model", str(work / "ckpt"),
                           "--ckpt_name", "centerface-2_4.ckpt", "--save_dir", str(tmp_path / "out"),
                           "--ground_truth_mat", str(faces / "ground_truth" / "wider_face_val.mat"),
                           "--write_landmarks", "true"], tmp_path)
    assert "test: 6/6 images" in proc.stdout and "Val AP" not in proc.stdout
    files = _prediction_files(tmp_path / "out" / "2")
    boxes = [f for f in files if not f.endswith("_landmarks.txt")]
    assert len(boxes) == 6 and len(files) == 12
    lines = (tmp_path / "out" / "2" / boxes[0]).read_text().splitlines()
    assert lines[0] == os.path.basename(boxes[0])[:-4] + ".jpg" and int(lines[1]) == len(lines) - 2 > 0
    assert all(len(line.split()) == 5 for line in lines[2:])


def test_eval_py_scores_easy_medium_hard_and_draws(trained, faces, tmp_path):
    work, _ = trained
    proc = run("eval.py", ["--config", CFG, "--input_res_test", "[96, 96]", "--head_conv", "24", "--data_dir",
                           str(faces), "--load_checkpoint_path", str(work / "ckpt" / "centerface-2_4.ckpt"),
                           "--save_result_dir", str(tmp_path / "res")], tmp_path)
    assert "Easy   Val AP:" in proc.stdout and "Hard   Val AP:" in proc.stdout
    preds, report = tmp_path / "res" / "2", tmp_path / "res" / "2_eval"
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics) >= {"easy", "medium", "hard", "iou_0.4"} and metrics["iou_thresh"] == 0.5
    assert (report / "pr_curves.png").exists() and (report / "detections.png").stat().st_size > 5000
    # the prediction tree holds event folders of prediction files only, as the official evaluation reads it
    assert all(p.is_dir() and all(f.suffix == ".txt" for f in p.iterdir()) for p in preds.iterdir())


def test_shell_scripts_train_test_eval(faces, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE_TARGET": "CPU"}

    def sh(name, *args):
        proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", name), *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    small = ["--config", CFG, "--input_res_train", "[64, 64]", "--input_res_test", "[96, 96]", "--head_conv", "24",
             "--batch_size", "4", "--num_parallel_workers", "1"]
    sh("train_standalone.sh", "0", "", str(faces), "annotations/train.json", "images/train/images", *small,
       "--train_steps", "2", "--save_checkpoint_path", str(tmp_path / "ck"), "--mindrecord_dir", str(tmp_path / "mr"))
    assert (tmp_path / "ck" / "centerface-1_2.ckpt").exists()
    # paths relative to the working directory, as the README runs the scripts
    os.symlink(faces, tmp_path / "data")
    out = sh("test.sh", "CPU", "ck", "data/images/val/images", "data/ground_truth/wider_face_val.mat", "out", "0",
             "centerface-1_2.ckpt", "--config", CFG, "--input_res_test", "[96, 96]", "--head_conv", "24")
    assert len(_prediction_files(tmp_path / "out" / "1")) == 6
    out = sh("test_and_eval.sh", "CPU", "ck", "data/images/val/images", "data/ground_truth/wider_face_val.mat",
             "save", "centerface-1_2.ckpt", "data/ground_truth", "--config", CFG,
             "--input_res_test", "[96, 96]", "--head_conv", "24")
    assert "Easy   Val AP:" in out and len(_prediction_files(tmp_path / "save" / "1")) == 6
    # test_and_eval.sh scored it already: scoring again replaces its metrics only when asked
    out = sh("eval_all.sh", str(faces / "ground_truth"), str(tmp_path / "save"), "--overwrite")
    assert out.count("Medium Val AP:") == 2  # one epoch folder, IoU 0.5 and 0.4


def test_model_zoo_select_best_loop(faces, tmp_path):
    """The CenterFace seed's loop on 3 short epochs: train with the WIDER FACE recipe (a checkpoint
    per epoch, named 0-<epoch>_<step>.ckpt) -> test_distribute.sh over the epochs -> eval_all.sh,
    which scores each epoch and names the best."""
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE_TARGET": "CPU"}

    def sh(name, *args):
        proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", name), *map(str, args)], capture_output=True,
                              text=True, cwd=tmp_path, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    small = ["--input_res_train", "[64, 64]", "--input_res_test", "[96, 96]", "--head_conv", "24",
             "--num_parallel_workers", "1", "--mindrecord_shards", "1", "--anchor_sampling", "false"]
    sh("train_standalone.sh", "0", "", faces, "annotations/train.json", "images/train/images", *small,
       "--per_batch_size", "4", "--max_epoch", "3", "--lr", "1e-3", "--mindrecord_dir", tmp_path / "mr",
       "--ckpt_path", tmp_path / "model")
    assert sorted(n for n in os.listdir(tmp_path / "model") if n.endswith(".ckpt")) == ["0-1_3.ckpt", "0-2_6.ckpt",
                                                                                        "0-3_9.ckpt"]
    (tmp_path / "save").mkdir()
    out = sh("test_distribute.sh", "CPU", tmp_path / "model", faces / "images" / "val" / "images",
             faces / "ground_truth" / "wider_face_val.mat", tmp_path / "save", "1", "3", "0", "2",
             "--input_res_test", "[96, 96]", "--head_conv", "24")
    assert "test done" in out and sorted(os.listdir(tmp_path / "save")) == ["1", "2", "3"]
    out = sh("eval_all.sh", faces / "ground_truth", tmp_path / "save")
    assert out.count("Easy   Val AP:") == 6  # three epochs, two IoU protocols each
    last = out.strip().splitlines()[-1]
    assert last.startswith("best epoch: ") and int(last.split(": ")[1]) in (1, 2, 3)
    assert "best by Hard AP (IoU 0.5): epoch" in out
