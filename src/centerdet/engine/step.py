"""The compiled training step: forward + loss, scaled backward, (distributed) gradient mean,
overflow check, dynamic loss scale update, optimizer update skipped on non-finite gradients."""
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.context import ParallelMode

from centerdet import cpu_ops


class NetWithLoss(nn.Cell):
    def __init__(self, net, loss):
        super().__init__(auto_prefix=False)
        self.net = net
        self.loss = loss

    def construct(self, image, *targets):
        return self.loss(self.net(image), *targets)


class TrainStep(nn.Cell):
    """Returns (loss, loss parts, overflow flag, loss scale) for one batch.

    ``scale_update`` is an nn.DynamicLossScaleUpdateCell (or None for a static scale): it lowers
    the scale and reports overflow when gradients are not finite, and the update is skipped.
    """

    def __init__(self, net_with_loss, optimizer, loss_scale=1.0, scale_update=None):
        super().__init__(auto_prefix=False)
        self.network = net_with_loss
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.scale_update = scale_update
        self.scale_sense = Parameter(Tensor(loss_scale, ms.float32), name="scale_sense")
        self.grad_fn = ms.value_and_grad(self.scaled_forward, None, self.weights, has_aux=True)
        self.hyper_map = ops.HyperMap()
        self.reducer = ops.identity
        self.distributed = ms.get_auto_parallel_context("parallel_mode") in (ParallelMode.DATA_PARALLEL,)
        if self.distributed:
            self.reducer = nn.DistributedGradReducer(self.weights)
        # A Div per gradient and amp.all_finite's two kernels per gradient: on CPU one fused pass
        # is ~70 ms cheaper for a ResNet-18 step.
        self.fused_unscale = cpu_ops.enabled()
        if self.fused_unscale:
            self.unscale_check = cpu_ops.unscale_all_finite_op()

    def scaled_forward(self, *inputs):
        loss, parts = self.network(*inputs)
        return loss * self.scale_sense, (loss, parts)

    def construct(self, *inputs):
        (_, (loss, parts)), grads = self.grad_fn(*inputs)
        grads = self.reducer(grads)
        scale = self.scale_sense
        if self.fused_unscale:
            unscaled = self.unscale_check(scale, *grads)
            grads, finite = tuple(unscaled[:-1]), unscaled[-1].reshape(())
        else:
            grads = self.hyper_map(ops.partial(_unscale, scale), grads)
            finite = ms.amp.all_finite(grads)
        overflow = ops.logical_not(finite)
        if self.scale_update is not None:
            overflow = self.scale_update(self.scale_sense, overflow)
        if not overflow:
            loss = ops.depend(loss, self.optimizer(grads))
        return loss, parts, overflow, scale


_unscale = ops.MultitypeFuncGraph("unscale")


@_unscale.register("Tensor", "Tensor")
def _unscale_tensor(scale, grad):
    return grad / ops.cast(scale, grad.dtype)
