"""The ModelInfer cases of the gRPC door's tests, with PyTorch's results for them.

Both clients of the door's tests use these cases: grpc_door_test.py (Python's grpcio)
imports this module; tests/inference/node/grpc_door.test.js (Node's @grpc/grpc-js) runs
it as a script and reads the JSON it prints. Each client encodes the inputs itself and
decodes the server's raw_output_contents itself; only the cases and PyTorch's numbers are
shared, so that no number in either test is typed by hand.

Every case runs in each datatype (FP32, FP64, FP16, BF16). The inputs are drawn from a
generator seeded by the case's name and rounded to the datatype, so every value sent is
exact in the datatype. |x| >= 0.05 keeps inputs off the kinks at 0, where an activation's
piece (and its gradient) changes. PyTorch computes in float64 on those exact values: y
with torch.nn.functional (gelu as PyTorch's erfc and sigmoid, see _gelu), dx (and
prelu's dweight) with autograd, dy = 1 when the case
sends no dy (the door's rule for an absent dy).

A result r of the server passes when |r - expected| <= rtol * scale + atol, with the
datatype's rtol and atol (TOLERANCES) and the element's scale: |expected| for a value
computed from its own inputs, and the sum of the magnitudes of the terms a value is made
of where terms cancel (softmax's dx, prelu's dweight, and gelu's dx, whose factor
Phi(x) + x phi(x) is zero near x = -0.75), so that a result near zero made of large terms
is not held to a bound finer than the rounding of those terms. The bounds
are a few units in the last place of each datatype (FP16 and BF16: the server computes
wider and rounds once); the kernels' accuracy is tested closer by tests/python's
torch_oracle_test.py, these tests check that the door carries the right numbers both ways.

    python3 grpc_torch_cases.py     # prints {"tolerances": ..., "cases": [...]} as JSON
"""

import dataclasses
import json
import math
import sys
import zlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

DATATYPES = ("FP32", "FP64", "FP16", "BF16")
TORCH_DTYPES = {"FP32": torch.float32, "FP64": torch.float64, "FP16": torch.float16,
                "BF16": torch.bfloat16}
# Units in the last place, relative: FP32 2^-23, FP64 2^-52, FP16 2^-10, BF16 2^-7.
TOLERANCES = {
    "FP32": {"rtol": 8 * 2.0 ** -23, "atol": 1e-30},
    # FP64: PyTorch's own float64 functions add a few units of their own.
    "FP64": {"rtol": 32 * 2.0 ** -52, "atol": 1e-300},
    "FP16": {"rtol": 2 * 2.0 ** -10, "atol": 2.0 ** -24},  # atol: the smallest subnormal
    "BF16": {"rtol": 2 * 2.0 ** -7, "atol": 1e-30},
}
# The model's outputs in ModelMetadata's order: the order of the reply when the request
# names no output.
MODEL_OUTPUTS = {"prelu": ("y", "dx", "dweight")}
DEFAULT_OUTPUTS = ("y", "dx")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    model: str
    # The request's parameters: name -> (InferParameter's field, value).
    parameters: Dict[str, Tuple[str, object]]
    shape: Tuple[int, ...]
    send_dy: bool
    outputs: Tuple[str, ...]  # the requested outputs, in request order; () asks for all
    weight_shape: Optional[Tuple[int, ...]] = None  # prelu: the weight as an input
    # The order of the request's inputs (the door finds them by name, not by place).
    input_order: Tuple[str, ...] = ("x", "dy", "weight")

    def reply_outputs(self) -> Tuple[str, ...]:
        """The outputs the reply holds, in its order."""
        return self.outputs or MODEL_OUTPUTS.get(self.model, DEFAULT_OUTPUTS)

    def sent_inputs(self) -> Tuple[str, ...]:
        """The inputs the request holds, in its order."""
        return tuple(name for name in self.input_order
                     if name == "x" or (name == "dy" and self.send_dy)
                     or (name == "weight" and self.weight_shape is not None))

    def parameter_values(self) -> Dict[str, object]:
        return {name: value for name, (_, value) in self.parameters.items()}


