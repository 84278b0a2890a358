"""The CenterFace network: head shapes and init, and --pretrained_backbone loading."""
import numpy as np
import pytest

import centerdet  # noqa: F401
import mindspore as ms
from mindspore import Tensor

from centerdet.config import load_config
from centerdet.engine.checkpoint import load_backbone
from centerdet.errors import CenterDetError
from centerdet.models import build_model


@pytest.fixture(autouse=True)
def graph():
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    yield


def _cfg(**kw):
    return load_config(None, {k: str(v) for k, v in kw.items()}, model="centerface")


def test_four_heads_at_stride_4_with_model_zoo_init():
    ms.set_seed(0)
    net = build_model(_cfg(head_conv=24))
    net.set_train(False)
    outs = net(Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype(np.float32)))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 16, 24), (2, 2, 16, 24), (2, 2, 16, 24), (2, 10, 16, 24)]
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    for head in ("hm", "wh", "reg", "lm"):
        weights = [v for k, v in params.items() if k.startswith(head + ".") and k.endswith("weight")]
        assert len(weights) == 1 and weights[0].shape[1:] == (24, 1, 1)   # a single 1×1 conv per head
        assert 0.0005 < weights[0].std() < 0.002                           # N(0, 0.001)
    assert not params["hm.0.bias"].any()                                    # model zoo: no heatmap prior
    assert (build_model(_cfg(hm_bias=-2.19)).hm[0].bias.asnumpy() == np.float32(-2.19)).all()


def _save(path, named):
    ms.save_checkpoint([{"name": k, "data": Tensor(v)} for k, v in named.items()], str(path))


def test_pretrained_backbone_loads_every_tensor_with_or_without_prefix(tmp_path):
    ms.set_seed(1)
    src = build_model(_cfg())
    rng = np.random.default_rng(0)
    weights = {p.name[len("backbone."):]: rng.standard_normal(p.shape).astype(np.float32)
               for p in src.get_parameters() if p.name.startswith("backbone.")}
    _save(tmp_path / "bare.ckpt", weights)
    _save(tmp_path / "prefixed.ckpt", {"backbone." + k: v for k, v in weights.items()})
    for name in ("bare.ckpt", "prefixed.ckpt"):
        net = build_model(_cfg())
        head_before = net.hm[0].weight.asnumpy().copy()
        loaded = load_backbone(net, str(tmp_path / name), log=lambda *_: None)
        assert len(loaded) == len(weights) == 255   # features.0..17, see test_mobilenetv2
        got = {p.name: p.asnumpy() for p in net.get_parameters()}
        for k, v in weights.items():
            np.testing.assert_array_equal(got["backbone." + k], v)
        np.testing.assert_array_equal(got["hm.0.weight"], head_before)


def test_pretrained_backbone_mismatch_is_one_line_error(tmp_path):
    net = build_model(_cfg())
    own = {p.name[len("backbone."):]: p.asnumpy() for p in net.get_parameters() if p.name.startswith("backbone.")}
    wrong = dict(own)
    wrong["features.0.0.weight"] = np.zeros((16, 3, 3, 3), np.float32)
    _save(tmp_path / "shape.ckpt", wrong)
    with pytest.raises(CenterDetError, match=r"features\.0\.0\.weight has shape .*does not fit|does not fit.*features\.0\.0\.weight"):
        load_backbone(net, str(tmp_path / "shape.ckpt"), log=lambda *_: None)
    partial = {k: v for k, v in own.items() if not k.startswith("features.17")}
    _save(tmp_path / "partial.ckpt", partial)
    with pytest.raises(CenterDetError, match="missing"):
        load_backbone(net, str(tmp_path / "partial.ckpt"), log=lambda *_: None)
