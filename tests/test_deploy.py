"""Deployment: export (MINDIR / AIR / ONNX), and preprocess → MINDIR batch runner → postprocess giving
exactly eval.py's detections at the same fixed input shape."""
import dataclasses
import json
import os

import numpy as np
import pytest

from conftest import run_script

CN_CONFIG = "centernet_r18-ida_1xb16-16e_synthetic"
CF_CONFIG = "centerface_mbv2_1xb16-20e_synthetic"


def _random_checkpoint(config, overrides, path, seed=0):
    """A randomly initialised network saved as a checkpoint: enough for equality checks."""
    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.models import build_model

    ms.set_seed(seed)
    net = build_model(load_config(config, overrides))
    for p in net.get_parameters():  # CenterNet sizes start near 0 (boxes that round away): give them 6 cells
        if p.name == "wh.2.bias":
            p.set_data(ms.Tensor(np.full(p.shape, 6.0, np.float32)))
    ms.save_checkpoint(net, str(path))
    return str(path)


@pytest.mark.parametrize("model", ["centernet_dcn", "centerface"])
def test_mindir_outputs_equal_the_checkpoint_network(tmp_path, model):
    import mindspore as ms
    from mindspore import nn

    from centerdet.config import load_config
    from centerdet.deploy.export import export_network
    from centerdet.engine.evaluator import load_detector

    config = CF_CONFIG if model == "centerface" else CN_CONFIG
    overrides = {"input_res_test": "[96, 128]"}
    if model != "centerface":
        overrides.update({"neck": "deconv", "use_dcn": "true", "deconv_channels": "[32, 32, 32]"})
    ckpt = _random_checkpoint(config, overrides, tmp_path / "net.ckpt")
    cfg = load_config(config, {**overrides, "load_checkpoint_path": ckpt, "export_name": str(tmp_path / "net")})
    path = export_network(cfg, log=lambda line: None)
    assert path.endswith(".mindir") and os.path.isfile(path)
    x = np.random.default_rng(0).normal(size=(1, 3, 96, 128)).astype(np.float32)
    got = [o.asnumpy() for o in nn.GraphCell(ms.load(path))(ms.Tensor(x))]
    assert len(got) == (4 if model == "centerface" else 3)
    # The file holds MindSpore's own operators: bit-identical to the checkpoint network on those,
    # and equal to rounding on centerdet's CPU kernels (what eval.py runs by default).
    for kernels, tolerance in (("mindspore", 0.0), ("onednn", 1e-5)):
        want = [o.asnumpy() for o in load_detector(dataclasses.replace(cfg, cpu_kernels=kernels),
                                                   log=lambda line: None)(ms.Tensor(x))]
        diff = max(np.abs(g - w).max() for g, w in zip(got, want))
        print(f"{model}: MINDIR vs checkpoint network on {kernels} kernels, max |diff| {diff:.2e}")
        assert diff <= tolerance


def _chain(tmp_path, config, data_args, ckpt, evaluate_args):
    """export → preprocess → python runner → postprocess, and eval.py at the fixed shape."""
    common = ["--config", config, *data_args, "--input_res_test", "[96, 96]"]
    run_script("export.py", common + ["--ckpt_file", ckpt, "--export_name", str(tmp_path / "net"),
                                      "--file_format", "mindir"], tmp_path)
    run_script("preprocess.py", common + ["--output_path", str(tmp_path / "pre")], tmp_path)
    proc = run_script(os.path.join("src", "centerdet", "deploy", "infer.py"),
                      ["--mindir", str(tmp_path / "net.mindir"), "--input_dir", str(tmp_path / "pre"),
                       "--output_dir", str(tmp_path / "out")], tmp_path)
    assert "ms/img (network, median, first call (graph compile)" in proc.stdout
    run_script("postprocess.py", common + ["--pre_result_path", str(tmp_path / "pre"), "--result_path",
                                           str(tmp_path / "out"), "--save_result_dir", str(tmp_path / "post")],
               tmp_path)
    # The exported file holds MindSpore's own operators (export.py builds on them): eval.py on the
    # same kernels makes the comparison exact, not just equal to rounding.
    run_script("eval.py", common + ["--keep_res", "false", "--flip_test", "false", "--multi_scales", "[1.0]",
                                    "--load_checkpoint_path", ckpt, "--cpu_kernels", "mindspore", *evaluate_args],
               tmp_path)


