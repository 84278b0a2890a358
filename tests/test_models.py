"""Backbones, necks, heads and the assembled detectors: sizes, strides and initialisation."""
import numpy as np
import pytest

import centerdet  # noqa: F401  (must precede mindspore)
import mindspore as ms
from mindspore import Tensor

from centerdet.tasks.centernet import CenterNetConfig
from centerdet.models import build_model
from centerdet.models.backbones import resnet
from centerdet.models.necks import DeconvNeck, IdaUpNeck
from centerdet.models.necks.deconv import bilinear_kernel, bilinear_upconv


def n_params(cell):
    return sum(int(np.prod(p.shape)) for p in cell.trainable_params())


# torchvision's published parameter counts minus the fc layer (512·1000 + 1000, 2048·1000 + 1000).
@pytest.mark.parametrize("name, expected", [("resnet18", 11_689_512 - 513_000),
                                            ("resnet50", 25_557_032 - 2_049_000)])
def test_resnet_parameter_count_matches_torchvision(name, expected):
    assert n_params(resnet(name)) == expected


@pytest.mark.parametrize("name, channels", [("resnet18", (64, 128, 256, 512)),
                                            ("resnet50", (256, 512, 1024, 2048))])
def test_resnet_levels_have_strides_4_to_32(mode, name, channels):
    net = resnet(name, all_levels=True)
    net.set_train(False)
    outs = net(Tensor(np.zeros((1, 3, 64, 96), np.float32)))
    assert net.out_channels == channels
    assert [o.shape for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_bilinear_kernel_by_hand():
    k = bilinear_kernel(4)
    np.testing.assert_allclose(k, np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))


def test_bilinear_upconv_doubles_a_ramp(mode):
    # A linear ramp upsampled bilinearly is again a linear ramp at half the slope (away from borders).
    up = bilinear_upconv(2)
    x = np.tile(np.arange(8, dtype=np.float32), (2, 8, 1))[None]
    y = up(Tensor(x)).asnumpy()[0]
    assert y.shape == (2, 16, 16)
    row = y[0, 8, 2:-2]
    np.testing.assert_allclose(np.diff(row), 0.5, atol=1e-6)
    np.testing.assert_allclose(y[0], y[1])


def test_ida_neck_output_stride_and_skip(mode):
    neck = IdaUpNeck((8, 16, 32), width=12)
    neck.set_train(False)
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(1, c, 32 // s, 32 // s)).astype(np.float32) for c, s in ((8, 1), (16, 2), (32, 4))]
    out = neck(ms.mutable(tuple(Tensor(f) for f in feats))).asnumpy()
    assert out.shape == (1, 12, 32, 32)
    # The shallowest level reaches the output directly: changing one of its pixels changes the
    # output only near that pixel (3×3 fuse conv), which a no-skip neck could not do.
    feats[0][0, :, 10, 10] += 5.0
    out2 = neck(ms.mutable(tuple(Tensor(f) for f in feats))).asnumpy()
    changed = np.argwhere(np.abs(out2 - out).max(axis=1)[0] > 1e-6)
    assert len(changed) > 0
    assert changed.min() >= 9 and changed.max() <= 11


@pytest.mark.parametrize("use_dcn", [True, False])
def test_use_dcn_makes_the_ida_necks_finishing_conv_deformable(mode, use_dcn):
    from centerdet.models.dcn import ModulatedDeformConv2d

    net = build_model(CenterNetConfig(backbone="resnet18", use_dcn=use_dcn, neck="ida", num_classes=3))
    assert isinstance(net.neck.fuse[0], ModulatedDeformConv2d) == use_dcn
    names = {p.name for p in net.get_parameters()}
    assert ("neck.fuse.0.conv_offset_mask.weight" in names) == use_dcn
    net.set_train(False)
    hm = net(Tensor(np.zeros((1, 3, 64, 64), np.float32)))[0]
    assert hm.shape == (1, 3, 16, 16)


@pytest.mark.parametrize("neck", ["deconv", "ida"])
def test_centernet_outputs_at_stride_4(mode, neck):
    cfg = CenterNetConfig(backbone="resnet18", use_dcn=False, neck=neck, num_classes=3)
    net = build_model(cfg)
    net.set_train(False)
    hm, wh, reg = net(Tensor(np.zeros((2, 3, 64, 64), np.float32)))
    assert hm.shape == (2, 3, 16, 16) and wh.shape == (2, 2, 16, 16) and reg.shape == (2, 2, 16, 16)
    assert isinstance(net.neck, DeconvNeck if neck == "deconv" else IdaUpNeck)
    np.testing.assert_allclose(net.hm[-1].bias.asnumpy(), -2.19, rtol=1e-6)
    # Regression heads start near zero (N(0, 0.001) weights, zero bias).
    assert np.abs(wh.asnumpy()).max() < 0.5


@pytest.mark.parametrize("width", [1, 2])
def test_zero_border_is_numpy_pad(mode, width):
    from centerdet.models.layers import zero_border

    x = np.random.default_rng(0).random((2, 3, 5, 4)).astype(np.float32)
    got = zero_border(Tensor(x), width).asnumpy()
    assert np.array_equal(got, np.pad(x, ((0, 0), (0, 0), (width, width), (width, width))))


def test_dcn_train_sampling_key_reaches_every_dcn():
    from centerdet.config import load_config
    from centerdet.models.dcn import ModulatedDeformConv2d

    for flag in (False, True):
        net = build_model(load_config(None, {"backbone": "resnet18", "num_classes": "2",
                                             "dcn_train_sampling": str(flag).lower()}))
        dcns = [c for _, c in net.cells_and_names() if isinstance(c, ModulatedDeformConv2d)]
        assert len(dcns) == 3 and all(c.train_sampling is flag for c in dcns)


@pytest.mark.parametrize("kernels", ["onednn", "mindspore"])
def test_batch_norm_activation_is_checked_and_kept_by_folding(kernels):
    """layers.BatchNorm2d's activation: a bad name fails at build time; folding the BN into its conv
    for inference keeps the activation: inside the conv's kernel on centerdet's CPU kernels, as its
    own cell on MindSpore's (models/fuse.py)."""
    from mindspore import nn as msnn

    from centerdet import cpu_ops
    from centerdet.models import layers
    from centerdet.models.fuse import fold_batchnorm

    if kernels == "onednn" and not cpu_ops.available():
        pytest.skip("centerdet CPU kernels not built")
    with pytest.raises(ValueError, match="activation"):
        layers.BatchNorm2d(4, activation="gelu")
    cpu_ops.set_enabled(kernels == "onednn")
    try:
        seq = msnn.SequentialCell([layers.Conv2d(3, 4, 3), layers.BatchNorm2d(4, activation="relu6")])
    finally:
        cpu_ops.set_enabled(None)
    seq.set_train(False)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(np.float32) * 30)
    before = seq(x).asnumpy()
    assert fold_batchnorm(seq) == 1
    assert isinstance(seq[1], msnn.Identity if kernels == "onednn" else msnn.ReLU6)
    np.testing.assert_allclose(seq(x).asnumpy(), before, rtol=1e-5, atol=1e-5)
    assert before.max() == 6.0 and before.min() == 0.0
