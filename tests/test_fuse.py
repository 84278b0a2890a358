"""Folding BatchNorm into the convolutions for inference changes no output; the folded network's
convolutions reorder their (frozen) weights once."""
import numpy as np
import pytest

import centerdet  # noqa: F401


@pytest.mark.parametrize("overrides", [{"model": "centerface"}, {"backbone": "resnet18", "use_dcn": "true"},
                                       {"backbone": "resnet18", "neck": "ida", "use_dcn": "false"}],
                         ids=["centerface", "centernet_dcn", "centernet_ida"])
def test_folded_network_equals_the_original(overrides):
    import mindspore as ms
    from mindspore import Tensor

    from centerdet.config import load_config
    from centerdet.models import build_model
    from centerdet import cpu_ops
    from centerdet.models.fuse import count_batchnorm, fold_batchnorm
    from centerdet.models.backbones.mobilenetv2 import InvertedResidual
    from centerdet.models.backbones.resnet import _Residual
    from centerdet.models.layers import Conv2d, Conv2dTranspose
    from centerdet.models.necks import IdaUpNeck

    cfg = load_config(None, overrides)
    ms.set_seed(0)
    original, folded = build_model(cfg), build_model(cfg)
    rng = np.random.default_rng(0)
    same = {p.name: p for p in folded.get_parameters()}
    for p in original.get_parameters():  # BatchNorm statistics and affines far from identity
        if p.name.endswith(("gamma", "moving_variance")):
            p.set_data(Tensor(rng.uniform(0.5, 2.0, p.shape).astype(np.float32)))
        elif p.name.endswith(("beta", "moving_mean")):
            p.set_data(Tensor(rng.normal(0, 0.5, p.shape).astype(np.float32)))
        same[p.name].set_data(Tensor(p.asnumpy()))
    original.set_train(False)
    folded.set_train(False)
    before = count_batchnorm(folded)
    assert fold_batchnorm(folded) == before > 20 and count_batchnorm(folded) == 0
    packed = cpu_ops.packed_weights()
    for i in range(2):  # the second call runs on the weights the first one reordered and kept
        x = Tensor(rng.standard_normal((1, 3, 64, 96)).astype(np.float32))
        for want, got in zip(original(x), folded(x)):
            want, got = want.asnumpy(), got.asnumpy()
            assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
        if i == 0:
            packed, first = cpu_ops.packed_weights(), packed
    if cpu_ops.enabled():  # every frozen conv whose kernel wants its weights reordered, once
        convs = sum(isinstance(c, (Conv2d, Conv2dTranspose)) for _, c in folded.cells_and_names())
        assert convs // 2 < packed - first <= convs and cpu_ops.packed_weights() == packed
        # every ResNet block adds its shortcut and applies its ReLU inside its last conv
        blocks = [c for _, c in folded.cells_and_names() if isinstance(c, _Residual)]
        assert all(c.fused for c in blocks) and len(blocks) == (0 if overrides.get("model") else 8)
        # a transposed conv's bias and ReLU run in one pass, the ida neck's sums in the same one
        ups = [c for _, c in folded.cells_and_names() if isinstance(c, Conv2dTranspose)]
        assert ups and all(c.fused_activation == "relu" for c in ups)
        assert all(c.fused for c in (folded.neck,) if isinstance(c, IdaUpNeck))
        # the heads read the neck's output channel-blocked; MobileNetV2's expand and depthwise
        # convs run as one kernel in each of its 16 blocks that expand
        assert folded.blocked_features == (cpu_ops.channel_block() > 0)
        fused_dw = [c for _, c in folded.cells_and_names() if isinstance(c, InvertedResidual) and c.fused_depthwise]
        assert len(fused_dw) == (16 if overrides.get("model") and cpu_ops.channel_block() else 0)
        # with 16-channel blocks MobileNetV2's 24-channel maps stay blocked, zero-padded to 32
        block = cpu_ops.channel_block()
        assert getattr(folded.backbone, "padded", False) == (bool(overrides.get("model")) and block > 0 and 24 % block > 0)
    # CenterFace's four 1×1 heads run as one conv (CenterNet's heads have conv towers)
    assert folded.merged == (overrides.get("model") == "centerface")


