"""Converters for weights users bring: the torch-free .pth reader and torchvision backbones → MindSpore.

Parity is against plain-PyTorch references (tests/torch_nets.py) saved with torch.save, converted by
`python -m centerdet.convert`, loaded into our networks and run in eval mode on the same inputs.
"""
import pickle
import subprocess
import sys

import numpy as np
import pytest

import centerdet  # noqa: F401  (oneDNN setting before mindspore)
from centerdet.convert.pth import read_pth, state_dict_of
from centerdet.errors import CenterDetError


def _run_convert(args, expect=0):
    """``python -m centerdet.convert args`` with its exit status asserted."""
    proc = subprocess.run([sys.executable, "-m", "centerdet.convert", *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def _convert(tmp_path, arch, src, expect=0):
    out = tmp_path / f"{arch}.ckpt"
    return out, _run_convert(["torchvision", "--arch", arch, "--src", str(src), "--out", str(out)], expect)


# ---- the reader: errors without torch -------------------------------------------------------------

def test_missing_wrong_type_and_legacy_files_are_one_line_errors(tmp_path):
    with pytest.raises(CenterDetError, match="not found"):
        read_pth(str(tmp_path / "none.pth"))
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(CenterDetError, match="not a PyTorch checkpoint"):
        read_pth(str(text))
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CenterDetError, match="a pickle, but not a PyTorch checkpoint"):
        read_pth(str(other))
    code = tmp_path / "code.pth"  # a pickle that would run os.system: refused, never executed
    code.write_bytes(b"\x80\x02cos\nsystem\n(S'touch " + str(tmp_path / "ran").encode() + b"'\ntR.")
    with pytest.raises(CenterDetError, match="holds a os.system object"):
        read_pth(str(code))
    assert not (tmp_path / "ran").exists()


def test_cli_error_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 100)
    out, proc = _convert(tmp_path, "resnet18", bad, expect=2)
    lines = [l for l in proc.stderr.splitlines() if not l.startswith("[WARNING]")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0]
    assert not out.exists()


def test_state_dict_unwraps_training_checkpoints():
    w = np.zeros(2, np.float32)
    assert state_dict_of({"epoch": 3, "state_dict": {"a": w}}, "f") == {"a": w}
    assert state_dict_of({"model": {"a": w}}, "f") == {"a": w}
    with pytest.raises(CenterDetError, match="no tensors"):
        state_dict_of({"epoch": 3}, "f")


# ---- with torch: the reader against torch.save ------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("zipped", [True, False])
def test_reader_matches_torch_save_for_dtypes_views_and_nesting(tmp_path, zipped):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "f64": torch.randn(2, 2).double(),
           "i64": torch.tensor([1, -2, 3]), "bool": torch.tensor([True, False]), "scalar": torch.tensor(7),
           "bf16": torch.tensor([1.5, -2.25, 3.0]).bfloat16(), "transposed": base.t(), "slice": base[1:3, 2:5],
           "shared": base, "nested": {"epoch": 4, "x": torch.ones(2)}}
    path = tmp_path / "mixed.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)  # False: the pre-1.6 layout
    got = read_pth(str(path))
    for key in ("f32", "f16", "f64", "i64", "bool", "scalar", "transposed", "slice", "shared"):
        want = obj[key].numpy()
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        assert np.array_equal(got[key], want), key
    assert np.array_equal(got["bf16"], obj["bf16"].float().numpy())
    assert got["nested"]["epoch"] == 4 and np.array_equal(got["nested"]["x"], np.ones(2, np.float32))