CASES = (
    Case("relu forward", "relu", {}, (2, 5), False, ("y",)),
    Case("relu backward, dy absent", "relu", {}, (2, 5), False, ("dx",)),
    Case("gelu approximate=tanh, y and dx", "gelu",
         {"approximate": ("string_param", "tanh")}, (3, 4), True, ("y", "dx")),
    Case("gelu exact, every output, dy absent", "gelu", {}, (7,), False, ()),
    Case("leaky_relu negative_slope int, dx before y", "leaky_relu",
         {"negative_slope": ("int64_param", 2)}, (2, 4), True, ("dx", "y")),
    Case("leaky_relu negative_slope double, backward", "leaky_relu",
         {"negative_slope": ("double_param", 0.2)}, (9,), True, ("dx",)),
    Case("softmax dim=1, every output", "softmax", {"dim": ("int64_param", 1)},
         (2, 3, 4), True, ()),
    Case("softmax dim=0, forward", "softmax", {"dim": ("int64_param", 0)}, (3, 4), False,
         ("y",)),
    Case("softplus beta=2, every output", "softplus", {"beta": ("double_param", 2.0)},
         (6,), True, ()),
    Case("prelu weight input, every output, inputs out of order", "prelu", {}, (2, 3, 4),
         True, (), weight_shape=(3,), input_order=("weight", "dy", "x")),
    Case("prelu dweight alone, dy absent", "prelu", {}, (2, 3, 4), False, ("dweight",),
         weight_shape=(3,)),
    Case("prelu forward with weight", "prelu", {}, (4, 2), False, ("y",), weight_shape=(2,)),
    Case("prelu one weight for every channel, dweight before y", "prelu", {}, (3, 5), True,
         ("dweight", "y"), weight_shape=(1,)),
    Case("prelu weight parameter, y and dx", "prelu", {"weight": ("double_param", 0.375)},
         (2, 3), True, ("y", "dx")),
    Case("prelu default weight, every output", "prelu", {}, (5,), True, ()),
    Case("relu empty tensor, every output", "relu", {}, (3, 0), True, ()),
    Case("softplus scalar (shape []), every output", "softplus", {}, (), True, ()),
    # Long enough for every SIMD width and a tail, and for the engine to split the work.
    Case("gelu approximate=tanh, 3000 elements", "gelu",
         {"approximate": ("string_param", "tanh")}, (3, 1000), True, ()),
)


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def _gelu(x: torch.Tensor, approximate: str) -> torch.Tensor:
    """GELU in float64 without the cancellation of F.gelu's 1 + erf(x / sqrt(2)) and
    1 + tanh(u) at x < 0 (which costs PyTorch's own float64 result up to hundreds of units
    in the last place near x = -3, more than the server's kernels err): the same functions
    of PyTorch written as 0.5 * erfc(-x / sqrt(2)) and sigmoid(2u). _checked_gelu holds
    them to F.gelu within that cancellation."""
    if approximate == "tanh":
        u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
        return x * torch.sigmoid(2.0 * u)
    return 0.5 * x * torch.special.erfc(-x / math.sqrt(2.0))


def _checked_gelu(x: torch.Tensor, approximate: str) -> None:
    """Raises unless _gelu is F.gelu, within F.gelu's cancellation (eps * |x| terms)."""
    ours = _gelu(x, approximate)
    theirs = F.gelu(x, approximate=approximate)
    bound = 64 * torch.finfo(torch.float64).eps * (x.abs() + ours.abs())
    if not bool(((ours - theirs).abs() <= bound).all()):
        raise AssertionError(f"_gelu({approximate}) differs from F.gelu beyond {bound.max()}")


