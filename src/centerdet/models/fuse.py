"""Inference only: fold every BatchNorm into the convolution in front of it.

In eval mode BN(conv(x)) = conv'(x) with weights scaled per output channel by γ/√(σ²+ε) and a bias
β + (b − μ)·γ/√(σ²+ε). MindSpore's CPU BatchNorm kernel costs about five times PyTorch's, and a
network like CenterFace runs ~60 of them over large maps, so eval.py, test.py and export.py run
the folded network (the checkpoint keeps its BatchNorm tensors; training never sees this). A
ReLU/ReLU6 the BatchNorm cell carried then runs inside the conv's kernel (on centerdet's CPU
kernels; ~7 % of a ResNet-50 forward was separate ReLU passes), with the bias in one pass after a
transposed conv's kernel, or as its own cell. Cells with a ``fuse_folded`` method then fuse what
the folding made fusable: a ResNet block's shortcut add and the ReLU after it run inside its last
conv, MobileNetV2's expand and depthwise convs as one kernel, the ida neck's lateral sums in its
up-convs' bias passes, the neck's output channel-blocked into the heads, one-conv heads as one
conv (MobileNetV2's residual adds ran no faster inside the kernel, which first copies the
residual into its output).
"""
import numpy as np
from mindspore import Parameter, Tensor, nn

from centerdet.models.dcn import ModulatedDeformConv2d
from centerdet.models.layers import Conv2d, Conv2dTranspose

CONVS = (nn.Conv2d, nn.Conv2dTranspose, ModulatedDeformConv2d)
# Attribute pairs of cells that call bn(conv(x)) by name (ResNet's stem and blocks).
NAMED_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))
PLAIN_ACTIVATIONS = {nn.ReLU: "relu", nn.ReLU6: "relu6"}


def _fold(conv, bn, name):
    gamma, beta, mean, var = (p.asnumpy().astype(np.float64) for p in
                              (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    scale = gamma / np.sqrt(var + bn.eps)
    weight = conv.weight.asnumpy().astype(np.float64)
    out_axis = 1 if isinstance(conv, nn.Conv2dTranspose) else 0  # Conv2dTranspose: (in, out, kh, kw)
    shape = [1, 1, 1, 1]
    shape[out_axis] = -1
    has_bias = isinstance(conv, ModulatedDeformConv2d) or conv.has_bias
    bias = conv.bias.asnumpy().astype(np.float64) if has_bias else np.zeros(len(scale))
    conv.weight.set_data(Tensor((weight * scale.reshape(shape)).astype(np.float32)))
    folded_bias = Tensor((beta + (bias - mean) * scale).astype(np.float32))
    if has_bias:
        conv.bias.set_data(folded_bias)
    else:
        conv.bias = Parameter(folded_bias, name=f"{name}.bias")
        conv.has_bias = True


def _replacement(conv, bn):
    """What stays of a BatchNorm folded into ``conv``: its activation (layers.BatchNorm2d may carry
    one) as a cell, or nothing when there is none or the conv's kernel now applies it."""
    act = getattr(bn, "activation", None)
    if act is None or (isinstance(conv, (Conv2d, Conv2dTranspose)) and conv.fuse_activation(act)):
        return nn.Identity()
    return {"relu": nn.ReLU, "relu6": nn.ReLU6}[act]()


def fold_batchnorm(net):
    """Fold in place every BatchNorm2d that directly follows a conv (and move the activations that
    follow a biased conv into its kernel where it can); returns how many BatchNorms were folded.
    Call after loading weights and before the first (graph-compiling) call, with the net in eval
    mode; the result is for inference only, and its weights are frozen (Conv2d.freeze_weights):
    load a checkpoint into a fresh network, not into a folded one."""
    folded = 0
    for name, cell in list(net.cells_and_names()):
        if isinstance(cell, nn.SequentialCell):
            children = list(cell)
            for i in range(len(children) - 1):
                if isinstance(children[i], CONVS) and isinstance(children[i + 1], nn.BatchNorm2d):
                    _fold(children[i], children[i + 1], f"{name}.{i}")
                    cell[i + 1] = _replacement(children[i], children[i + 1])
                    folded += 1
                elif isinstance(children[i], Conv2d) and type(children[i + 1]) in PLAIN_ACTIVATIONS:
                    # conv → ReLU without a BatchNorm between (the heads): the kernel can apply it too
                    if children[i].fuse_activation(PLAIN_ACTIVATIONS[type(children[i + 1])]):
                        cell[i + 1] = nn.Identity()
        for conv_attr, bn_attr in NAMED_PAIRS:
            conv, bn = getattr(cell, conv_attr, None), getattr(cell, bn_attr, None)
            if isinstance(conv, CONVS) and isinstance(bn, nn.BatchNorm2d):
                _fold(conv, bn, f"{name}.{conv_attr}")
                setattr(cell, bn_attr, _replacement(conv, bn))
                folded += 1
    for _, cell in list(net.cells_and_names()):
        if hasattr(cell, "fuse_folded"):
            cell.fuse_folded()
    for _, cell in net.cells_and_names():
        if isinstance(cell, (Conv2d, Conv2dTranspose)):
            cell.freeze_weights()
    return folded


def count_batchnorm(net):
    return sum(isinstance(cell, nn.BatchNorm2d) for _, cell in net.cells_and_names())