def _expand_then_depthwise(x, w, b, wd, bd, stride):
    """relu6(depthwise3x3(relu6(1×1 conv(x) + b), pad 1) + bd) in NumPy, float64."""
    h = np.clip(np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None], 0, 6)
    n, c, rows, cols = h.shape
    padded = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out_r, out_c = (rows - 1) // stride + 1, (cols - 1) // stride + 1
    out = np.zeros((n, c, out_r, out_c))
    for i in range(3):
        for j in range(3):
            tap = padded[:, :, i:i + stride * (out_r - 1) + 1:stride, j:j + stride * (out_c - 1) + 1:stride]
            out += tap * wd[None, :, 0, i, j, None, None]
    return np.clip(out + bd[None, :, None, None], 0, 6)


@pytest.mark.parametrize("cin,stride,size", [(24, 1, (9, 7)), (16, 2, (9, 7)), (24, 2, (16, 12))])
def test_expand_and_depthwise_in_one_kernel(cin, stride, size):
    """Conv2d.forward_depthwise (one oneDNN kernel, append_dw) against NumPy, plain or blocked input,
    odd sizes, before and after the weights are frozen."""
    import mindspore as ms
    from mindspore import Tensor, nn

    from centerdet import cpu_ops
    from centerdet.models.layers import Conv2d

    block = cpu_ops.channel_block()
    if not block:
        pytest.skip("centerdet's CPU kernels have no channel-blocked layout here")
    ms.set_context(mode=ms.GRAPH_MODE)
    hidden = 6 * block
    rng = np.random.default_rng(1)
    expand = Conv2d(cin, hidden, 1, has_bias=True, out_block=block)
    dw = Conv2d(hidden, hidden, 3, stride=stride, pad_mode="pad", padding=1, group=hidden, has_bias=True,
                out_block=block)
    arrays = []
    for conv in (expand, dw):
        for p, scale in ((conv.weight, 0.2), (conv.bias, 1.0)):
            a = rng.normal(0, scale, p.shape).astype(np.float32)
            p.set_data(Tensor(a))
            arrays.append(a)
    assert expand.fuse_activation("relu6") and dw.fuse_activation("relu6") and expand.fuse_depthwise(dw)

    class Fused(nn.Cell):
        def __init__(self):
            super().__init__()
            self.expand, self.dw = expand, dw

        def construct(self, x):
            return self.expand.forward_depthwise(x, self.dw)

    x = rng.standard_normal((1, cin) + size).astype(np.float32)
    want = _expand_then_depthwise(x.astype(np.float64), *arrays, stride)
    assert 0.1 < ((want > 0) & (want < 6)).mean()  # neither clip dominates
    inp = Tensor(x)
    if cin % block == 0:  # a channel-blocked input, as the previous block hands it
        inp = Tensor(np.ascontiguousarray(x.reshape(1, cin // block, block, *size).transpose(0, 1, 3, 4, 2)))
    net = Fused()
    for frozen in (False, True):
        if frozen:
            expand.freeze_weights()
            dw.freeze_weights()
        got = net(inp).asnumpy()
        n, cb, h, w, b = got.shape
        got = got.transpose(0, 1, 4, 2, 3).reshape(n, cb * b, h, w)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_mobilenetv2_plain_taps_after_folding():
    """A folded MobileNetV2 handing out plain taps gives the unfolded one's, the 24-channel tap
    without the zero padding its blocked maps carry on 16-channel blocks."""
    import mindspore as ms
    from mindspore import Tensor

    from centerdet.models.backbones.mobilenetv2 import mobilenet_v2
    from centerdet.models.fuse import fold_batchnorm

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    original, folded = mobilenet_v2(), mobilenet_v2()
    rng = np.random.default_rng(3)
    for p, q in zip(original.get_parameters(), folded.get_parameters()):
        if p.name.endswith(("gamma", "moving_variance")):
            p.set_data(Tensor(rng.uniform(0.5, 2.0, p.shape).astype(np.float32)))
        elif p.name.endswith(("beta", "moving_mean")):
            p.set_data(Tensor(rng.normal(0, 0.5, p.shape).astype(np.float32)))
        q.set_data(Tensor(p.asnumpy()))
    original.set_train(False)
    folded.set_train(False)
    fold_batchnorm(folded)
    x = Tensor(rng.standard_normal((1, 3, 64, 96)).astype(np.float32))
    for want, got in zip(original(x), folded(x)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), atol=1e-5 * max(1.0, np.abs(want.asnumpy()).max()))
