"""MobileNetV2 backbone: size, torchvision key names, tap strides, residuals and a PyTorch reference.

The expected values are derived here from the architecture table, not from the module under test.
"""
import numpy as np
import pytest

import centerdet  # noqa: F401  (must precede mindspore)
import mindspore as ms
from mindspore import Tensor

from centerdet.models.backbones.mobilenetv2 import InvertedResidual, mobilenet_v2

# (t, c, n, s) from the MobileNetV2 paper / torchvision, width 1.0; stem 3→32 at stride 2.
TABLE = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
TAP_CHANNELS = (24, 32, 96, 320)
TAP_STRIDES = (4, 8, 16, 32)
BN_TO_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
               "moving_variance": "running_var"}


def blocks():
    """(cin, cout, stride, t) for features.1 .. features.17."""
    out, cin = [], 32
    for t, c, n, s in TABLE:
        for i in range(n):
            out.append((cin, c, s if i == 0 else 1, t))
            cin = c
    return out


def _in_mode(m):
    # Same as conftest's `mode`: set_device must precede the first kernel, so every test that runs
    # the network sets it, whatever order the tests are run in.
    old = ms.get_context("mode")
    ms.set_context(mode=m)
    ms.set_device("CPU")
    yield
    ms.set_context(mode=old)


@pytest.fixture
def graph():
    yield from _in_mode(ms.GRAPH_MODE)


@pytest.fixture
def pynative():
    yield from _in_mode(ms.PYNATIVE_MODE)


def torch_name(ms_name):
    head, _, leaf = ms_name.rpartition(".")
    return f"{head}.{BN_TO_TORCH.get(leaf, leaf)}"


def expected_torchvision_keys():
    """torchvision mobilenet_v2 state_dict keys of features.0..17, minus num_batches_tracked
    (MindSpore's BatchNorm has no counterpart; a converter drops it)."""
    bn = ("weight", "bias", "running_mean", "running_var")
    keys = ["features.0.0.weight"] + [f"features.0.1.{k}" for k in bn]
    for i, (_, _, _, t) in enumerate(blocks(), start=1):
        p = f"features.{i}.conv"
        if t == 1:   # [dw conv-bn-relu6], pw-linear conv, bn
            keys += [f"{p}.0.0.weight"] + [f"{p}.0.1.{k}" for k in bn]
            keys += [f"{p}.1.weight"] + [f"{p}.2.{k}" for k in bn]
        else:        # [pw conv-bn-relu6], [dw conv-bn-relu6], pw-linear conv, bn
            for j in (0, 1):
                keys += [f"{p}.{j}.0.weight"] + [f"{p}.{j}.1.{k}" for k in bn]
            keys += [f"{p}.2.weight"] + [f"{p}.3.{k}" for k in bn]
    return keys


def test_parameter_count_matches_torchvision_features_0_to_17():
    # Per-layer formula: conv weights cin·cout·k² (depthwise: c·k²), BN gamma + beta = 2·c.
    total = 3 * 32 * 9 + 2 * 32
    for cin, cout, _, t in blocks():
        hidden = cin * t
        if t != 1:
            total += cin * hidden + 2 * hidden
        total += hidden * 9 + 2 * hidden + hidden * cout + 2 * cout
    # torchvision's published 3,504,872 minus features.18 (320·1280 + 2·1280) and the classifier.
    assert total == 3_504_872 - (320 * 1280 + 2 * 1280) - (1280 * 1000 + 1000) == 1_811_712
    net = mobilenet_v2()
    assert sum(int(np.prod(p.shape)) for p in net.trainable_params()) == total


def test_parameter_names_map_onto_torchvision_keys():
    names = [torch_name(p.name) for p in mobilenet_v2().get_parameters()]
    expected = expected_torchvision_keys()
    assert len(names) == len(set(names)) == len(expected) == 255
    assert set(names) == set(expected)


