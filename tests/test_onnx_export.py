"""export.py --file_format ONNX: centerdet's writer (deploy/onnx_export.py) against MindSpore's own
forward, in onnxruntime, for CenterNet with deformable convs in both ONNX forms and the others."""
import dataclasses
import json

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

CN = "centernet_r50-dcn_8xb32-330e_coco"
CF = "centerface_mbv2_1xb16-20e_synthetic"
SIZES = ((64, 96), (96, 160))


def _randomised_checkpoint(config, overrides, path, seed, spread_heads=False):
    """Random weights everywhere, BatchNorm statistics far from identity, and DCN offset convs
    whose samples move by several pixels (~3 px, many off the map's border) under masks well away
    from 0.5: what a trained DCN does, which zero-initialised offsets would not test.
    ``spread_heads``: head weights of gain 3, so that scores differ from place to place."""
    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.models import build_model

    ms.set_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_model(load_config(config, {"cpu_kernels": "mindspore", **overrides}))
    for p in net.get_parameters():
        name, shape = p.name, p.shape
        if "conv_offset_mask" in name:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            value = (rng.normal(0, 0.5 / np.sqrt(fan_in), shape) if name.endswith("weight")
                     else np.concatenate([rng.normal(0, 3.0, 2 * shape[0] // 3), rng.normal(0, 1.5, shape[0] // 3)]))
        elif spread_heads and name.split(".")[0] in net.head_names and name.endswith("weight"):
            value = rng.normal(0, 3 / np.sqrt(np.prod(shape[1:])), shape)
        elif name.endswith(("gamma", "moving_variance")):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "moving_mean")):
            value = rng.normal(0, 0.2, shape)
        else:
            continue
        p.set_data(ms.Tensor(value.astype(np.float32)))
    ms.save_checkpoint(net, str(path))
    return net


def _offsets_move_far(net, x):
    """The largest |offset| (in pixels) the first DCN predicts for ``x``."""
    import mindspore as ms

    dcn = net.neck.deconv_layers[0]
    feat = net.backbone(ms.Tensor(x))
    return float(np.abs(dcn.conv_offset_mask(feat).asnumpy()[:, :2 * dcn.taps]).max())


def _export(config, overrides, ckpt, out, dcn):
    from centerdet.config import load_config
    from centerdet.deploy.export import export_network

    cfg = load_config(config, {**overrides, "load_checkpoint_path": str(ckpt), "file_format": "ONNX",
                               "export_name": str(out), "onnx_dcn": dcn, "input_res_test": "[64, 64]"})
    return export_network(cfg, log=lambda line: None)


def _check_against_mindspore(net, path, sizes=SIZES):
    import mindspore as ms

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    net.set_train(False)
    for h, w in sizes:
        x = np.random.default_rng(h).normal(size=(1, 3, h, w)).astype(np.float32)
        want = [o.asnumpy() for o in net(ms.Tensor(x))]
        got = session.run(None, {"input": x})
        assert [g.shape for g in got] == [o.shape for o in want]
        for g, o in zip(got, want):
            assert np.abs(g - o).max() <= 1e-4 * np.abs(o).max(), (path, h, w, np.abs(g - o).max(), np.abs(o).max())
    return model


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_dcn_centernet_runs_in_onnxruntime_in_both_forms(backbone, tmp_path):
    overrides = {"backbone": backbone, "num_classes": "6"}
    net = _randomised_checkpoint(CN, overrides, tmp_path / "dcn.ckpt", seed=len(backbone))
    assert _offsets_move_far(net, np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)) > 6
    ops = {}
    for dcn in ("deformconv", "decomposed"):
        model = _check_against_mindspore(net, _export(CN, overrides, tmp_path / "dcn.ckpt", tmp_path / dcn, dcn))
        ops[dcn] = {node.op_type for node in model.graph.node}
        assert model.opset_import[0].version == {"deformconv": 19, "decomposed": 16}[dcn]
    assert "DeformConv" in ops["deformconv"] and "GridSample" not in ops["deformconv"]
    assert "GridSample" in ops["decomposed"] and "DeformConv" not in ops["decomposed"]


@pytest.mark.parametrize("config, overrides", [(CN, {"use_dcn": "false", "backbone": "resnet18"}),
                                               (CN, {"neck": "upconv", "backbone": "resnet18"}),
                                               (CN, {"neck": "ida", "backbone": "resnet18", "use_dcn": "false"}),
                                               (CF, {})])
def test_other_networks_run_in_onnxruntime(config, overrides, tmp_path):
    net = _randomised_checkpoint(config, overrides, tmp_path / "n.ckpt", seed=1)
    model = _check_against_mindspore(net, _export(config, overrides, tmp_path / "n.ckpt", tmp_path / "n", "deformconv"))
    assert [o.name for o in model.graph.output] == list(net.head_names)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["centerdet.model"] == config.split("_")[0]


def _same_detections(a, b):
    """Rows (box, score, landmarks) of ``a`` each match a row of their own in ``b``, in any order
    (scores that tie to the last digits may come out in either order), to one unit of the JSON's
    rounding: 0.01 px, 1e-5 for the score."""
    tol = np.full(a.shape[1], 0.0101)
    tol[4] = 1.01e-5
    unused = list(range(len(b)))
    for row in a:
        j = min(unused, key=lambda j: (np.abs(b[j] - row) / tol).max())
        assert (np.abs(b[j] - row) <= tol).all(), (row, b[j])
        unused.remove(j)


def test_detect_runs_the_exported_file_in_onnxruntime(face_checkpoint, tmp_path):
    """detect --backend onnxruntime gives the MindSpore backend's detections on pictures of other
    sizes than the export's (flip test on: a batch of two); files it cannot run are one-line errors.
    Random weights: the barely trained checkpoint scores most places alike, and which of equal
    scores survive the top-k and soft-NMS then depends on the last bit of each backend's sums."""
    import cv2

    from centerdet.config import load_config
    from centerdet.deploy.export import export_network
    from centerdet.detect import detect, parse_options, split_argv
    from centerdet.engine.evaluator import load_network
    from centerdet.errors import CenterDetError

    weights = str(tmp_path / "faces.ckpt")
    _randomised_checkpoint(CF, {}, weights, seed=2, spread_heads=True)
    cfg = load_config(CF, {"load_checkpoint_path": weights, "file_format": "ONNX",
                           "export_name": str(tmp_path / "faces"), "score_thresh": "0.05", "flip_test": "true"})
    path = export_network(cfg, log=lambda line: None)
    rng = np.random.default_rng(2)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, (h, w) in {"a": (100, 120), "b": (150, 90)}.items():
        cv2.imwrite(str(photos / f"{name}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    own = parse_options(split_argv([])[1], "")
    for backend, model, out in (("mindspore", weights, "ms"), ("onnxruntime", path, "ort")):
        run_cfg = load_config(CF, {"load_checkpoint_path": model, "backend": backend, "score_thresh": "0.05",
                                   "flip_test": "true"})
        assert detect([str(photos)], run_cfg, dataclasses.replace(own, out=str(tmp_path / out)),
                      log=lambda _: None)["images"] == 2
    for name in "ab":
        a, b = (json.loads((tmp_path / o / f"{name}.json").read_text())["detections"] for o in ("ms", "ort"))
        assert len(a) == len(b) > 0
        rows = [np.array([d["box"] + [d["score"]] + sum(d["keypoints"], []) for d in dets]) for dets in (a, b)]
        _same_detections(*rows)
    for bad, words in ((face_checkpoint, "onnxruntime cannot load it"), (str(tmp_path / "none.onnx"), "file not found")):
        with pytest.raises(CenterDetError, match=words):
            load_network(load_config(CF, {"load_checkpoint_path": bad, "backend": "onnxruntime"}))
    plain = onnx.load(path)
    del plain.metadata_props[:]
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(CenterDetError, match="not an ONNX file of centerdet's export.py"):
        load_network(load_config(CF, {"load_checkpoint_path": str(tmp_path / "plain.onnx"), "backend": "onnxruntime"}))
    with pytest.raises(CenterDetError, match="holds a centerface network"):
        load_network(load_config("centernet_r18-ida_1xb16-16e_synthetic",
                                 {"load_checkpoint_path": path, "backend": "onnxruntime"}))
