"""centerdet's CPU kernels (dependency/cpu_ops) against MindSpore's own operators: the same values
and gradients, layer by layer and for whole networks; the kernels oneDNN picks; the switch."""
import os
import platform
import subprocess
import sys
import zlib

import numpy as np
import pytest

import centerdet  # noqa: F401  (must precede mindspore)
import mindspore as ms
from mindspore import Tensor, nn

from centerdet import cpu_ops
from centerdet.config import load_config
from centerdet.models import build_model, layers

pytestmark = pytest.mark.skipif(not cpu_ops.available(), reason=f"centerdet CPU kernels: {cpu_ops.status()}")



def rng_for(*key):
    """A generator seeded by the test's own parameters: inputs do not depend on test order."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


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
        p_fast.set_data(Tensor(p_ref.asnumpy().copy()))
    x = rng_for(x_shape).standard_normal(x_shape).astype(np.float32)
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


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("case", [CONVS[0], CONVS[1]], ids=["3x3", "3x3/2"])
def test_conv2d_with_fused_activation_equals_conv_then_activation(mode, case, activation):
    """Inference: the activation as the kernel's post-op equals MindSpore's conv then ReLU/ReLU6;
    a conv without a bias, on MindSpore's kernels, or a plain-layout 1×1 (slower with the post-op)
    declines (keeps its own activation cell)."""
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal(case["x"]).astype(np.float32) * 30)
    kw = dict(case["kw"], has_bias=True)
    ref = built_with(False, lambda: layers.Conv2d(*case["args"], **kw))
    fast = built_with(True, lambda: layers.Conv2d(*case["args"], **kw))
    fast.weight.set_data(ref.weight.data)
    fast.bias.set_data(Tensor(rng.standard_normal(fast.bias.shape).astype(np.float32)))
    ref.bias.set_data(fast.bias.data)
    assert not ref.fuse_activation(activation) and fast.fuse_activation(activation)
    act = {"relu": ms.ops.ReLU(), "relu6": ms.ops.ReLU6()}[activation]
    want, got = act(ref(x)).asnumpy(), fast(x).asnumpy()
    assert (want == 0).mean() > 0.2 and (activation == "relu" or (want == 6).mean() > 0.05)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    no_bias = built_with(True, lambda: layers.Conv2d(*case["args"], **dict(case["kw"], has_bias=False)))
    assert not no_bias.fuse_activation(activation)
    pointwise = built_with(True, lambda: layers.Conv2d(8, 16, 1, has_bias=True))
    assert not pointwise.fuse_activation(activation)
    assert built_with(True, lambda: layers.Conv2d(8, 16, 1, stride=2, has_bias=True)).fuse_activation(activation)


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


@pytest.mark.parametrize("shape, activation", [((4, 16, 9, 7), None), ((3, 3, 1, 2), None), ((3, 32, 20, 21), None),
                                               ((4, 16, 9, 7), "relu"), ((3, 32, 20, 21), "relu6")])
def test_batch_norm_training_matches_mindspore(mode, shape, activation):
    """Train mode: output and gradients (x, gamma, beta), then the moving averages after two
    steps (biased variance normalises, the unbiased one enters the average, as MindSpore does).
    The input's mean is large against its spread, where a naive E[x²] − E[x]² would cancel. With
    an activation: ours in the BN kernel (masking the gradient by its output), MindSpore's a
    separate ReLU / ReLU6 op; γ up to 4 takes outputs past 6."""
    def make():
        bn = layers.BatchNorm2d(shape[1], eps=1e-5, momentum=0.9, activation=activation)
        bn.gamma.set_data(Tensor(np.linspace(0.5, 4, shape[1]).astype(np.float32)))
        bn.beta.set_data(Tensor(np.linspace(-1, 1, shape[1]).astype(np.float32)))
        bn.set_train(True)
        return bn
    x = rng_for(shape).standard_normal(shape).astype(np.float32) * 0.5 + 40.0
    ref, fast = built_with(False, make), built_with(True, make)
    assert not ref.onednn and fast.onednn
    want = values_and_grads(ref, Tensor(x))
    got = values_and_grads(fast, Tensor(x))
    assert_same(want, got, rtol=2e-4)
    y = got[0]
    if activation:
        assert (y == 0).mean() > 0.2 and y.min() == 0
    if activation == "relu6":
        assert (y == 6).mean() > 0.01 and y.max() == 6
    for bn in (ref, fast):
        bn(Tensor(x * 1.5)).asnumpy()
    for name in ("moving_mean", "moving_variance"):
        a, b = getattr(ref, name).asnumpy(), getattr(fast, name).asnumpy()
        np.testing.assert_allclose(b, a, rtol=1e-5, err_msg=name)
    assert not np.allclose(ref.moving_mean.asnumpy(), 0)  # the averages did move


def test_unscale_all_finite(mode):
    op = cpu_ops.unscale_all_finite_op()
    rng = np.random.default_rng(2)
    big = rng.standard_normal(300_000).astype(np.float32) * 1e30  # large but finite: no false alarm
    grads = [rng.standard_normal((3, 4)).astype(np.float32), big]
    for scale in (1024.0, 1000.0, 1.0):
        *out, finite = op(Tensor(np.float32(scale)), *[Tensor(g) for g in grads])
        assert bool(finite.asnumpy()[0])
        for g, o in zip(grads, out):
            assert o.shape == g.shape and np.array_equal(o.asnumpy(), g / np.float32(scale))  # Div's bits
    for bad in (np.inf, -np.inf, np.nan):
        for where in (0, 1):
            g = [v.copy() for v in grads]
            g[where].flat[-1] = bad
            assert not bool(op(Tensor(np.float32(2.0)), *[Tensor(v) for v in g])[-1].asnumpy()[0])


def _nets(overrides, model="centernet", flags=(False, True)):
    """The same detector once per flag (False: MindSpore's kernels, True: ours), with equal
    weights. The DCN offset convs get small random weights: at their zero init every sample sits
    on a pixel, where bilinear sampling has a kink and either one-sided derivative is a valid
    gradient."""
    def make():
        return build_model(load_config(None, overrides, model=model))
    ms.set_seed(1)  # the same initial weights on every run of the tests
    nets = [built_with(flag, make) for flag in flags]
    rng = np.random.default_rng(11)
    for p in nets[0].get_parameters():
        if "conv_offset_mask" in p.name:
            p.set_data(Tensor((rng.standard_normal(p.shape) * 0.05).astype(np.float32)))
    values = {p.name: p.asnumpy() for p in nets[0].get_parameters()}
    for net in nets[1:]:
        for p in net.get_parameters():  # copies: load_param_into_net would share storage
            p.set_data(Tensor(values[p.name].copy()))
    return nets


def _pair(overrides, model="centernet"):
    return _nets(overrides, model)


NETS = [({"backbone": "resnet18", "use_dcn": "false", "num_classes": "3"}, "centernet"),
        ({"backbone": "resnet18", "num_classes": "3"}, "centernet"),
        ({"backbone": "resnet18", "neck": "ida", "use_dcn": "false", "num_classes": "3"}, "centernet"),
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
    x = Tensor(np.random.default_rng(4).standard_normal((2, 3, 96, 96)).astype(np.float32))
    for train in (True, False):
        for net in (ref, fast):
            net.set_train(train)
        # batch statistics over a batch of 2 small maps amplify rounding in train mode
        assert_same([o.asnumpy() for o in ref(x)], [o.asnumpy() for o in fast(x)], rtol=5e-4 if train else 1e-4)
    grads = [[g.asnumpy() for g in ms.grad(SquaredOutputs(net), grad_position=None,
                                           weights=net.trainable_params())(x)] for net in (ref, fast)]
    assert len(grads[0]) == len(grads[1]) > 50
    a, b = (np.concatenate([g.ravel() for g in side]) for side in grads)
    assert np.linalg.norm(a - b) <= 1e-3 * np.linalg.norm(a)
    overall = np.abs(a).max()
    close = [np.abs(ga - gb).max() <= 1e-3 * np.abs(ga).max() + 1e-5 * overall for ga, gb in zip(*grads)]
    assert np.mean(close) >= 0.9, [p.name for p, ok in zip(ref.trainable_params(), close) if not ok]


@pytest.mark.parametrize("overrides,model", [NETS[0], NETS[1], NETS[3]], ids=["r18-deconv", "r18-dcn", "centerface"])
def test_one_train_step_matches_mindspore_kernels(overrides, model):
    """A whole training step (loss-scaled backward, the fused unscale and finite check, focal loss,
    BatchNorm on batch statistics, Adam) on both kernel sets from equal weights: the loss and the
    BatchNorm moving averages agree to rounding. The weights afterwards are compared with how far
    MindSpore's own step moves when its input changes by 1e-5 (about how far the kernels differ layer
    by layer, tests above): in train mode BatchNorm over a
    small batch amplifies rounding-size changes (and flips max pool winners and ReLU sides), so
    the two kernel sets may differ by as much as that, but not by more than a few times it.
    (Adam's eps is 1e-3 so that tiny gradients move weights in proportion, not by ±lr.)"""
    from centerdet.engine.step import NetWithLoss, TrainStep
    from centerdet.losses import build_loss

    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config(None, overrides, model=model)
    ref, fast, ref_again = _nets(overrides, model, (False, True, False))
    before = {p.name: p.asnumpy().copy() for p in ref.get_parameters()}
    rng = np.random.default_rng(3)
    b, o, m, c = 2, 16, cfg.max_objs, cfg.num_classes
    batch = [rng.standard_normal((b, 3, 64, 64)).astype(np.float32),
             (rng.random((b, c, o, o)) ** 4).astype(np.float32), (rng.random((b, m, 2)) * 5).astype(np.float32),
             rng.random((b, m, 2)).astype(np.float32), rng.integers(0, o * o, (b, m)).astype(np.int32),
             (rng.random((b, m)) > 0.7).astype(np.float32)]
    batch[1][:, :, 3, 5] = 1.0
    if model == "centerface":
        batch += [np.ones((b, m), np.float32), rng.standard_normal((b, m, 10)).astype(np.float32),
                  (rng.random((b, m, 10)) > 0.3).astype(np.float32)]
    nudged = list(batch)
    nudged[0] = (batch[0] * (1 + 1e-5 * rng.standard_normal(batch[0].shape))).astype(np.float32)
    results, lr = [], 1e-3
    for flag, net, inputs in ((False, ref, batch), (True, fast, batch), (False, ref_again, nudged)):
        cpu_ops.set_enabled(flag)
        step = TrainStep(NetWithLoss(net, build_loss(cfg)), nn.Adam(net.trainable_params(), lr, eps=1e-3), 1024.0,
                         nn.DynamicLossScaleUpdateCell(1024.0, 2, 500))
        cpu_ops.set_enabled(None)
        assert step.fused_unscale is flag
        step.set_train()
        loss, _, overflow, _ = step(*[Tensor(v) for v in inputs])
        assert not bool(overflow.asnumpy())
        results.append((float(loss.asnumpy()), {p.name: p.asnumpy() for p in net.get_parameters()}))
    (loss_ref, want), (loss_fast, got), (_, nudged_result) = results
    assert loss_fast == pytest.approx(loss_ref, rel=1e-4)
    averages = [k for k in want if "moving_" in k]
    assert averages and not np.allclose(want[averages[0]], before[averages[0]])  # they moved
    for name in averages:
        # to rounding, or within a few times how far MindSpore's own averages move with the nudge:
        # the few-pixel deep maps of a batch of 2 give variances of 8 values, and summing them in
        # the channel-blocked order moves those by ~1e-4
        moved = np.abs(nudged_result[name] - want[name]).max()
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=max(1e-5, 5 * moved), err_msg=name)

    def spread(other):
        weights = [k for k in want if k not in averages]
        diff = np.concatenate([(other[k] - want[k]).ravel() for k in weights])
        return np.linalg.norm(diff) / np.linalg.norm(np.concatenate([(want[k] - before[k]).ravel() for k in weights]))

    print(f"weights after one step, relative spread: kernels {spread(got):.2e}, MindSpore nudged {spread(nudged_result):.2e}")
    assert spread(got) <= max(5 * spread(nudged_result), 1e-4), (spread(got), spread(nudged_result))


