"""train.py / eval.py end to end on a tiny synthetic set: files, resume, NaN handling, bad paths."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, run_script

from centerdet.errors import CenterDetError

TINY = ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--input_res_train", "[64, 64]",
        "--batch_size", "4", "--num_parallel_workers", "1", "--max_objs", "16", "--log_interval", "1",
        "--warmup_steps", "2", "--mindrecord_prefix", "tiny.mind", "--use_dcn", "true"]


run = run_script


@pytest.fixture(scope="module")
def trained(tiny_coco, tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    paths = ["--data_dir", str(tiny_coco), "--mindrecord_dir", str(work / "mr"),
             "--save_checkpoint_path", str(work / "ckpt")]
    proc = run("train.py", TINY + paths + ["--train_steps", "4", "--save_checkpoint_steps", "2",
                                           "--save_checkpoint_num", "2"], work)
    return work, paths, proc


def test_a_training_run_prints_only_centerdet_lines(trained):
    """MindSpore's warnings we handled (Adam's deprecated sparse variant, one-element schedules) are
    not shown; a line in MindSpore's log format or a Python warning is a line the user cannot act on."""
    _, _, proc = trained
    lines = (proc.stdout + proc.stderr).splitlines()
    foreign = [line for line in lines if re.match(r"\[(WARNING|ERROR|INFO|CRITICAL)\] ", line) or " ME(" in line
               or re.search(r"\w+Warning: ", line) or line.startswith("Traceback")]
    assert foreign == [] and len(lines) > 5


def test_train_writes_checkpoints_history_and_curve(trained):
    work, _, proc = trained
    assert "converting" in proc.stdout and "mindrecord: wrote 12 images" in proc.stdout
    assert "step 4/4" in proc.stdout and "ETA" in proc.stdout
    # the lines the model zoo's READMEs grep for: `grep "epoch"` (CenterNet), `grep "loss:"` (CenterFace)
    epoch_lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch: ")]
    assert [line.split(",")[0] for line in epoch_lines] == ["epoch: 1", "epoch: 2"]
    assert all("loss: " in line and "per step time: " in line for line in epoch_lines)
    names = sorted(os.listdir(work / "ckpt"))
    assert [n for n in names if n.endswith(".ckpt")] == ["centernet-1_2.ckpt", "centernet-2_4.ckpt"]
    history = json.loads((work / "ckpt" / "history.json").read_text())
    assert history["step"] == [1, 2, 3, 4] and len(history["hm_loss"]) == 4
    assert (work / "ckpt" / "loss_curve.png").stat().st_size > 5000


def test_resume_continues_step_count_and_schedule(trained):
    work, paths, _ = trained
    proc = run("train.py", TINY + paths + ["--train_steps", "6", "--save_checkpoint_steps", "2",
                                           "--save_checkpoint_num", "2", "--resume", "true"], work)
    assert "resume: restored" in proc.stdout and "at step 4/6" in proc.stdout
    assert "step 5/6" in proc.stdout and "step 6/6" in proc.stdout and "step 4/6" not in proc.stdout.replace(
        "at step 4/6", "")
    import centerdet  # noqa: F401
    import mindspore as ms
    params = ms.load_checkpoint(str(work / "ckpt" / "centernet-2_6.ckpt"))
    assert int(params["global_step"].asnumpy().item()) == 6 and int(params["step"].asnumpy().item()) == 6
    history = json.loads((work / "ckpt" / "history.json").read_text())
    assert history["step"] == [1, 2, 3, 4, 5, 6]


def test_eval_writes_results_metrics_and_pictures(trained, tiny_coco):
    work, _, _ = trained
    out = work / "results"
    proc = run("eval.py", ["--config", "centernet_r18-ida_1xb16-16e_synthetic",
                           "--data_dir", str(tiny_coco), "--load_checkpoint_path",
                           str(work / "ckpt" / "centernet-2_4.ckpt"), "--save_result_dir", str(out),
                           "--visual_image", "true", "--use_dcn", "true"], work)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    results = json.loads((out / "results.json").read_text())
    assert results and {r["image_id"] for r in results} <= set(range(1, 7))
    assert (out / "detections.png").stat().st_size > 5000 and len(os.listdir(out / "visual")) == 6
    proc = run("eval.py", ["--config", "centernet_r18-ida_1xb16-16e_synthetic",
                           "--data_dir", str(tiny_coco), "--load_checkpoint_path",
                           str(work / "ckpt" / "centernet-2_4.ckpt"), "--save_result_dir", str(work / "test_out"),
                           "--run_mode", "test", "--test_ann_file", "annotations/val.json",
                           "--test_img_dir", "images/val", "--use_dcn", "true"], work)
    assert (work / "test_out" / "results.json").exists() and not (work / "test_out" / "metrics.json").exists()