@pytest.mark.torch
def test_truncated_file_and_foreign_objects_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pth"
    for zipped in (True, False):
        torch.save({"w": torch.randn(64, 64)}, path, _use_new_zipfile_serialization=zipped)
        data = path.read_bytes()
        cut = tmp_path / "cut.pth"
        cut.write_bytes(data[:len(data) // 2])
        with pytest.raises(CenterDetError, match="cut.pth"):
            read_pth(str(cut))
    odd = tmp_path / "odd.pth"
    torch.save({"w": torch.ones(1), "opt": torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)}, odd)
    with pytest.raises(CenterDetError, match="only tensors"):
        read_pth(str(odd))


# ---- with torch: torchvision backbones ----------------------------------------------------------------

def _ms_outputs(net, x):
    from mindspore import Tensor

    net.set_train(False)
    outs = net(Tensor(x))
    return [o.asnumpy() for o in (outs if isinstance(outs, tuple) else (outs,))]


@pytest.mark.torch
@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenet_v2"])
def test_converted_backbone_equals_torch(arch, tmp_path):
    torch = pytest.importorskip("torch")
    import mindspore as ms
    import torch_nets

    from centerdet.models.backbones import mobilenet_v2, resnet

    ref = torch_nets.build(arch)
    src = tmp_path / f"{arch}.pth"
    torch.save(ref.state_dict(), src)
    ckpt, proc = _convert(tmp_path, arch, src)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules())
    report = proc.stdout
    first_bn = "features.0.1" if arch == "mobilenet_v2" else "bn1"
    assert "0 missing" in report
    assert (f"skipped (BatchNorm step counter (MindSpore's BatchNorm has none)): {first_bn}.num_batches_tracked, "
            in report) and f"({n_bn} in all)" in report
    head = "classifier.1.weight, classifier.1.bias" if arch == "mobilenet_v2" else "fc.weight, fc.bias"
    assert f"skipped (ImageNet classification layer (detectors do not use it)): {head}\n" in report
    if arch == "mobilenet_v2":
        assert ("skipped (MobileNetV2's last 1x1 conv (320->1280), which feeds only its classifier (the detectors "
                "tap features 1-17)): features.18.0.weight, features.18.1.weight, features.18.1.bias, ... (5 in all)\n"
                in report)

    net = mobilenet_v2() if arch == "mobilenet_v2" else resnet(arch)
    params = {k[len("backbone."):]: v for k, v in ms.load_checkpoint(str(ckpt)).items() if not isinstance(v, str)}
    assert not ms.load_param_into_net(net, params, strict_load=True)[0]
    assert len(params) == len(list(net.get_parameters()))
    # skipped: one counter per BatchNorm, the classifier (and MobileNetV2's last 1x1 conv-bn, unused)
    assert len(ref.state_dict()) - len(params) == n_bn + 2 + (5 if arch == "mobilenet_v2" else 0)

    rng = np.random.default_rng(1)
    for size in (64, 96):
        x = rng.normal(size=(2, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            want = ref(torch.from_numpy(x))
        want = [w.numpy() for w in (want if isinstance(want, list) else [want])]
        got = _ms_outputs(net, x)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            assert np.abs(g - w).max() <= 1e-4 * max(1.0, np.abs(w).max()), (arch, size)


@pytest.mark.torch
def test_detectors_load_converted_backbones_without_skipping(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_nets

    from centerdet.config import load_config
    from centerdet.engine.checkpoint import load_backbone, load_weights
    from centerdet.models import build_model

    for arch, model in (("resnet18", "centernet"), ("mobilenet_v2", "centerface")):
        src = tmp_path / f"{arch}.pth"
        torch.save(torch_nets.build(arch).state_dict(), src)
        ckpt, _ = _convert(tmp_path, arch, src)
        overrides = {"backbone": arch, "num_classes": "3"} if model == "centernet" else {}
        net = build_model(load_config(None, overrides, model=model))
        if model == "centernet":  # train.py --load_checkpoint_path
            matched, skipped, missing = load_weights(net, str(ckpt), log=lambda *a: None)
            assert not skipped and not [m for m in missing if m.startswith("backbone.")]
        else:  # train.py --pretrained_backbone
            matched = load_backbone(net, str(ckpt), log=lambda *a: None)
        assert len(matched) == len([p for p in net.get_parameters() if p.name.startswith("backbone.")])


@pytest.mark.torch
def test_wrong_architecture_names_the_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_nets

    src = tmp_path / "r18.pth"
    torch.save(torch_nets.build("resnet18").state_dict(), src)
    out, proc = _convert(tmp_path, "resnet50", src, expect=2)
    assert "is not in our resnet50 backbone" in proc.stderr or "has shape" in proc.stderr
    assert not out.exists()
    out, proc = _convert(tmp_path, "resnet34", src, expect=2)
    assert "tensors of our resnet34 backbone are not in the file (first: layer1.2." in proc.stderr



# ---- with torch: CenterNet's own ctdet checkpoints ----------------------------------------------------

@pytest.mark.torch
def test_ctdet_checkpoint_converts_to_an_equal_centernet(tmp_path):
    torch = pytest.importorskip("torch")
    import mindspore as ms
    import torch_nets

    from centerdet.config import load_config
    from centerdet.models import build_model

    ref = torch_nets.build_ctdet("resnet18", num_classes=3)
    state = {"module." + k: v for k, v in ref.state_dict_like_ctdet().items()}  # saved from DataParallel
    src = tmp_path / "ctdet_resdcn18.pth"
    torch.save({"epoch": 70, "state_dict": state}, src)
    out = tmp_path / "ctdet.ckpt"
    proc = _run_convert(["centernet", "--src", str(src), "--out", str(out)])
    settings = "--backbone resnet18 --num_classes 3 --head_conv 64 --neck deconv --use_dcn true"
    assert f"evaluate it with {settings}" in proc.stdout and "0 missing" in proc.stdout

    net = build_model(load_config(None, {"backbone": "resnet18", "num_classes": "3", "use_dcn": "true"}))
    net.set_train(False)
    assert not ms.load_param_into_net(net, ms.load_checkpoint(str(out)), strict_load=True)[0]
    rng = np.random.default_rng(2)
    for size in (96, 128):
        x = rng.normal(size=(1, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            want = [w.numpy() for w in ref(torch.from_numpy(x))]
        got = _ms_outputs(net, x)
        for name, g, w in zip(("hm", "wh", "reg"), got, want):
            assert g.shape == w.shape == (1, w.shape[1], size // 4, size // 4)
            assert np.abs(g - w).max() <= 1e-4 * max(1.0, np.abs(w).max()), (name, size, np.abs(g - w).max())
        # The upsampled features, tighter (measured 2.5e-7 of their scale); reading the offsets as
        # (dx, dy) instead of (dy, dx) in the first DCN alone moves them by ~5e-4.
        with torch.no_grad():
            feat = ref.deconv_layers(ref.resnet(torch.from_numpy(x))).numpy()
        from mindspore import Tensor

        ms_feat = net.neck(net.backbone(Tensor(x))).asnumpy()
        assert np.abs(ms_feat - feat).max() <= 1e-5 * np.abs(feat).max()


@pytest.mark.torch
def test_ctdet_errors_name_the_problem(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_nets

    dla = tmp_path / "dla.pth"
    torch.save({"state_dict": {"base.base_layer.0.weight": torch.zeros(16, 3, 7, 7)}}, dla)
    proc = _run_convert(["centernet", "--src", str(dla), "--out", str(tmp_path / "x.ckpt")], expect=2)
    assert "DLA-34" in proc.stderr
    state = torch_nets.build_ctdet("resnet18", num_classes=3).state_dict_like_ctdet()
    state["hm.2.bias"] = torch.zeros(5)  # inconsistent with hm.2.weight
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    proc = _run_convert(["centernet", "--src", str(bad), "--out", str(tmp_path / "y.ckpt")], expect=2)
    assert "hm.2.bias has shape (5,) but hm.2.bias of our CenterNet" in proc.stderr
    assert not (tmp_path / "y.ckpt").exists()


# ---- round trips: MindSpore -> PyTorch layout -> MindSpore ----------------------------------------------

def _random_params(net, seed):
    from mindspore import Tensor

    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        p.set_data(Tensor(rng.normal(size=p.shape).astype(np.float32)))
    return {p.name: p.asnumpy() for p in net.get_parameters()}


@pytest.mark.parametrize("model, layout, kind", [("centernet", "ctdet", "centernet"),
                                                  ("centerface", "torchvision", "torchvision")])
def test_round_trip_through_pytorch_layout_is_exact(tmp_path, model, layout, kind):
    import mindspore as ms

    from centerdet.config import load_config
    from centerdet.models import build_model

    overrides = {"backbone": "resnet18", "num_classes": "3"} if model == "centernet" else {}
    net = build_model(load_config(None, overrides, model=model))
    params = _random_params(net, seed=3)
    ckpt = tmp_path / "ours.ckpt"
    ms.save_checkpoint(net, str(ckpt))
    pth = tmp_path / "theirs.pth"
    _run_convert(["to-torch", "--layout", layout, "--src", str(ckpt), "--out", str(pth)])
    back = tmp_path / "back.ckpt"
    args = ["--arch", "mobilenet_v2"] if kind == "torchvision" else []
    _run_convert([kind, *args, "--src", str(pth), "--out", str(back)])
    again = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(back)).items() if not isinstance(v, str)}
    want = params if kind == "centernet" else {k: v for k, v in params.items() if k.startswith("backbone.")}
    assert set(again) == set(want)
    for name, value in want.items():
        assert again[name].dtype == value.dtype and np.array_equal(again[name], value), name


@pytest.mark.torch
def test_exported_ctdet_file_is_what_pytorch_saved(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_nets

    ref = torch_nets.build_ctdet("resnet18", num_classes=3)
    src = tmp_path / "ctdet.pth"
    torch.save({"epoch": 1, "state_dict": ref.state_dict_like_ctdet()}, src)
    _run_convert(["centernet", "--src", str(src), "--out", str(tmp_path / "ms.ckpt")])
    _run_convert(["to-torch", "--layout", "ctdet", "--src", str(tmp_path / "ms.ckpt"), "--out", str(tmp_path / "b.pth")])
    back = torch.load(tmp_path / "b.pth", weights_only=True)["state_dict"]
    orig = {k: v for k, v in ref.state_dict_like_ctdet().items()
            if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
    assert set(back) == set(orig)
    assert all(torch.equal(back[k], orig[k]) for k in orig)


@pytest.mark.torch
def test_model_zoo_script_name_and_flags(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_nets

    from conftest import run_script

    src = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(torch_nets.build("mobilenet_v2").state_dict(), src, _use_new_zipfile_serialization=False)
    proc = run_script("convert_weight_mobilenetv2.py", ["--ckpt_fn=./mobilenet_v2_key.ckpt", f"--pt_fn={src}",
                                                        f"--out_ckpt_fn={tmp_path / 'mobilenet_v2.ckpt'}"], tmp_path)
    assert "255 tensors converted" in proc.stdout and (tmp_path / "mobilenet_v2.ckpt").exists()
    run_script("convert_weight_mobilenetv2.py", [f"--pt_fn={tmp_path / 'none.pth'}", "--out_ckpt_fn=x.ckpt"],
               tmp_path, expect=2)


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    # a hand-made torch.save file whose only tensor claims 8 elements of a 4-element storage
    from centerdet.convert.pth import write_pth

    path = tmp_path / "w.pth"
    write_pth({"w": np.arange(4, dtype=np.float32)}, str(path))
    import zipfile

    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    pkl = files["archive/data.pkl"]
    files["archive/data.pkl"] = pkl.replace(b"K\x04\x85", b"K\x08\x85", 1)  # size (4,) -> (8,)
    assert files["archive/data.pkl"] != pkl
    bad = tmp_path / "bad.pth"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    assert np.array_equal(read_pth(str(path))["w"], np.arange(4, dtype=np.float32))
    with pytest.raises(CenterDetError, match="does not fit its storage"):
        read_pth(str(bad))
