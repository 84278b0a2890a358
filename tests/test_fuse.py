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
    # CenterFace's four 1×1 heads run as one conv (CenterNet's heads have conv towers)
    assert folded.merged == (overrides.get("model") == "centerface")