def test_checkpoints_record_their_config_and_eval_names_what_differs(trained, tiny_coco):
    """The demo's trap: a checkpoint evaluated with another recipe's input size scores near zero
    without a hint. Its recorded config names what differs, and --config CKPT runs it as trained."""
    from centerdet.config import load_config
    from centerdet.engine.checkpoint import load_weights, stored_config
    from centerdet.engine.evaluator import load_detector
    from centerdet.models import build_model

    work, _, _ = trained
    ckpt = str(work / "ckpt" / "centernet-2_4.ckpt")
    stored = stored_config(ckpt)
    assert stored["model"] == "centernet" and stored["input_res_train"] == [64, 64] and stored["use_dcn"] is True
    assert stored["data_dir"] == str(tiny_coco) and stored["train_steps"] == 4
    lines = []
    cfg = load_config("centernet_r18-ida_1xb16-16e_synthetic", {"load_checkpoint_path": ckpt, "use_dcn": "true",
                                                                   "input_res_test": "[96, 96]", "keep_res": "false"})
    load_detector(cfg, log=lines.append)
    assert [line for line in lines if line.startswith("warning")] == [
        f"warning: {ckpt} was trained with input_res_test [128, 128] (this config: [96, 96]); keep_res true "
        f"(this config: false); to run it as trained: --config {ckpt}"]
    # the recorded entry is not a tensor: plain loads take every network tensor and nothing else
    matched, skipped, missing = load_weights(build_model(cfg), ckpt, log=lines.append)
    assert not skipped and not missing
    as_trained = load_config(ckpt, {"save_result_dir": str(work / "as_trained")})
    assert (as_trained.load_checkpoint_path, as_trained.use_dcn, as_trained.batch_size) == (ckpt, True, 4)
    assert as_trained.input_res_test == [128, 128] and not as_trained.resume
    lines.clear()
    load_detector(as_trained, log=lines.append)
    assert not [line for line in lines if line.startswith("warning")]
    converted = work / "no_config.ckpt"
    import mindspore as ms
    ms.save_checkpoint(build_model(cfg), str(converted))
    with pytest.raises(CenterDetError, match=r"no_config.ckpt records no training config .* give the recipe with "
                                             r"--config and the weights with --load_checkpoint_path"):
        load_config(str(converted))


def test_non_finite_loss_stops_with_a_clear_message(trained, tiny_coco):
    work, paths, _ = trained
    ckpt_dir = work / "nan_ckpt"
    args = TINY + ["--data_dir", str(tiny_coco), "--mindrecord_dir", str(work / "mr"),
                   "--save_checkpoint_path", str(ckpt_dir), "--train_steps", "12", "--save_checkpoint_steps", "1",
                   "--learning_rate", "1e30", "--warmup_steps", "0", "--max_nonfinite_steps", "2"]
    proc = run("train.py", args, work, expect=2)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: loss or gradients not finite for 3 consecutive steps")
    assert "last good checkpoint:" in last and "Traceback" not in proc.stderr
    good = last.split("last good checkpoint: ")[1]
    assert os.path.isfile(good)


def test_bad_paths_fail_before_training(tmp_path, tiny_coco):
    proc = run("train.py", TINY + ["--data_dir", str(tmp_path / "nope"), "--mindrecord_dir", str(tmp_path / "mr"),
                                   "--save_checkpoint_path", str(tmp_path / "ck")], tmp_path, expect=2)
    assert "annotation file not found" in proc.stderr and "nope" in proc.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # running as root: permissions are not enforced
        locked = tmp_path / "file_not_dir"
        locked.write_text("x")
    proc = run("train.py", TINY + ["--data_dir", str(tiny_coco), "--mindrecord_dir", str(tmp_path / "mr"),
                                   "--save_checkpoint_path", str(locked / "ck")], tmp_path, expect=2)
    assert "save_checkpoint_path is not writable" in proc.stderr
    proc = run("eval.py", ["--data_dir", str(tiny_coco), "--config",
                           "centernet_r18-ida_1xb16-16e_synthetic",
                           "--load_checkpoint_path", str(tmp_path / "missing.ckpt"),
                           "--save_result_dir", str(tmp_path / "r")], tmp_path, expect=2)
    assert "checkpoint not found" in proc.stderr


