"""centerdet's CPU kernels (dependency/cpu_ops) against MindSpore's own operators: the same values
and gradients, layer by layer and for whole networks; the kernels oneDNN picks; the switch."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import centerdet  # noqa: F401  (must precede mindspore)
import mindspore as ms
from mindspore import Tensor, nn, ops

from centerdet import cpu_ops
from centerdet.config import load_config
from centerdet.models import build_model, layers

pytestmark = pytest.mark.skipif(not cpu_ops.available(), reason=f"centerdet CPU kernels: {cpu_ops.status()}")

RNG = np.random.default_rng(0)


def built_with(flag, make):
    """``make()`` with the kernels forced on (True) or off (False)."""
    cpu_ops.set_enabled(flag)
    try:
        return make()
    finally:
        cpu_ops.set_enabled(None)


class WeightedSum(nn.Cell):
    """sum(net(x) · r): a scalar whose gradient reaches every output element with its own weight."""

    def __init__(self, net, r):
        super().__init__()
        self.net, self.r = net, r

    def construct(self, x):
        return (self.net(x) * self.r).sum()


def values_and_grads(net, x):
    y = net(x)
    r = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)  # the same for both sides
    loss = WeightedSum(net, Tensor(r))
    dx, dw = ms.grad(loss, grad_position=0, weights=net.trainable_params())(x)
    return [y.asnumpy(), dx.asnumpy()] + [g.asnumpy() for g in dw]


def assert_same(a_list, b_list, rtol=1e-5, names=None):
    """Each pair equal to ``rtol`` of its own largest value, or of the largest value of all pairs:
    a gradient that is a sum of cancelling terms (BatchNorm's gamma behind another BatchNorm) is
    tiny, and float32 summation order alone moves it by more than rtol of itself."""
    overall = max(np.abs(a).max() for a in a_list)
    for i, (a, b) in enumerate(zip(a_list, b_list)):
        assert a.shape == b.shape
        err, scale = np.abs(a - b).max(), np.abs(a).max()
        assert err <= rtol * scale or err <= rtol * 1e-2 * overall, (names[i] if names else i, err, scale, overall)


def compare_layer(make, x_shape, positive=False):
    ref = built_with(False, make)
    fast = built_with(True, make)
    assert not getattr(ref, "onednn") and getattr(fast, "onednn")
    for p_ref, p_fast in zip(ref.trainable_params(), fast.trainable_params()):
        p_fast.set_data(p_ref.data.copy())
    x = RNG.standard_normal(x_shape).astype(np.float32)
    if positive:
        x = np.abs(x) + 0.01
    want = values_and_grads(ref, Tensor(x))
    got = values_and_grads(fast, Tensor(x))
    assert_same(want, got)
    return got


CONVS = [
    dict(args=(8, 16, 3), kw=dict(pad_mode="pad", padding=1), x=(2, 8, 13, 11)),
    dict(args=(8, 16, 3), kw=dict(stride=2, pad_mode="pad", padding=1, has_bias=True), x=(2, 8, 13, 11)),
    dict(args=(3, 16, 7), kw=dict(stride=2, pad_mode="pad", padding=3), x=(2, 3, 20, 18)),
    dict(args=(16, 16, 3), kw=dict(stride=2, pad_mode="pad", padding=1, group=16), x=(2, 16, 9, 10)),  # depthwise
    dict(args=(16, 32, 3), kw=dict(pad_mode="pad", padding=1, group=4), x=(1, 16, 7, 7)),
    dict(args=(8, 16, 1), kw=dict(has_bias=True), x=(2, 8, 9, 10)),  # "same", 1×1
    dict(args=(8, 16, 3), kw=dict(stride=2), x=(2, 8, 9, 10)),  # "same" with uneven pads
    dict(args=(8, 16, 3), kw=dict(pad_mode="valid", dilation=2), x=(2, 8, 12, 10)),
    dict(args=(8, 4, 3), kw=dict(pad_mode="pad", padding=(0, 1, 2, 1)), x=(1, 8, 6, 7)),
]


@pytest.mark.parametrize("case", CONVS, ids=lambda c: f"{c['args']}-{c['kw']}")
def test_conv2d_matches_mindspore(mode, case):
    compare_layer(lambda: layers.Conv2d(*case["args"], **case["kw"]), case["x"])


TRANSPOSED = [
    dict(args=(8, 16, 4), kw=dict(stride=2, pad_mode="pad", padding=1), x=(2, 8, 6, 7)),  # CenterNet deconv
    dict(args=(8, 8, 2), kw=dict(stride=2), x=(2, 8, 6, 7)),  # ida neck ("same")
    dict(args=(4, 6, 3), kw=dict(stride=2, pad_mode="valid", has_bias=True), x=(1, 4, 5, 4)),
]


@pytest.mark.parametrize("case", TRANSPOSED, ids=lambda c: f"{c['args']}-{c['kw']}")
def test_conv_transpose2d_matches_mindspore(mode, case):
    compare_layer(lambda: layers.Conv2dTranspose(*case["args"], **case["kw"]), case["x"])


@pytest.mark.parametrize("shape", [(2, 16, 13, 12), (1, 3, 9, 9)])
def test_max_pool_matches_mindspore_on_positive_inputs(mode, shape):
    """The layer's contract is inputs ≥ 0 (post-ReLU), where a zero border and ignored padding give
    the same maxima. (Where a window's maximum is an exact 0, the two may route its gradient to
    different zeros; the ReLU in front passes no gradient there either way.)"""
    got = compare_layer(lambda: layers.MaxPool2d(3, 2, 1), shape, positive=True)
    y = got[0]
    assert y.shape == (shape[0], shape[1], (shape[2] - 1) // 2 + 1, (shape[3] - 1) // 2 + 1)


def test_max_pool_is_pytorch_rule_on_negative_inputs(mode):
    """Padding never wins, like PyTorch's MaxPool2d(3, 2, 1): a map of -1s pools to -1s."""
    pool = built_with(True, lambda: layers.MaxPool2d(3, 2, 1))
    out = pool(Tensor(-np.ones((1, 1, 5, 5), np.float32))).asnumpy()
    assert np.array_equal(out, -np.ones((1, 1, 3, 3), np.float32))


def test_all_finite(mode):
    finite = cpu_ops.all_finite_op()
    big = RNG.standard_normal(300_000).astype(np.float32) * 1e30  # large but finite: no false alarm
    grads = [Tensor(RNG.standard_normal((3, 4)).astype(np.float32)), Tensor(big)]
    assert bool(finite(*grads).asnumpy()[0])
    for bad in (np.inf, -np.inf, np.nan):
        for where in (0, 1):
            g = [t.asnumpy().copy() for t in grads]
            g[where].flat[-1] = bad
            assert not bool(finite(*[Tensor(v) for v in g]).asnumpy()[0])


def _pair(overrides, model="centernet"):
    def make():
        return build_model(load_config(None, overrides, model=model))
    ref, fast = built_with(False, make), built_with(True, make)
    ms.load_param_into_net(fast, {p.name: p for p in ref.get_parameters()})
    return ref, fast


NETS = [({"backbone": "resnet18", "use_dcn": "false", "num_classes": "3"}, "centernet"),
        ({"backbone": "resnet18", "num_classes": "3"}, "centernet"),
        ({"backbone": "resnet18", "neck": "ida", "num_classes": "3"}, "centernet"),
        ({}, "centerface")]


class SquaredOutputs(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x):
        total = 0.0
        for o in self.net(x):
            total = total + (o * o).mean()
        return total


@pytest.mark.parametrize("overrides,model", NETS, ids=["r18-deconv", "r18-dcn", "r18-ida", "centerface"])
def test_networks_match_mindspore_kernels(overrides, model):
    """Whole detectors in graph mode: outputs (train and eval mode) and the gradient of every
    parameter (eval mode, where BatchNorm does not couple the batch).

    Layer by layer the kernels agree to rounding (tests above). Through a network a rounding-level
    difference can still flip which of two nearly equal values wins a max pool window, or which side
    of 0 a ReLU input falls, and move the few gradients behind it by up to ~1 % (MindSpore's own
    kernels in graph and PyNative mode differ the same way); so most tensors must agree to 1e-3 and
    the whole gradient to 1e-3 of its norm. A wrong kernel misses both by orders of magnitude."""
    ms.set_context(mode=ms.GRAPH_MODE)
    ref, fast = _pair(overrides, model)
    x = Tensor(RNG.standard_normal((2, 3, 96, 96)).astype(np.float32))
    for train in (True, False):
        for net in (ref, fast):
            net.set_train(train)
        for a, b in zip(ref(x), fast(x)):
            assert_same([a.asnumpy()], [b.asnumpy()], rtol=1e-4)
    grads = [[g.asnumpy() for g in ms.grad(SquaredOutputs(net), grad_position=None,
                                           weights=net.trainable_params())(x)] for net in (ref, fast)]
    assert len(grads[0]) == len(grads[1]) > 50
    a, b = (np.concatenate([g.ravel() for g in side]) for side in grads)
    assert np.linalg.norm(a - b) <= 1e-3 * np.linalg.norm(a)
    overall = np.abs(a).max()
    close = [np.abs(ga - gb).max() <= 1e-3 * np.abs(ga).max() + 1e-5 * overall for ga, gb in zip(*grads)]
    assert np.mean(close) >= 0.9, [p.name for p, ok in zip(ref.trainable_params(), close) if not ok]


def test_layers_use_the_kernels_by_default_and_follow_the_switch():
    net = build_model(load_config(None, {"backbone": "resnet18", "use_dcn": "false"}))
    convs = [c for _, c in net.cells_and_names() if isinstance(c, (nn.Conv2d, nn.Conv2dTranspose))]
    assert len(convs) > 20 and all(c.onednn for c in convs)
    assert not any(c.onednn for _, c in built_with(False, lambda: build_model(
        load_config(None, {"backbone": "resnet18", "use_dcn": "false"}))).cells_and_names() if hasattr(c, "onednn"))
    assert "centerdet oneDNN" in cpu_ops.status()


def test_environment_variable_switches_them_off():
    code = ("import centerdet, mindspore; from centerdet import cpu_ops; from centerdet.models import layers; "
            "print(cpu_ops.enabled(), layers.Conv2d(3, 4, 3).onednn, cpu_ops.status())")
    env = dict(os.environ, CENTERDET_CPU_KERNELS="mindspore")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["False", "False"] and "switched off" in out.stdout


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read().split()
    except OSError:
        return False


def test_own_onednn_copy_runs_blocked_kernels_beyond_the_avx2_cap():
    """The library runs its own oneDNN (not MindSpore's, which is capped at AVX2 by
    ONEDNN_MAX_CPU_ISA) with direct JIT kernels; on AVX-512 CPUs those are AVX-512 ones."""
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert cpu_ops.onednn_version() == "3.2.0"
    conv = built_with(True, lambda: layers.Conv2d(32, 32, 3, pad_mode="pad", padding=1))
    conv(Tensor(np.ones((1, 32, 20, 20), np.float32))).asnumpy()
    impls = [v for k, v in cpu_ops.conv_implementations().items() if k.startswith("f|1,32,20,20,")]
    assert impls, cpu_ops.conv_implementations()
    assert all("gemm" not in v and "ref" not in v for v in impls), impls
    if _has_avx512() and platform.machine() == "x86_64":
        assert all("avx512" in v for v in impls), impls
