"""Prediction heads: a small conv tower per output, all on the shared stride-4 feature map."""
import math

import numpy as np
from mindspore import Tensor, nn
from mindspore.common.initializer import HeUniform, Normal

from centerdet.models.layers import Conv2d


def conv_head(in_channels, out_channels, head_conv, bias_value=None, small_init=False):
    """3×3 conv → ReLU → 1×1 conv (head_conv > 0), or a single 1×1 conv (head_conv == 0).

    ``bias_value`` sets the last bias (the heatmap prior, −2.19 ≈ logit of 0.1, keeps the focal
    loss from exploding at the start); ``small_init`` draws weights from N(0, 0.001), as CenterNet
    does for the regression heads.
    """
    # MindSpore's default conv init, HeUniform(√5), is PyTorch's default; plain HeUniform would
    # give the heatmap logits a much wider spread than the −2.19 prior intends.
    weight_init = Normal(0.001) if small_init else HeUniform(math.sqrt(5))
    if head_conv > 0:
        cells = [Conv2d(in_channels, head_conv, 3, pad_mode="pad", padding=1, has_bias=True,
                           weight_init=weight_init, bias_init="zeros"),
                 nn.ReLU(),
                 Conv2d(head_conv, out_channels, 1, has_bias=True, weight_init=weight_init,
                           bias_init="zeros")]
    else:
        cells = [Conv2d(in_channels, out_channels, 1, has_bias=True, weight_init=weight_init,
                           bias_init="zeros")]
    head = nn.SequentialCell(cells)
    if bias_value is not None:
        last = cells[-1]
        last.bias.set_data(Tensor(np.full(last.bias.shape, bias_value, np.float32)))
    return head