@pytest.mark.parametrize("hw", [(64, 64), (96, 128)])
def test_taps_have_strides_4_to_32_in_graph_mode(graph, hw):
    net = mobilenet_v2()
    net.set_train(False)
    outs = net(Tensor(np.zeros((1, 3) + hw, np.float32)))
    assert net.level_channels == TAP_CHANNELS and net.out_channels == 320
    assert [tuple(o.shape) for o in outs] == [(1, c, hw[0] // s, hw[1] // s)
                                              for c, s in zip(TAP_CHANNELS, TAP_STRIDES)]


def test_residual_exactly_where_stride_1_and_channels_match(pynative, monkeypatch):
    # PyNative: each block and its .conv body are called separately (graph mode would compile 34 graphs),
    # on plain NCHW maps (inside the network they may be channel-blocked; test_cpu_ops compares the two).
    monkeypatch.setenv("CENTERDET_CPU_LAYOUT", "plain")
    net = mobilenet_v2()
    net.set_train(False)
    cells = list(net.features)[1:]
    assert len(cells) == len(blocks()) == 17
    rng = np.random.default_rng(0)
    has_skip = []
    for cell, (cin, cout, stride, _) in zip(cells, blocks()):
        assert isinstance(cell, InvertedResidual)
        x = Tensor(rng.normal(size=(1, cin, 8, 8)).astype(np.float32))
        y, body = cell(x).asnumpy(), cell.conv(x).asnumpy()
        assert y.shape == (1, cout, 8 // stride, 8 // stride)
        skip = y.shape == x.shape and np.allclose(y - body, x.asnumpy(), atol=1e-5)
        assert skip or np.array_equal(y, body)
        has_skip.append(skip)
    assert has_skip == [s == 1 and cin == cout for cin, cout, s, _ in blocks()]
    assert sum(has_skip) == 10


@pytest.mark.torch
def test_matches_pytorch_reference_in_eval(mode):
    torch = pytest.importorskip("torch")
    import torch_nets

    ref = torch_nets.MobileNetV2()  # torchvision's layout, written independently in plain torch
    ref.eval()
    sd = ref.state_dict()
    unused = ("features.18.", "classifier.")  # torchvision's classifier end, not a tap
    backbone = {k for k in sd if not k.endswith("num_batches_tracked") and not k.startswith(unused)}
    assert backbone == set(expected_torchvision_keys())

    # Seeded conv weights (fan-out He scale) and non-trivial BN statistics/affines, so the test is
    # deterministic and a swapped or misnamed BN tensor shows up in the output.
    rng = np.random.default_rng(0)
    net = mobilenet_v2()
    net.set_train(False)
    for p in net.get_parameters():
        leaf = p.name.rpartition(".")[2]
        if leaf == "weight":
            fan_out = p.shape[0] * p.shape[2] * p.shape[3]
            p.set_data(Tensor(rng.normal(0, np.sqrt(2 / fan_out), p.shape).astype(np.float32)))
        else:
            c = p.shape[0]
            v = {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.2, c),
                 "moving_mean": rng.normal(0, 0.2, c), "moving_variance": rng.uniform(0.5, 2.0, c)}[leaf]
            p.set_data(Tensor(v.astype(np.float32)))
        sd[torch_name(p.name)] = torch.from_numpy(p.asnumpy().copy())
    ref.load_state_dict(sd)  # the classifier and features.18 keep their init: unused by the taps

    # Input std 10 drives a few thousand activations past 6, so ReLU6 vs ReLU is also checked.
    x = 10 * rng.normal(size=(1, 3, 64, 64)).astype(np.float32)
    outs = net(Tensor(x))
    with torch.no_grad():
        touts = [t.numpy() for t in ref(torch.from_numpy(x))]
    assert len(touts) == len(outs) == 4
    for o, t in zip(outs, touts):
        o = o.asnumpy()
        assert o.shape == t.shape
        assert np.abs(o - t).max() <= 1e-4 * np.abs(t).max()
