"""Every command of the model zoo's CenterNet-R50 and CenterFace READMEs (the seeds), typed as there:
the seed's script, flags and positional arguments, where only the data paths become tiny synthetic
data laid out as the seeds expect (COCO 2017 file names; WIDER FACE's annotations/images/ground_truth),
``DEVICE_TARGET=CPU`` is set where a command names Ascend or GPU, and a step limit and a tiny image
size are added. Each row asserts what the seed says the command produces.

The rows run in order in one working directory, as a user would type them (later rows read the
checkpoints earlier ones wrote); a row that cannot run without its predecessor says so by failing.

Not in the table, with the reason:
- ``python hccl_tools.py --device_num "[0,8)"``: the rank-table generator of the zoo's utilities, not
  of this repository (its output format is what the launcher rows read).
- ``cd dependency/...; python setup.py install; make``: pip builds the Cython and C++ parts.
- ``bash train_distribute.sh`` / ``bash test_distribute.sh`` without arguments: the seed's quick
  start after editing the scripts' variables; the rows pass the arguments the scripts document.
- Typos, run as intended: ``bash test_distribute GPU`` (test_distribute.sh with GPU as its first
  argument, here CPU), ``python torch_to_ms_mobilenetv2.py ...`` (the seed's file tree and its
  other command name it convert_weight_mobilenetv2.py).
- The ModelArts steps (web UI): ``--enable_modelarts True`` is a row, ending in its one-line error.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import pytest

from conftest import ROOT

WIDER = "centerface_mbv2_8xb8-140e_widerface"
CN_TINY = ["--input_res_train", "[64, 64]", "--batch_size", "4", "--input_res_test", "[64, 64]"]
CF_TINY = ["--input_res_train", "[64, 64]", "--input_res_test", "[96, 96]", "--num_parallel_workers", "1",
           "--mindrecord_shards", "1", "--anchor_sampling", "false", "--per_batch_size", "4"]
AP_LINE = " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = "


@dataclass
class Row:
    name: str
    argv: List[str]                       # as the seed types it, {placeholders} for paths
    check: Callable                       # check(output, work dir)
    expect: int = 0
    env: Dict[str, str] = field(default_factory=dict)


def _one_line_error(out, text):
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and text in errors[0] and "Traceback" not in out, out[-1500:]


def _only(pattern, work):
    found = glob.glob(os.path.join(work, pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def _ckpts(pattern, work):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(work, pattern)))


def _ascend_distributed(log_dir, error):
    def check(out, work):
        _one_line_error(open(os.path.join(work, log_dir, "training_log.txt")).read(), error)
        assert os.path.isdir(os.path.join(work, log_dir, "ms_log")) and os.path.exists(
            os.path.join(work, "distributed_cmd.sh"))
    return check


def _ap_block(out, work):
    assert out.count("Easy   Val AP: ") == 2 and "Hard   Val AP: " in out and "IoU 0.4" in out, out[-1500:]


def _wider_tree(save):
    def check(out, work):
        files = glob.glob(os.path.join(work, save, "*", "*.txt"))
        assert len(files) == 6, files
        lines = open(files[0]).read().splitlines()
        assert lines[0].endswith(".jpg") and int(lines[1]) == len(lines) - 2
    return check


CPU = {"DEVICE_TARGET": "CPU"}
ROWS = [
    # --- CenterNet-R50 ---
    Row("convert_dataset_to_mindrecord", ["bash", "scripts/convert_dataset_to_mindrecord.sh", "{coco}", "{mr}"],
        lambda out, work: ("wrote 12 images" in out and os.path.exists(os.path.join(work, "mr", "coco_det.train.mind0")))
        or pytest.fail(out)),
    Row("run_standalone_train_ascend", ["bash", "scripts/run_standalone_train_ascend.sh", "0", "{mr}",
                                        "--train_steps", "2", *CN_TINY],
        lambda out, work: [line for line in open(os.path.join(work, "train_log", "training_log.txt"))
                           if line.startswith("epoch: 1, loss: ") and "per step time" in line]
        and os.path.exists(os.path.join(work, "outputs", "default_config", "ckpt", "centernet-1_2.ckpt")) or pytest.fail(out), env=CPU),
    Row("run_distributed_train_ascend", ["bash", "scripts/run_distributed_train_ascend.sh", "{mr}", "{hccl}"],
        # hyper_parameter_config.ini turns the data sink on, as the zoo's does
        _ascend_distributed("LOG0", "data sink runs on Ascend and GPU only"), expect=1, env=CPU),
    Row("run_standalone_eval_ascend val", ["bash", "scripts/run_standalone_eval_ascend.sh", "0", "val", "{coco}",
                                           "outputs/default_config/ckpt/centernet-1_2.ckpt", *CN_TINY],
        lambda out, work: AP_LINE in out and os.path.exists(os.path.join(work, "outputs", "default_config", "results", "results.json"))
        or pytest.fail(out), env=CPU),
    Row("run_standalone_eval_ascend test", ["bash", "scripts/run_standalone_eval_ascend.sh", "0", "test", "{coco}",
                                            "outputs/default_config/ckpt/centernet-1_2.ckpt", *CN_TINY,
                                            "--overwrite", "true"],  # the val row's results folder
        lambda out, work: "test: 6 images (test)" in out and AP_LINE not in out or pytest.fail(out), env=CPU),
    Row("export MINDIR", ["python", "export.py", "--device_id", "0", "--export_format", "MINDIR", "--export_load_ckpt",
                          "outputs/default_config/ckpt/centernet-1_2.ckpt", "--export_name", "centernet", *CN_TINY],
        lambda out, work: os.path.getsize(os.path.join(work, "centernet.mindir")) > 1e6 or pytest.fail(out)),
    Row("export AIR", ["python", "export.py", "--device_id", "0", "--export_format", "AIR", "--export_load_ckpt",
                       "outputs/default_config/ckpt/centernet-1_2.ckpt", "--export_name", "centernet"],
        lambda out, work: _one_line_error(out, "AIR export needs an Ascend device"), expect=2),
    Row("run_infer_310 (CenterNet)", ["bash", "scripts/run_infer_310.sh", "centernet.mindir", "{coco}", "y", "0",
                                      *CN_TINY[-2:]],
        lambda out, work: _one_line_error(out, "ascend310_infer/main was not built")
        or os.path.exists(os.path.join(work, "preprocess_Result", "meta.json")) or pytest.fail(out), expect=1),
    Row("enable_modelarts", ["python", "train.py", "--enable_modelarts", "True"],
        lambda out, work: _one_line_error(out, "ModelArts and its OBS storage"), expect=2),
    # --- CenterFace ---
    Row("convert_weight_mobilenetv2", ["python", "convert_weight_mobilenetv2.py", "--ckpt_fn=./mobilenet_v2_key.ckpt",
                                       "--pt_fn=./mobilenet_v2-b0353104.pth", "--out_ckpt_fn=./mobilenet_v2.ckpt"],
        lambda out, work: "255 tensors converted" in out or pytest.fail(out)),
    Row("train_standalone", ["bash", "scripts/train_standalone.sh", "0", "./mobilenet_v2.ckpt", "{faces}",
                             "annotations/train.json", "images/train/images", "--max_epoch", "2", *CF_TINY],
        lambda out, work: _ckpts("device0/outputs/*/*.ckpt", work) == ["0-1_3.ckpt", "0-2_6.ckpt"]
        and "loss:" in open(os.path.join(work, "train_log", "training_log.txt")).read()
        and "pretrained backbone: loaded all" in out and "[WARNING]" not in out or pytest.fail(out), env=CPU),
    Row("train_standalone_gpu", ["bash", "scripts/train_standalone_gpu.sh", "0", "./mobilenet_v2.ckpt", "{faces}",
                                 "annotations/train.json", "images/train/images", "--max_epoch", "1", *CF_TINY],
        lambda out, work: _ckpts("train_standalone_gpu/output/*/*.ckpt", work) == ["0-1_3.ckpt"] or pytest.fail(out),
        env=CPU),
    Row("train_distribute", ["bash", "scripts/train_distribute.sh", "{hccl}", "./mobilenet_v2.ckpt", "{faces}",
                             "annotations/train.json", "images/train/images", *CF_TINY],
        _ascend_distributed("device0", "CPU ranks are started by msrun"), expect=1, env=CPU),
    Row("train_distribute_gpu", ["bash", "scripts/train_distribute_gpu.sh", "2", "./mobilenet_v2.ckpt", "{faces}",
                                 "annotations/train.json", "images/train/images", "--max_epoch", "1", *CF_TINY],
        lambda out, work: _ckpts("train_distribute_gpu/output/*/*.ckpt", work) == ["0-1_1.ckpt"]
        and "loss:" in open(_only("train_distribute_gpu/worker_0.log", work)).read() or pytest.fail(out),
        env={**CPU, "MASTER_PORT": "8239"}),
    Row("test", ["bash", "scripts/test.sh", "CPU", "{cf_model}", "{faces}/images/val/images",
                 "{faces}/ground_truth/wider_face_val.mat", "output/centerface", "0", "0-2_6.ckpt",
                 *CF_TINY[2:4]], _wider_tree("output/centerface/2")),
    Row("test_distribute", ["bash", "scripts/test_distribute.sh", "CPU", "{cf_model}", "{faces}/images/val/images",
                            "{faces}/ground_truth/wider_face_val.mat", "output/centerface", "1", "3", "0", "1",
                            *CF_TINY[2:4], "--overwrite", "true"],  # epoch 2 is the test row's
        lambda out, work: sorted(os.listdir(os.path.join(work, "output", "centerface"))) == ["1", "2"]
        or pytest.fail(out)),
    # the seed edits the prediction folder inside eval.sh; ours takes it as a second argument
    Row("eval", ["bash", "scripts/eval.sh", "{faces}/ground_truth", "output/centerface/2"],
        lambda out, work: _ap_block(out, work) or "start eval" in out or pytest.fail(out)),
    Row("eval_all", ["bash", "scripts/eval_all.sh", "{faces}/ground_truth", "output/centerface", "--overwrite"],
        lambda out, work: out.count("Easy   Val AP: ") == 4 and "best epoch: " in out or pytest.fail(out)),
    Row("test_and_eval", ["bash", "scripts/test_and_eval.sh", "CPU", "{cf_model}", "{faces}/images/val/images",
                          "{faces}/ground_truth/wider_face_val.mat", "save", "0-2_6.ckpt", "{faces}/ground_truth",
                          *CF_TINY[2:4]],
        lambda out, work: _ap_block(out, work) or _wider_tree("save/2")(out, work)),
    Row("eval.py --pred --gt again", ["python", "eval.py", "--pred", "output/centerface/2", "--gt", "{faces}/ground_truth"],
        lambda out, work: _one_line_error(out, "output/centerface/2_eval/metrics.json already holds an earlier "
                                               "run's results"), expect=2),
    Row("eval.py --pred --gt", ["python", "eval.py", "--pred", "output/centerface/2", "--gt", "{faces}/ground_truth",
                                "--overwrite"],
        lambda out, work: _ap_block(out, work) or _wider_tree("output/centerface/2")(out, work)),
    Row("export.py without the recipe", ["python", "export.py", "--ckpt_file", "{cf_ckpt}", "--file_format", "MINDIR",
                                         "--TEST_BATCH_SIZE", "1"],
        lambda out, work: _one_line_error(out, f"it holds a centerface network: add --config {WIDER}"), expect=2),
    Row("export.py MINDIR", ["python", "export.py", "--config", WIDER, "--ckpt_file", "{cf_ckpt}", "--file_format",
                             "MINDIR", "--TEST_BATCH_SIZE", "1", *CF_TINY[2:4]],
        lambda out, work: _only("outputs/*/centerface*.mindir", work) or pytest.fail(out)),
    Row("export.py AIR", ["python", "export.py", "--config", WIDER, "--ckpt_file", "{cf_ckpt}", "--file_format", "AIR",
                          "--TEST_BATCH_SIZE", "1"],
        lambda out, work: _one_line_error(out, "AIR export needs an Ascend device"), expect=2),
    Row("run_infer_310 (CenterFace, no DEVICE_ID)", ["bash", "scripts/run_infer_310.sh", "{cf_mindir}",
                                                     "{faces}/images/val/images", "save_310", "{faces}/ground_truth",
                                                     "CPU", *CF_TINY[2:4]],
        lambda out, work: _one_line_error(out, "ascend310_infer/main was not built"), expect=1),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The working directory, the data the seeds point at, and the paths the rows name."""
    from centerdet.data.synthetic import FaceSceneOptions, generate_coco, generate_widerface

    root = tmp_path_factory.mktemp("seed")
    coco = root / "coco2017"
    generate_coco(str(coco), n_train=12, n_val=6, size=128, seed=7)
    # COCO 2017's names, its 80 categories (the synthetic images use 6) and a test-dev listing
    (coco / "images" / "train").rename(coco / "train2017")
    (coco / "images" / "val").rename(coco / "val2017")
    shutil.copytree(coco / "val2017", coco / "test2017")
    for src, dst in (("train", "instances_train2017"), ("val", "instances_val2017"), ("val", "image_info_test-dev2017")):
        data = json.loads((coco / "annotations" / f"{src}.json").read_text())
        data["categories"] += [{"id": i, "name": f"unused{i}", "supercategory": "none"} for i in range(7, 81)]
        if dst.startswith("image_info"):
            data.pop("annotations")
        (coco / "annotations" / f"{dst}.json").write_text(json.dumps(data))
    faces = root / "widerface"
    generate_widerface(str(faces), 12, 6, seed=2, size=96, opts=FaceSceneOptions(min_face=10, max_face=40, max_faces=4))
    table = {"version": "1.0", "server_count": "1", "status": "completed", "server_list": [
        {"server_id": "10.0.0.1", "host_nic_ip": "reserve", "device": [
            {"device_id": "0", "device_ip": "192.98.0.0", "rank_id": "0"}]}]}
    (root / "hccl_1p.json").write_text(json.dumps(table))
    torch = pytest.importorskip("torch")
    import torch_nets

    torch.save(torch_nets.build("mobilenet_v2").state_dict(), root / "mobilenet_v2-b0353104.pth",
               _use_new_zipfile_serialization=False)
    return root


def _paths(work):
    def cf_ckpt():
        return _only("device0/outputs/*/0-2_6.ckpt", work)
    return {"coco": lambda: str(work / "coco2017"), "mr": lambda: str(work / "mr"), "faces": lambda: str(work / "widerface"),
            "hccl": lambda: str(work / "hccl_1p.json"), "cf_ckpt": cf_ckpt,
            "cf_model": lambda: os.path.dirname(cf_ckpt()), "cf_mindir": lambda: _only("outputs/*/centerface*.mindir", work)}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_seed_command(row, work):
    paths = _paths(work)
    argv = []
    for arg in row.argv:
        for key, value in paths.items():
            if "{" + key + "}" in arg:
                arg = arg.replace("{" + key + "}", value())
        argv.append(arg)
    if argv[0] == "python":
        argv = [sys.executable, os.path.join(ROOT, argv[1]), *argv[2:]]
    elif argv[0] == "bash":
        argv = ["bash", os.path.join(ROOT, argv[1]), *argv[2:]]
    env = {**os.environ, "PYTHON": sys.executable, **row.env}
    proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == row.expect, f"exit {proc.returncode}\n{out[-3000:]}"
    row.check(out, str(work))