def test_kernels_give_the_same_bits_every_run():
    """Loss and every gradient of a train-mode CenterNet-DCN with the focal loss, twice: identical
    (no reduction here depends on thread timing)."""
    from centerdet.losses import FocalLoss

    ms.set_context(mode=ms.GRAPH_MODE)
    (net,) = _nets(NETS[1][0], "centernet", (True,))
    net.set_train(True)
    focal = FocalLoss()
    target = Tensor((np.random.default_rng(6).random((2, 3, 24, 24)) ** 4).astype(np.float32))

    class Loss(nn.Cell):
        def __init__(self):
            super().__init__()
            self.net, self.focal = net, focal

        def construct(self, x):
            out = self.net(x)
            return self.focal(out[0], target) + (out[1] * out[1]).mean()

    x = Tensor(np.random.default_rng(7).standard_normal((2, 3, 96, 96)).astype(np.float32))
    fn = ms.value_and_grad(Loss(), None, net.trainable_params())
    runs = [[v.asnumpy()] + [g.asnumpy() for g in grads] for v, grads in (fn(x), fn(x))]
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


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
    # Keyed by the whole problem: other tests leave 1x1 convolutions on this input, which run as GEMM.
    impls = [v for k, v in cpu_ops.conv_implementations().items() if k.startswith("fs0d0|1,32,20,20,|32,32,3,3,|")]
    assert impls, cpu_ops.conv_implementations()
    assert all("gemm" not in v and "ref" not in v for v in impls), impls
    if _has_avx512() and platform.machine() == "x86_64":
        assert all("avx512" in v for v in impls), impls