def test_shell_scripts_convert_train_eval(tiny_coco, tmp_path):
    """The launchers only set the environment and forward arguments; prove they run end to end."""
    scripts = os.path.join(ROOT, "scripts")
    cfg = ["--config", "centernet_r18-ida_1xb16-16e_synthetic"]

    def sh(name, *args):
        proc = subprocess.run(["bash", os.path.join(scripts, name), *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=600, env={**os.environ, "PYTHON": sys.executable})
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    out = sh("convert_dataset_to_mindrecord.sh", str(tiny_coco), str(tmp_path / "mr"), *cfg)
    assert "wrote 12 images" in out
    sh("run_standalone_train.sh", "0", str(tmp_path / "mr"), "", *cfg, "--train_steps", "2",
       "--input_res_train", "[64, 64]", "--batch_size", "4", "--save_checkpoint_path", str(tmp_path / "ck"))
    assert (tmp_path / "train_log" / "training_log.txt").read_text().count("train: done 2 steps") == 1
    out = sh("run_standalone_eval.sh", "0", "val", str(tiny_coco), str(tmp_path / "ck" / "centernet-1_2.ckpt"),
             *cfg, "--save_result_dir", str(tmp_path / "res"), "--eval_max_images", "2")
    assert "Average Precision" in out and (tmp_path / "res" / "metrics.json").exists()
    proc = subprocess.run(["bash", os.path.join(scripts, "run_standalone_eval.sh"), "0"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout.startswith("Usage:")


def test_an_earlier_run_is_never_overwritten_silently(trained, tiny_coco, tmp_path):
    """Training into a folder holding another run's checkpoints, evaluating into a results folder in
    use: one line naming the folder and the ways out; --overwrite true replaces them."""
    import shutil

    from centerdet.config import load_config
    from centerdet.engine.checkpoint import CheckpointManager
    from centerdet.engine.evaluator import run_inference

    work, _, _ = trained
    ckpt = tmp_path / "ckpt"
    shutil.copytree(work / "ckpt", ckpt)
    before = sorted(os.listdir(ckpt))
    earlier = CheckpointManager(str(ckpt), "centernet").list()  # 2_4, or 2_6 once the resume test ran
    args = TINY + ["--data_dir", str(tiny_coco), "--mindrecord_dir", str(work / "mr"),
                   "--save_checkpoint_path", str(ckpt), "--train_steps", "2", "--save_checkpoint_steps", "2"]
    proc = run("train.py", args, tmp_path, expect=2)
    assert proc.stderr.strip() == (
        f"error: save_checkpoint_path {ckpt} holds an earlier run (2 checkpoints, newest "
        f"{os.path.basename(earlier[-1])}): "
        f"continue it with --resume true, start over with --overwrite true, or choose another save_checkpoint_path")
    assert sorted(os.listdir(ckpt)) == before
    proc = run("train.py", args + ["--overwrite", "true"], tmp_path)
    assert f"overwrite: removed the 2 checkpoints and the history of the earlier run in {ckpt}" in proc.stdout
    assert sorted(n for n in os.listdir(ckpt) if n.endswith(".ckpt")) == ["centernet-1_2.ckpt"]
    assert json.loads((ckpt / "history.json").read_text())["step"] == [1, 2]

    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text("[]")
    cfg = load_config("centernet_r18-ida_1xb16-16e_synthetic", {
        "data_dir": str(tiny_coco), "load_checkpoint_path": str(ckpt / "centernet-1_2.ckpt"),
        "save_result_dir": str(results), "use_dcn": "true"})
    with pytest.raises(CenterDetError, match=f"save_result_dir {results} already holds an earlier run's results "
                                             r"\(folder\): choose another save_result_dir, or pass --overwrite true"):
        run_inference(cfg, log=lambda line: None)
    assert (results / "results.json").read_text() == "[]"
    from centerdet.cli import run as run_command
    with pytest.raises(CenterDetError, match=f"mindrecord_dir {work / 'mr'} already holds MindRecord 'tiny.mind': "
                                             "choose another mindrecord_dir or mindrecord_prefix, or pass --overwrite"):
        run_command("mindrecord", ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--data_dir", str(tiny_coco),
                                   "--mindrecord_dir", str(work / "mr"), "--mindrecord_prefix", "tiny.mind"])