def test_coco_postprocess_equals_eval_at_the_fixed_shape(tiny_coco, tmp_path):
    ckpt = _random_checkpoint(CN_CONFIG, {}, tmp_path / "cn.ckpt")
    _chain(tmp_path, CN_CONFIG, ["--data_dir", str(tiny_coco)], ckpt, ["--save_result_dir", str(tmp_path / "eval")])
    deployed = json.loads((tmp_path / "post" / "results.json").read_text())
    reference = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert len(deployed) == 600 and deployed == reference  # 6 images × max_per_image 100, identical
    assert json.loads((tmp_path / "post" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "eval" / "metrics.json").read_text())
    acc = (tmp_path / "post" / "acc.log").read_text()
    assert acc.count("Average Precision") == 6 and acc.count("Average Recall") == 6
    meta = json.loads((tmp_path / "pre" / "meta.json").read_text())
    assert meta["input_shape"] == [1, 3, 96, 96] and meta["head_shapes"] == [[6, 24, 24], [2, 24, 24], [2, 24, 24]]
    assert os.path.getsize(tmp_path / "pre" / "images" / "000000.bin") == 3 * 96 * 96 * 4


def test_widerface_postprocess_equals_test_at_the_fixed_shape(tmp_path):
    from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface

    data = tmp_path / "faces"
    generate_widerface(str(data), 2, 5, seed=4, size=96, opts=FaceSceneOptions(min_face=10, max_face=40, max_faces=4))
    ckpt = _random_checkpoint(CF_CONFIG, {"hm_bias": "-1"}, tmp_path / "cf.ckpt")
    _chain(tmp_path, CF_CONFIG, ["--data_dir", str(data)], ckpt, ["--save_result_dir", str(tmp_path / "eval")])
    deployed_dir, reference_dir = tmp_path / "post", tmp_path / "eval" / "cf"
    files = sorted(os.path.relpath(os.path.join(d, f), deployed_dir) for d, _, fs in os.walk(deployed_dir) for f in fs)
    assert len(files) == 5
    for rel in files:
        assert (deployed_dir / rel).read_text() == (reference_dir / rel).read_text()
    ap = (tmp_path / "post_eval" / "ap.log").read_text()
    assert "Easy   Val AP" in ap and "Hard   Val AP" in ap
    assert json.loads((tmp_path / "post_eval" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "eval" / "cf_eval" / "metrics.json").read_text())


def test_export_errors_are_one_line(tmp_path):
    ckpt = _random_checkpoint(CN_CONFIG, {"neck": "deconv", "use_dcn": "true", "deconv_channels": "[32, 32, 32]"},
                              tmp_path / "dcn.ckpt")
    base = ["--config", CN_CONFIG, "--neck", "deconv", "--use_dcn", "true", "--deconv_channels", "[32, 32, 32]",
            "--load_checkpoint_path", ckpt, "--input_res_test", "[64, 64]", "--export_name", str(tmp_path / "x")]
    for flags, words in ((["--file_format", "AIR"], "AIR export needs an Ascend device"),
                         (["--file_format", "PNG"], "config key 'file_format' must be one of"),
                         (["--file_format", "ONNX", "--onnx_dcn", "plugin"], "config key 'onnx_dcn' must be one of")):
        proc = run_script("export.py", base + flags, tmp_path, expect=2)
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and words in lines[-1] and "Traceback" not in proc.stderr, proc.stderr
    assert not [f for f in os.listdir(tmp_path) if f.startswith("x.") or f.startswith(".export")]