@pytest.mark.skipif(platform.machine() != "x86_64", reason="oneDNN's JIT pooling kernels are x86 ones")
def test_max_pool_runs_a_jit_kernel_whatever_the_vector_width():
    """Blocks of 16 channels have JIT kernels only with AVX-512; on an AVX2-only CPU they fell to
    oneDNN's reference loop (336 ms for the ResNet stem pool). 64 channels take 16 or 8 per block,
    24 take 8: every pass must name a JIT implementation."""
    code = ("import numpy as np, centerdet, mindspore as ms; from mindspore import Tensor; "
            "from centerdet.models import layers; ms.set_context(mode=ms.PYNATIVE_MODE)\n"
            "for c in (64, 24):\n"
            "    pool = layers.MaxPool2d(3, 2, 1); assert pool.onednn\n"
            "    x = Tensor(np.random.rand(1, c, 20, 20).astype(np.float32))\n"
            "    ms.grad(pool)(x).asnumpy()\n")
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = [line.split(",") for line in out.stdout.splitlines() if line.startswith("onednn_verbose,exec,cpu,pooling")]
    assert {r[5] for r in runs} >= {"forward_training", "backward_data"}, out.stdout[-2000:]
    assert all(not r[4].startswith("ref") for r in runs), [(r[4], r[6]) for r in runs]


