"""PyTorch bridge: run a model's activation on an actserve server, forward and backward.

    import torch
    import actserve
    from actserve.torch import RemoteActivation

    client = actserve.Client("localhost:50051")
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), RemoteActivation("silu", client),
                                torch.nn.Linear(16, 1))
    loss = model(torch.randn(4, 8)).square().mean()
    loss.backward()  # the activation's backward pass runs on the server too

The forward pass calls the service with mode "forward". The backward pass calls it again
with mode "backward" and the real upstream gradient dy as grad_output, so that the
server computes dx = dy * f'(x) for elementwise activations and the full vector-Jacobian
product for softmax and log_softmax (which is not dy times anything elementwise). PReLU's
weight is an ``nn.Parameter`` and receives the server's grad_weight. Two round trips per
training step per activation: the price of exact gradients for every activation.

The autograd Function is once-differentiable (no double backward). Tensors on other
devices are computed on the server and returned to their device.

Copies on the client, for CPU tensors: the forward pass sends x straight from its memory
(the request's one copy) and its output is a tensor over the one array the reply is
copied into; the backward pass likewise sends x and dy, and dx is the one copy of the
reply. Only a dy that is not contiguous (e.g. the expanded ones of ``y.sum().backward()``)
is made contiguous first, a second copy.

Note for readers: this module is ``actserve.torch``; ``import torch`` below is an
absolute import (Python 3), so it loads PyTorch, not this module.
"""

from typing import Optional, Union

import torch
from torch.autograd.function import once_differentiable

from actserve.client import Client
from actserve.spec import parse_activation

__all__ = ["RemoteActivationFunction", "RemoteActivation", "remote_activation"]


class RemoteActivationFunction(torch.autograd.Function):
    """``y = f(x)`` computed by an actserve server; ``apply(x, weight, client, activation)``.

    ``weight``: PReLU's weight tensor (one value, or one per channel along dim 1), else
    None. ``activation``: the text form, e.g. ``"gelu(approximate=tanh)"``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: Optional[torch.Tensor], client: Client,
                activation: str) -> torch.Tensor:
        ctx.client = client
        ctx.activation = activation
        ctx.save_for_backward(x, weight)
        return client.compute(x, activation, mode="forward", weight=weight).output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        x, weight = ctx.saved_tensors
        result = ctx.client.compute(x, ctx.activation, mode="backward",
                                    grad_output=grad_output, weight=weight)
        grad_weight = result.grad_weight if weight is not None else None
        grad_input = result.grad_input if ctx.needs_input_grad[0] else None
        if grad_weight is not None and not ctx.needs_input_grad[1]:
            grad_weight = None
        return grad_input, grad_weight, None, None


def remote_activation(x: torch.Tensor, activation: str, client: Client,
                      weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The functional form: ``activation(x)`` on the server, differentiable in x (and in
    PReLU's ``weight``)."""
    return RemoteActivationFunction.apply(x, weight, client, activation)


class RemoteActivation(torch.nn.Module):
    """An activation layer computed by an actserve server.

    Args:
        activation: the text form, e.g. ``"silu"``, ``"leaky_relu(negative_slope=0.2)"``,
            ``"softmax(dim=1)"``. For ``"prelu"`` the layer owns a learnable weight, as
            ``torch.nn.PReLU`` does: ``num_parameters`` values (1, or the channel count
            along dim 1), initialised to ``init`` (default: the spec's ``weight=`` value,
            else PyTorch's 0.25).
        client: an ``actserve.Client``, or a target string to make one.

    Raises ``actserve.Error`` for an unknown activation, before any call.
    """

    def __init__(self, activation: str, client: Union[Client, str],
                 num_parameters: int = 1, init: Optional[float] = None,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        spec = parse_activation(activation)
        self.client = client if isinstance(client, Client) else Client(client)
        if spec.name == "prelu":
            # Without a weight= value, the catalogue's default (nn.PReLU's 0.25).
            value = spec.value("weight") if init is None else init
            self.weight = torch.nn.Parameter(
                torch.full((num_parameters,), float(value), dtype=dtype or torch.float32))
            # The weight travels as a tensor; the text form's value only initialises it.
            self.activation = "prelu"
        else:
            self.register_parameter("weight", None)
            self.activation = str(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if weight is not None and weight.dtype != x.dtype:
            weight = weight.to(x.dtype)  # the wire needs the input's dtype; autograd casts back
        return RemoteActivationFunction.apply(x, weight, self.client, self.activation)

    def extra_repr(self) -> str:
        extra = f", num_parameters={self.weight.numel()}" if self.weight is not None else ""
        return f"{self.activation!r}, target={self.client.target!r}{extra}"