def _forward(case: Case, x: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    params = case.parameter_values()
    if case.model == "relu":
        return F.relu(x)
    if case.model == "gelu":
        return _gelu(x, params.get("approximate", "none"))
    if case.model == "leaky_relu":
        return F.leaky_relu(x, float(params.get("negative_slope", 0.01)))
    if case.model == "softmax":
        return F.softmax(x, dim=int(params.get("dim", -1)))
    if case.model == "softplus":
        return F.softplus(x, beta=float(params.get("beta", 1.0)),
                          threshold=float(params.get("threshold", 20.0)))
    if case.model == "prelu":
        return F.prelu(x, weight)
    raise ValueError(f"no PyTorch function for {case.model}")


def _rounded(values: np.ndarray, datatype: str) -> torch.Tensor:
    """`values` rounded to the datatype, held in float64 (exactly)."""
    return torch.from_numpy(np.asarray(values)).to(TORCH_DTYPES[datatype]).to(torch.float64)


def inputs_of(case: Case, datatype: str) -> Dict[str, torch.Tensor]:
    """The case's inputs in `datatype` (float64 tensors holding the datatype's values)."""
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    magnitude = rng.uniform(0.05, 3.0, case.shape)
    sign = rng.choice((-1.0, 1.0), case.shape)
    inputs = {"x": _rounded(magnitude * sign, datatype)}
    if case.send_dy:
        inputs["dy"] = _rounded(rng.uniform(-2.0, 2.0, case.shape), datatype)
    if case.weight_shape is not None:
        inputs["weight"] = _rounded(rng.uniform(-0.5, 1.5, case.weight_shape), datatype)
    return inputs


def expected_of(case: Case, inputs: Dict[str, torch.Tensor]):
    """PyTorch's results for `inputs`: name -> (expected, scale), float64 tensors."""
    if case.model == "gelu":
        _checked_gelu(inputs["x"], case.parameter_values().get("approximate", "none"))
    x = inputs["x"].clone().requires_grad_(True)
    weight = inputs.get("weight")
    if case.model == "prelu" and weight is None:
        # The weight parameter, or nn.PReLU's 0.25: one weight for every channel.
        weight = torch.tensor([float(case.parameter_values().get("weight", 0.25))],
                              dtype=torch.float64)
    if weight is not None:
        weight = weight.clone().requires_grad_(True)
    dy = inputs.get("dy", torch.ones_like(inputs["x"]))
    y = _forward(case, x, weight)
    y.backward(dy)
    results = {"y": (y.detach(), y.detach().abs()), "dx": (x.grad, x.grad.abs())}
    if case.model == "gelu":
        results["dx"] = (x.grad, torch.maximum(x.grad.abs(), dy.abs()))
    if case.model == "softmax":
        # dx = y * (dy - sum(y * dy)): the terms are y * dy and y * sum(y * dy).
        dim = int(case.parameter_values().get("dim", -1))
        y_value = y.detach()
        terms = y_value.abs() * (dy.abs() + (y_value * dy).abs().sum(dim, keepdim=True))
        results["dx"] = (x.grad, terms)
    if weight is not None:
        # dweight_c = sum over x <= 0 of x * dy, in channel c (dim 1, or all for one weight).
        products = torch.where(inputs["x"] <= 0, (inputs["x"] * dy).abs(),
                               torch.zeros_like(dy))
        if weight.numel() == 1:
            terms = products.sum().reshape(weight.shape)
        else:
            dims = [d for d in range(products.dim()) if d != 1]
            terms = products.sum(dims)
        results["dweight"] = (weight.grad, terms)
    return {name: results[name] for name in case.reply_outputs()}


def as_json() -> dict:
    """Every case in every datatype: inputs and PyTorch's results as plain numbers."""
    cases = []
    for case in CASES:
        per_datatype = {}
        for datatype in DATATYPES:
            inputs = inputs_of(case, datatype)
            expected = expected_of(case, inputs)
            per_datatype[datatype] = {
                "inputs": {name: {"shape": list(tensor.shape),
                                  "values": tensor.flatten().tolist()}
                           for name, tensor in inputs.items()},
                "outputs": {name: {"shape": list(value.shape),
                                   "expected": value.flatten().tolist(),
                                   "scale": scale.flatten().tolist()}
                            for name, (value, scale) in expected.items()},
            }
        cases.append({
            "name": case.name,
            "model": case.model,
            "parameters": {name: {kind: value}
                           for name, (kind, value) in case.parameters.items()},
            "requested_outputs": list(case.outputs),
            "reply_outputs": list(case.reply_outputs()),
            "input_order": list(case.sent_inputs()),
            "datatypes": per_datatype,
        })
    return {"tolerances": TOLERANCES, "cases": cases}


if __name__ == "__main__":
    torch.set_num_threads(1)
    json.dump(as_json(), sys.stdout)
    sys.stdout.write("\n")