def test_channel_block_follows_the_vector_width_and_the_switch(monkeypatch):
    """nChw16c where oneDNN has direct AVX-512 kernels, nChw8c with AVX2; plain NCHW when the
    kernels are off or CENTERDET_CPU_LAYOUT=plain."""
    if platform.machine() == "x86_64":
        assert cpu_ops.channel_block() == (16 if _has_avx512() else 8)
    assert built_with(False, cpu_ops.channel_block) == 0
    monkeypatch.setenv(cpu_ops.LAYOUT_ENV, "plain")
    assert cpu_ops.channel_block() == 0


class BlockedStack(nn.Cell):
    """conv 3×3 → BatchNorm+ReLU → max pool → conv 1×1/2 → BatchNorm → + conv 3×3/2 of the
    pool (a downsample branch), with every conv's output blocked by ``block`` (0: plain)."""

    def __init__(self, block):
        super().__init__()
        self.block = block
        self.conv1 = layers.Conv2d(16, 32, 3, pad_mode="pad", padding=1, out_block=block)
        self.bn1 = layers.BatchNorm2d(32, activation="relu")
        self.pool = layers.MaxPool2d(3, 2, 1)
        self.conv2 = layers.Conv2d(32, 32, 1, stride=2, out_block=block)
        self.bn2 = layers.BatchNorm2d(32)
        self.down = layers.Conv2d(32, 32, 3, stride=2, pad_mode="pad", padding=1, out_block=block)

    def construct(self, x):
        y = self.pool(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y)) + self.down(y)
        return layers.to_plain(y) if self.block else y


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE], ids=["graph", "pynative"])
def test_channel_blocked_layers_equal_the_plain_ones(mode):
    """Convolutions, max pool and BatchNorm (training pass and its gradient, eval mode) on
    channel-blocked tensors against the same layers on NCHW: values, input gradient and every
    weight gradient to float32 rounding."""
    block = cpu_ops.channel_block()
    if not block:
        pytest.skip("no channel block on this CPU")
    ms.set_context(mode=mode)
    ms.set_seed(2)
    plain, blocked = BlockedStack(0), BlockedStack(block)
    for p, q in zip(plain.get_parameters(), blocked.get_parameters()):
        q.set_data(Tensor(p.asnumpy().copy()))
    x = Tensor(rng_for("blocked", mode).standard_normal((2, 16, 20, 20)).astype(np.float32))
    for train in (True, False):
        plain.set_train(train)
        blocked.set_train(train)
        assert_same(values_and_grads(plain, x), values_and_grads(blocked, x))
    assert_same([p.asnumpy() for p in plain.get_parameters() if "moving_" in p.name],
                [p.asnumpy() for p in blocked.get_parameters() if "moving_" in p.name])


@pytest.mark.parametrize("overrides", [{"backbone": "resnet18", "num_classes": "3"},
                                       {"backbone": "resnet50", "neck": "ida", "use_dcn": "false", "num_classes": "3"}],
                         ids=["r18-dcn", "r50-ida"])
def test_channel_blocked_resnet_equals_the_plain_one(overrides, monkeypatch):
    """The detector whose ResNet (and ida neck) keep their activations channel-blocked between the
    kernels against the same one in plain NCHW (``CENTERDET_CPU_LAYOUT=plain``): outputs and every gradient in eval
    mode and after BatchNorm folding to float32 rounding; in train mode, where BatchNorm over a
    batch of 2 small maps amplifies rounding (test_networks_match_mindspore_kernels), outputs and
    moving averages to 1e-3."""
    from centerdet.models.fuse import fold_batchnorm

    if not cpu_ops.channel_block():
        pytest.skip("no channel block on this CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    blocked, blocked_folded = _nets(overrides, "centernet", (True, True))
    monkeypatch.setenv(cpu_ops.LAYOUT_ENV, "plain")
    plain, plain_folded = _nets(overrides, "centernet", (True, True))
    monkeypatch.delenv(cpu_ops.LAYOUT_ENV)
    assert blocked.backbone.layout_block and not plain.backbone.layout_block
    assert "ida" not in overrides.values() or blocked.neck.layout_block
    assert sum(getattr(c, "out_block", 0) > 0 for _, c in blocked.cells_and_names()) > 15
    nets = (plain, blocked, plain_folded, blocked_folded)
    for net in nets[1:]:
        for p, q in zip(plain.get_parameters(), net.get_parameters()):
            q.set_data(Tensor(p.asnumpy().copy()))
    x = Tensor(rng_for("blocked-net", overrides["backbone"]).standard_normal((2, 3, 64, 64)).astype(np.float32))

    def outputs(net):
        return [o.asnumpy() for o in net(x)]

    def grads(net):
        return [g.asnumpy() for g in ms.grad(SquaredOutputs(net), grad_position=None,
                                             weights=net.trainable_params())(x)]

    for net in nets:
        net.set_train(False)
    assert_same(outputs(plain), outputs(blocked))
    assert_same(grads(plain), grads(blocked))
    for net in nets[2:]:
        assert fold_batchnorm(net) > 15
    assert_same(outputs(plain), outputs(blocked_folded), rtol=1e-4)
    assert_same(outputs(plain_folded), outputs(blocked_folded))
    for net in (plain, blocked):
        net.set_train(True)
    assert_same(outputs(plain), outputs(blocked), rtol=1e-3)
    assert_same(*[[p.asnumpy() for p in net.get_parameters() if "moving_" in p.name] for net in (plain, blocked)],
                rtol=1e-3)


def test_status_names_only_the_kernels_a_network_uses_and_its_layout():
    from centerdet.config import load_config
    from centerdet.models import build_model

    face = build_model(load_config("centerface_mbv2_1xb16-20e_synthetic", {}))
    text = cpu_ops.status(face)
    assert "DCN" not in text and "max pooling" not in text and "BatchNorm and the focal loss" in text
    block = cpu_ops.channel_block()
    # MobileNetV2's 24-channel stage does not split into AVX-512's 16-channel blocks
    assert text.endswith({8: "; backbone and neck activations channel-blocked (nChw8c)",
                          16: "; backbone and neck activations channel-blocked (nChw16c; the backbone's 24-channel "
                              "maps plain)", 0: "; plain NCHW activations"}[block])
    dcn = build_model(load_config(None, {"backbone": "resnet18"}))
    text = cpu_ops.status(dcn, training=False)
    assert "DCN sampling" in text and "max pooling" in text and "BatchNorm" not in text
    assert text.endswith(f"; backbone activations channel-blocked (nChw{block}c)" if block else "; plain NCHW activations")
