"""PyTorch as an independent oracle for actserve, over the wire.

For every activation PyTorch has (24, GELU in both forms, parameterised ones with their
defaults and with other values), every dtype (float32, float64, float16, bfloat16) and
every mode (forward, backward, forward_backward, and backward without dy), actserve's
output, grad_input and PReLU grad_weight are compared with torch.nn.functional and
autograd on the same inputs: random values, every kink and its neighbours, +-0, the
smallest subnormal, the smallest normal, the largest finite value (1e100 in float64, see
below) and values over every binade.

The reference is PyTorch in float64 on the dtype's exact input values, rounded to the
dtype. actserve computes half precision wider and rounds once, so float16 and bfloat16
must be within 1 ULP of that; float32 and float64 within the per-activation bounds
documented by the kernels (tests/kernels/kernel_accuracy_test.cc) plus 1 ULP for
PyTorch's own float64 rounding. Where a result is small against the terms that cancel to
make it, the bound is absolute instead (the kernels' abs_eps, and PyTorch's float64 error
in formulas such as 1 + erf(x / sqrt(2)) at x << 0).

Where actserve deviates from PyTorch on purpose (DESIGN.md section 3), DEVIATIONS lists
it and the tests check actserve's documented value instead; where the deviation is a
PyTorch value that does not depend on the CPU's SIMD path, the test also checks that
PyTorch still gives it, so the table stays true. Any other disagreement fails, with the
input and both values in the message.
"""

import dataclasses
import math
import unittest
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

import actserve
from server_process import ServerProcess

SERVER = None
CLIENT = None


def setUpModule():
    global SERVER, CLIENT
    torch.set_num_threads(1)
    SERVER = ServerProcess().start()
    CLIENT = actserve.Client(SERVER.target, timeout=120)


def tearDownModule():
    CLIENT.close()
    SERVER.stop_cleanly()


# ---------------------------------------------------------------------------------------
# The deviations from PyTorch 1.13, as client/python/README.md lists them.

@dataclasses.dataclass(frozen=True)
class Deviation:
    activations: str
    inputs: str
    result: str
    pytorch: str
    actserve: str


DEVIATIONS = (
    Deviation("every activation", "NaN", "output and grad_input (and grad_weight)",
              "not always NaN: softshrink's output is 0; the backward of relu, relu6, "
              "leaky_relu, prelu, elu, celu, selu, hardtanh, hardsigmoid, hardswish, "
              "softshrink, hardshrink and threshold gives g, slope * g or 0, depending on "
              "the kernel's SIMD path", "NaN"),
    Deviation("gelu (both forms), silu, mish, hardswish", "-Inf", "output", "NaN", "0"),
    Deviation("gelu (both forms), silu, mish", "+Inf", "grad_input", "NaN", "g"),
    Deviation("gelu (both forms), silu, mish", "-Inf", "grad_input", "NaN", "0"),
    Deviation("softsign", "+-Inf", "output", "NaN", "+-1"),
    Deviation("softsign", "+-Inf", "grad_input", "NaN", "0"),
    Deviation("gelu(approximate=tanh)", "float64 huge |x|, e.g. 1e200 (x^3 overflows)",
              "grad_input", "NaN", "g for x > 0, 0 for x < 0"),
    Deviation("hardswish", "float64 x > 3e307 (x * 6 overflows)", "output", "+Inf", "x"),
    Deviation("hardswish", "x = 3", "grad_input",
              "g in the vectorized kernel, 1.5 * g in the scalar one",
              "1.5 * g (DESIGN.md's table)"),
    Deviation("hardsigmoid", "float64, -3 < x < 3", "grad_input",
              "g * 0.1666666716337204 (1/6 rounded to float32)", "g / 6"),
    Deviation("every activation", "float16 and bfloat16", "every result",
              "computed in the half type (several roundings)",
              "computed in float32 or wider and rounded once; compared with PyTorch in "
              "float64 rounded to the dtype, within 1 ULP"),
)


# ---------------------------------------------------------------------------------------
# The activations.

@dataclasses.dataclass(frozen=True)
class Case:
    spec: str                           # actserve's text form
    torch_fn: Callable                  # (x, weight) -> y, in PyTorch
    kinks: Sequence[float] = ()         # where the pieces meet
    # f(-inf), f(+inf), f'(-inf), f'(+inf) (the last two as multiples of g): the limits.
    limits: Optional[Tuple[float, float, float, float]] = None
    weight: Optional[Sequence[float]] = None  # PReLU's weight, one per channel (dim 1)

    @property
    def kind(self) -> str:
        return actserve.parse_activation(self.spec).name


INF = math.inf
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

ELEMENTWISE = (
    Case("relu", lambda x, w: F.relu(x), (0,), (0, INF, 0, 1)),
    Case("relu6", lambda x, w: F.relu6(x), (0, 6), (0, 6, 0, 0)),
    Case("leaky_relu", lambda x, w: F.leaky_relu(x), (0,), (-INF, INF, 0.01, 1)),
    Case("leaky_relu(negative_slope=0.2)", lambda x, w: F.leaky_relu(x, 0.2), (0,),
         (-INF, INF, 0.2, 1)),
    Case("prelu", lambda x, w: F.prelu(x, w), (0,), weight=(0.25, -0.5, 1.5)),
    Case("prelu", lambda x, w: F.prelu(x, w), (0,), weight=(0.1,)),
    Case("elu", lambda x, w: F.elu(x), (0,), (-1, INF, 0, 1)),
    Case("elu(alpha=0.5)", lambda x, w: F.elu(x, 0.5), (0,), (-0.5, INF, 0, 1)),
    Case("celu", lambda x, w: F.celu(x), (0,), (-1, INF, 0, 1)),
    Case("celu(alpha=2)", lambda x, w: F.celu(x, 2.0), (0,), (-2, INF, 0, 1)),
    Case("selu", lambda x, w: F.selu(x), (0,), (-SELU_SCALE * SELU_ALPHA, INF, 0, SELU_SCALE)),
    Case("gelu", lambda x, w: F.gelu(x), (0, -0.75), (0, INF, 0, 1)),
    Case("gelu(approximate=tanh)", lambda x, w: F.gelu(x, approximate="tanh"), (0, -0.75),
         (0, INF, 0, 1)),
    Case("silu", lambda x, w: F.silu(x), (0, -1.28), (0, INF, 0, 1)),
    Case("mish", lambda x, w: F.mish(x), (0, -1.19), (0, INF, 0, 1)),
    Case("softplus", lambda x, w: F.softplus(x), (0, 20), (0, INF, 0, 1)),
    Case("softplus(beta=2, threshold=10)", lambda x, w: F.softplus(x, 2, 10), (0, 5),
         (0, INF, 0, 1)),
    Case("hardtanh", lambda x, w: F.hardtanh(x), (-1, 1), (-1, 1, 0, 0)),
    Case("hardtanh(min_val=-2, max_val=0.5)", lambda x, w: F.hardtanh(x, -2.0, 0.5), (-2, 0.5),
         (-2, 0.5, 0, 0)),
    Case("hardsigmoid", lambda x, w: F.hardsigmoid(x), (-3, 3), (0, 1, 0, 0)),
    Case("hardswish", lambda x, w: F.hardswish(x), (-3, 3, -1.5), (0, INF, 0, 1)),
    Case("sigmoid", lambda x, w: torch.sigmoid(x), (0,), (0, 1, 0, 0)),
    Case("tanh", lambda x, w: torch.tanh(x), (0,), (-1, 1, 0, 0)),
    Case("logsigmoid", lambda x, w: F.logsigmoid(x), (0,), (-INF, 0, 1, 0)),
    Case("softsign", lambda x, w: F.softsign(x), (0,), (-1, 1, 0, 0)),
    Case("tanhshrink", lambda x, w: F.tanhshrink(x), (0,), (-INF, INF, 1, 1)),
    Case("softshrink", lambda x, w: F.softshrink(x), (-0.5, 0.5), (-INF, INF, 1, 1)),
    Case("softshrink(lambd=1)", lambda x, w: F.softshrink(x, 1.0), (-1, 1), (-INF, INF, 1, 1)),
    Case("hardshrink", lambda x, w: F.hardshrink(x), (-0.5, 0.5), (-INF, INF, 1, 1)),
    Case("hardshrink(lambd=0.25)", lambda x, w: F.hardshrink(x, 0.25), (-0.25, 0.25),
         (-INF, INF, 1, 1)),
    Case("threshold(threshold=0.5, value=-2)", lambda x, w: F.threshold(x, 0.5, -2.0), (0.5,),
         (-2, INF, 0, 1)),
    Case("threshold(threshold=-1, value=20)", lambda x, w: F.threshold(x, -1.0, 20.0), (-1,),
         (20, INF, 0, 1)),
)

SOFTMAX = (
    Case("softmax", lambda x, w: F.softmax(x, dim=-1)),
    Case("softmax(dim=0)", lambda x, w: F.softmax(x, dim=0)),
    Case("softmax(dim=1)", lambda x, w: F.softmax(x, dim=1)),
    Case("log_softmax", lambda x, w: F.log_softmax(x, dim=-1)),
    Case("log_softmax(dim=0)", lambda x, w: F.log_softmax(x, dim=0)),
    Case("log_softmax(dim=-2)", lambda x, w: F.log_softmax(x, dim=-2)),
)


def covered_activations():
    return {case.kind for case in ELEMENTWISE + SOFTMAX}


# ---------------------------------------------------------------------------------------
# dtypes, ULPs and tolerances.

@dataclasses.dataclass(frozen=True)
class DType:
    name: str
    torch: torch.dtype
    precision: int      # significand bits, with the implicit one
    min_exponent: int   # of the smallest normal number
    max_finite: float
    lane_eps: float     # epsilon of the precision actserve computes in


DTYPES = (
    DType("float32", torch.float32, 24, -126, float(np.finfo(np.float32).max), 2.0 ** -23),
    DType("float64", torch.float64, 53, -1022, float(np.finfo(np.float64).max), 2.0 ** -52),
    DType("float16", torch.float16, 11, -14, 65504.0, 2.0 ** -23),
    DType("bfloat16", torch.bfloat16, 8, -126, 3.3895313892515355e38, 2.0 ** -23),
)
HALF = ("float16", "bfloat16")

# Bounds in ULP of the dtype, (forward, backward), for float32 and float64: the kernels'
# documented maxima (tests/kernels/kernel_accuracy_test.cc). float16 / bfloat16: 1 ULP.
_ULP_BOUNDS_F32 = {
    "leaky_relu": (1, 1), "prelu": (1, 1), "hardsigmoid": (2, 2), "hardswish": (2, 2),
    "softsign": (1.5, 3), "elu": (2, 2.5), "celu": (2, 2.5), "selu": (2, 2.5),
    "sigmoid": (3, 4), "logsigmoid": (3, 4), "softplus": (3, 4), "tanh": (2.5, 5),
    "silu": (3, 3), "mish": (3, 5), "gelu": (3.5, 4.5), "tanhshrink": (1, 2.5),
    "softmax": (4, 4), "log_softmax": (4, 4),
}
_ULP_BOUNDS_F64 = dict(_ULP_BOUNDS_F32, leaky_relu=(0.5, 0.5), prelu=(0.5, 0.5),
                       gelu=(4.5, 4.5), tanhshrink=(12, 5.5))
# Where the result is small against the terms that cancel to make it: an absolute bound
# of ABS_EPS * lane_eps * scale (the kernels' abs_eps), scale as in _scales.
_ABS_EPS = {"hardsigmoid": 1, "hardswish": 1, "sigmoid": 1, "logsigmoid": 1,
            "softplus": 1, "tanh": 1, "silu": 2, "mish": 2, "gelu": 2, "tanhshrink": 4,
            "softmax": 8, "log_softmax": 8}
# PyTorch's own float64 error, relative to the terms of its formulas.
_TORCH_EPS = 16 * 2.0 ** -52


def ulp(values: np.ndarray, dtype: DType) -> np.ndarray:
    """The spacing of `dtype`'s numbers at each of `values` (float64), subnormals included."""
    magnitude = np.abs(values.astype(np.float64))
    _, exponent = np.frexp(np.where(np.isfinite(magnitude), magnitude, 1.0))
    exponent = np.maximum(exponent - 1, dtype.min_exponent)
    return np.ldexp(1.0, exponent - dtype.precision + 1)


def ulp_bounds(kind: str, dtype: DType) -> Tuple[float, float]:
    if dtype.name in HALF:
        return 1.0, 1.0
    table = _ULP_BOUNDS_F64 if dtype.name == "float64" else _ULP_BOUNDS_F32
    forward, backward = table.get(kind, (0.5, 0.5))
    return forward + 1, backward + 1  # + PyTorch's float64 rounding and ours to the dtype


# ---------------------------------------------------------------------------------------
# Inputs and the reference.

def to_dtype(values: np.ndarray, dtype: DType) -> torch.Tensor:
    """float64 values rounded to `dtype` (PyTorch's rounding), as a tensor of that dtype."""
    with np.errstate(over="ignore"):
        return torch.from_numpy(np.asarray(values, dtype=np.float64)).to(dtype.torch)


def as_float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.to(torch.float64).numpy()


def elementwise_inputs(case: Case, dtype: DType, seed: int) -> np.ndarray:
    """Every kink with its neighbours, signed zeros, the smallest subnormal and normal, the
    largest finite value (1e100 in float64: PyTorch overflows beyond it, see
    DEVIATIONS), values over every binade, and random values; float64 values exactly
    representable in `dtype`, shaped (-1, 3) so that PReLU has 3 channels."""
    rng = np.random.default_rng(seed)
    tiny = 2.0 ** (dtype.min_exponent - dtype.precision + 1)
    normal = 2.0 ** dtype.min_exponent
    largest = 1e100 if dtype.name == "float64" else dtype.max_finite
    points = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 20.0, -20.0, 40.0, -40.0]
    points += [s * v for v in (tiny, 3 * tiny, normal, largest, largest / 7) for s in (1, -1)]
    for kink in case.kinks:
        step = float(ulp(np.array([kink]), dtype)[0])
        points += [kink, kink - step, kink + step, kink - 0.01, kink + 0.01]
    exponents = rng.uniform(math.log2(tiny), math.log2(largest), 60)
    points += list(np.exp2(exponents) * rng.choice([-1.0, 1.0], 60))
    points += list(rng.standard_normal(120) * 4)
    values = as_float64(to_dtype(np.array(points), dtype))
    values = np.concatenate([values, np.zeros(-len(values) % 3)])
    return values.reshape(-1, 3)


def softmax_inputs(dtype: DType, seed: int) -> np.ndarray:
    """A (4, 5, 6) tensor: random rows, a row of large spread, and -Inf entries (masking)
    that leave every slice along every dim with a finite entry."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5, 6)) * 3
    x[1, 2, :] = np.linspace(-60, 60, 6)
    x[2, 0, 1] = x[3, 4, 5] = -INF
    return as_float64(to_dtype(x, dtype))


def random_grad(shape, dtype: DType, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    return as_float64(to_dtype(rng.standard_normal(shape) * 2, dtype))


@dataclasses.dataclass
class Reference:
    y: np.ndarray
    dx: np.ndarray
    dw: Optional[np.ndarray]
    dw_scale: Optional[np.ndarray]  # sum of |x * g| per channel: the size of dw's terms


def torch_reference(case: Case, x: np.ndarray, g: np.ndarray, weight) -> Reference:
    """PyTorch in float64 on the (exact) values."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = None
    if weight is not None:
        wt = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
    y = case.torch_fn(xt, wt)
    y.backward(torch.tensor(g, dtype=torch.float64))
    dw = dw_scale = None
    if wt is not None:
        dw = wt.grad.numpy()
        terms = np.abs(np.minimum(x, 0) * g)
        dw_scale = terms.sum(axis=0) if len(weight) > 1 else np.array([terms.sum()])
    return Reference(y.detach().numpy(), xt.grad.numpy(), dw, dw_scale)


def documented(case: Case, dtype: DType, x: np.ndarray, g: np.ndarray, ref: Reference):
    """The reference with DEVIATIONS applied: actserve's documented value where it differs
    from PyTorch on purpose."""
    dx = ref.dx.copy()
    if case.kind == "hardswish":
        dx = np.where(x == 3, 1.5 * g, dx)
    if case.kind == "hardsigmoid" and dtype.name == "float64":
        dx = np.where((x > -3) & (x < 3), g / 6, dx)
    return dx


# ---------------------------------------------------------------------------------------
# Comparison.

def _softmax_dim(case: Case, x: np.ndarray) -> int:
    dim = actserve.parse_activation(case.spec).params.get("dim", -1)
    return dim % x.ndim


def _scales(case: Case, x: np.ndarray, g: np.ndarray, ref_y: np.ndarray,
            backward: bool) -> np.ndarray:
    """The size of the terms that cancel in f (or g * f'), as the kernels define it."""
    kind = case.kind
    if kind in ("softmax", "log_softmax"):
        dim = _softmax_dim(case, x)
        finite_x = np.where(np.isfinite(x), x, 0.0)
        spread = np.abs(finite_x - np.max(finite_x, axis=dim, keepdims=True)) + 1
        if kind == "softmax":
            if not backward:  # exp(x - max) / sum: relative to (x - max)
                return ref_y * spread
            # y * (g - sum(g * y))
            return ref_y * (np.abs(g) + np.sum(np.abs(g * ref_y), axis=dim, keepdims=True))
        if not backward:  # (x - max) - log(sum(exp(x - max)))
            return spread + np.log(x.shape[dim])
        # g - exp(y) * sum(g)
        return np.abs(g) + np.exp(ref_y) * np.sum(np.abs(g), axis=dim, keepdims=True)
    if not backward:
        if kind == "tanhshrink":
            return np.abs(x)
        if kind in ("hardsigmoid", "hardswish"):
            return np.ones_like(x)
        return np.zeros_like(x)
    if kind in ("gelu", "silu", "mish", "hardswish", "sigmoid", "tanh", "tanhshrink",
                "logsigmoid", "softplus"):
        return np.abs(g)
    return np.zeros_like(x)


def assert_close(test: unittest.TestCase, what: str, got, want: np.ndarray, dtype: DType,
                 ulps: float, floor: np.ndarray, x: np.ndarray):
    """|got - want| <= ulps * ulp(want) + floor elementwise, after rounding `want` (float64)
    to the dtype; equal where the rounded reference is not finite. The message names the
    first few failing inputs with both values."""
    got = np.asarray(got, dtype=np.float64)
    rounded = as_float64(to_dtype(want, dtype))
    tolerance = ulps * ulp(want, dtype) + floor
    finite = np.isfinite(rounded)
    with np.errstate(invalid="ignore"):
        ok = np.where(finite, np.abs(got - rounded) <= tolerance,
                      (got == rounded) | (np.isnan(got) & np.isnan(rounded)))
    if not ok.all():
        bad = np.argwhere(~ok)[:8]
        lines = [f"  x={x[tuple(i)]!r}: actserve {got[tuple(i)]!r}, PyTorch {want[tuple(i)]!r} "
                 f"(rounded {rounded[tuple(i)]!r}), "
                 f"{abs(got[tuple(i)] - rounded[tuple(i)]) / ulp(want, dtype)[tuple(i)]:.2f} ULP"
                 for i in (tuple(j) for j in bad)]
        test.fail(f"{what}: {int((~ok).sum())} of {ok.size} differ beyond {ulps} ULP:\n"
                  + "\n".join(lines))


def compute(case: Case, dtype: DType, x: np.ndarray, mode: str, g: Optional[np.ndarray],
            weight=None):
    """actserve's result, as float64 arrays (None where the mode gives none). The inputs
    travel as numpy arrays of the dtype, or as a torch tensor for bfloat16."""
    x_in = to_dtype(x, dtype)
    g_in = None if g is None else to_dtype(g, dtype)
    w_in = None if weight is None else to_dtype(np.array(weight), dtype)
    if dtype.name != "bfloat16":
        x_in, g_in = x_in.numpy(), None if g_in is None else g_in.numpy()
        w_in = None if w_in is None else w_in.numpy()
    result = CLIENT.compute(x_in, case.spec, mode=mode, grad_output=g_in, weight=w_in)
    return tuple(None if r is None else as_float64(torch.as_tensor(r)) for r in result)


class OracleTest(unittest.TestCase):
    def check_case(self, case: Case, dtype: DType, x: np.ndarray, seed: int):
        g = random_grad(x.shape, dtype, seed)
        weight = case.weight
        if weight is not None:
            weight = as_float64(to_dtype(np.array(weight), dtype))
        ref = torch_reference(case, x, g, weight)
        ones = torch_reference(case, x, np.ones_like(x), weight)
        forward_ulps, backward_ulps = ulp_bounds(case.kind, dtype)
        finite_x = np.where(np.isfinite(x), np.abs(x), 0.0)
        floor_y = (_TORCH_EPS * (1 + finite_x)
                   + _ABS_EPS.get(case.kind, 0) * dtype.lane_eps
                   * _scales(case, x, g, ref.y, backward=False))

        def floor_dx(grad):
            return (_TORCH_EPS * (1 + finite_x) * np.abs(grad)
                    + _ABS_EPS.get(case.kind, 0) * dtype.lane_eps
                    * _scales(case, x, grad, ref.y, backward=True))

        label = f"{case.spec} {dtype.name}"
        for mode, grad in (("forward", g), ("backward", g), ("forward_backward", g),
                           ("backward", None)):
            what = f"{label} mode={mode}{'' if grad is not None else ' without dy'}"
            y, dx, dw = compute(case, dtype, x, mode, grad, weight)
            if mode == "backward":
                self.assertIsNone(y, what)
            else:
                assert_close(self, f"{what} output", y, ref.y, dtype, forward_ulps, floor_y, x)
            if mode == "forward":
                self.assertIsNone(dx, what)
                self.assertIsNone(dw, what)
                continue
            used = g if grad is not None else np.ones_like(x)
            used_ref = ref if grad is not None else ones
            assert_close(self, f"{what} grad_input", dx,
                         documented(case, dtype, x, used, used_ref), dtype, backward_ulps,
                         floor_dx(used), x)
            if weight is not None:
                # A sum over the batch: bounded by its terms' size, n * eps * sum |x * g|.
                terms = np.count_nonzero(x <= 0)
                assert_close(self, f"{what} grad_weight", dw, used_ref.dw, dtype,
                             backward_ulps, terms * dtype.lane_eps * used_ref.dw_scale,
                             np.array(weight))

    def test_elementwise(self):
        for index, case in enumerate(ELEMENTWISE):
            for dtype in DTYPES:
                with self.subTest(spec=case.spec, dtype=dtype.name):
                    x = elementwise_inputs(case, dtype, seed=index)
                    self.check_case(case, dtype, x, seed=index)

    def test_softmax_and_log_softmax(self):
        for index, case in enumerate(SOFTMAX):
            for dtype in DTYPES:
                with self.subTest(spec=case.spec, dtype=dtype.name):
                    x = softmax_inputs(dtype, seed=100 + index)
                    self.check_case(case, dtype, x, seed=100 + index)

    def test_every_pytorch_activation_is_covered(self):
        self.assertEqual(covered_activations(), set(actserve.ACTIVATION_NAMES))
        self.assertEqual(len(actserve.ACTIVATION_NAMES), 24)


class SpecialValuesTest(unittest.TestCase):
    """NaN and +-Inf: actserve's documented values, and PyTorch's where they agree."""

    G = 0.75

    def test_nan_gives_nan_output_and_gradient(self):
        for case in ELEMENTWISE:
            for dtype in DTYPES:
                with self.subTest(spec=case.spec, dtype=dtype.name):
                    x = np.array([[math.nan, 1.0, -1.0], [2.0, math.nan, -2.0]])
                    y, dx, dw = compute(case, dtype, x, "forward_backward",
                                        np.full(x.shape, self.G), case.weight)
                    nan = np.isnan(x)
                    np.testing.assert_array_equal(np.isnan(y), nan)
                    np.testing.assert_array_equal(np.isnan(dx), nan)
                    if case.weight is not None:
                        # Every channel with a NaN input: the sum is NaN.
                        channels = nan.any(axis=0) if len(case.weight) > 1 else [True]
                        np.testing.assert_array_equal(np.isnan(dw), channels)
        for case in SOFTMAX:
            for dtype in DTYPES:
                with self.subTest(spec=case.spec, dtype=dtype.name):
                    x = softmax_inputs(dtype, seed=7)
                    x[0, 0, 0] = math.nan
                    y, dx, _ = compute(case, dtype, x, "forward_backward", np.ones_like(x))
                    # Exactly the slice through the NaN along dim is NaN, as in PyTorch.
                    want = torch.isnan(case.torch_fn(torch.from_numpy(x), None)).numpy()
                    np.testing.assert_array_equal(np.isnan(y), want)
                    np.testing.assert_array_equal(np.isnan(dx), want)

    def test_infinities_give_the_limits(self):
        for case in ELEMENTWISE:
            if case.limits is None:
                continue
            y_neg, y_pos, d_neg, d_pos = case.limits
            for dtype in DTYPES:
                with self.subTest(spec=case.spec, dtype=dtype.name):
                    x = np.array([[-INF, INF, 0.0]])
                    y, dx, _ = compute(case, dtype, x, "forward_backward",
                                       np.full(x.shape, self.G))
                    want_y = as_float64(to_dtype(np.array([y_neg, y_pos]), dtype))
                    want_dx = as_float64(to_dtype(np.array([d_neg, d_pos]) * self.G, dtype))
                    np.testing.assert_array_equal(y[0, :2], want_y, err_msg="output")
                    np.testing.assert_array_equal(dx[0, :2], want_dx, err_msg="grad_input")

    def test_prelu_at_infinities(self):
        per_channel = next(c for c in ELEMENTWISE if c.weight and len(c.weight) == 3)
        for dtype in DTYPES:
            x = np.array([[-INF, INF, -INF]])
            y, dx, dw = compute(per_channel, dtype, x, "forward_backward",
                                np.full(x.shape, self.G), weight=per_channel.weight)
            np.testing.assert_array_equal(y, [[-INF, INF, -INF]])
            np.testing.assert_array_equal(dx, [[0.25 * self.G, self.G, 1.5 * self.G]])
            np.testing.assert_array_equal(dw, [-INF, 0.0, -INF])

    def test_pytorch_agrees_with_the_limits_except_the_listed_deviations(self):
        # Keeps DEVIATIONS true: PyTorch (float64) gives NaN exactly where it says so.
        nan_output_at_neg_inf = {"gelu", "silu", "mish", "hardswish"}
        nan_grad_at_infs = {"gelu", "silu", "mish"}
        for case in ELEMENTWISE:
            if case.limits is None:
                continue
            with self.subTest(spec=case.spec):
                ref = torch_reference(case, np.array([[-INF, INF, 0.0]]),
                                      np.full((1, 3), self.G), None)
                y_neg, y_pos, d_neg, d_pos = case.limits
                expect_nan_y = [case.kind in nan_output_at_neg_inf or case.kind == "softsign",
                                case.kind == "softsign"]
                expect_nan_dx = [case.kind in nan_grad_at_infs or case.kind == "softsign"] * 2
                for i, (want, nan) in enumerate(zip((y_neg, y_pos), expect_nan_y)):
                    self.assertEqual(math.isnan(ref.y[0, i]), nan, f"output at x={[-INF, INF][i]}")
                    if not nan:
                        self.assertEqual(ref.y[0, i], want)
                for i, (want, nan) in enumerate(zip((d_neg, d_pos), expect_nan_dx)):
                    self.assertEqual(math.isnan(ref.dx[0, i]), nan, f"grad at x={[-INF, INF][i]}")
                    if not nan:
                        self.assertEqual(ref.dx[0, i], want * self.G)

    def test_huge_float64_values_where_pytorch_overflows(self):
        f64 = DTYPES[1]
        x = np.array([[1e308, -1e308, 1e200, -1e200, 6e102, -6e102]])
        gelu_tanh = next(c for c in ELEMENTWISE if c.spec == "gelu(approximate=tanh)")
        hardswish = next(c for c in ELEMENTWISE if c.spec == "hardswish")
        y, dx, _ = compute(gelu_tanh, f64, x, "forward_backward", np.full(x.shape, self.G))
        np.testing.assert_array_equal(y, [[1e308, 0, 1e200, 0, 6e102, 0]])
        np.testing.assert_array_equal(dx, [[self.G, 0, self.G, 0, self.G, 0]])
        ref = torch_reference(gelu_tanh, x[:, :4], np.full((1, 4), self.G), None)
        self.assertTrue(np.isnan(ref.dx).all(), "PyTorch's NaN, as DEVIATIONS says")
        y, dx, _ = compute(hardswish, f64, x, "forward_backward", np.full(x.shape, self.G))
        np.testing.assert_array_equal(y, [[1e308, 0, 1e200, 0, 6e102, 0]])
        np.testing.assert_array_equal(dx, [[self.G, 0, self.G, 0, self.G, 0]])
        ref = torch_reference(hardswish, x[:, :1], np.full((1, 1), self.G), None)
        self.assertEqual(ref.y[0, 0], INF, "PyTorch's overflow, as DEVIATIONS says")

    def test_hardswish_at_three_and_hardsigmoid_one_sixth(self):
        hardswish = next(c for c in ELEMENTWISE if c.spec == "hardswish")
        hardsigmoid = next(c for c in ELEMENTWISE if c.spec == "hardsigmoid")
        for dtype in DTYPES:
            with self.subTest(dtype=dtype.name):
                x = np.array([[3.0, -3.0, 0.0]])
                _, dx, _ = compute(hardswish, dtype, x, "backward", np.full(x.shape, 0.5))
                np.testing.assert_array_equal(dx, [[0.75, -0.25, 0.25]])  # 1.5 g, -g/2, g/2
        # PyTorch's own value at x = 3 depends on its kernel path (see DEVIATIONS).
        x = np.array([[0.5, -2.0, 2.9]])
        _, dx, _ = compute(hardsigmoid, DTYPES[1], x, "backward", np.ones_like(x))
        np.testing.assert_array_equal(dx, np.full(x.shape, 1 / 6))
        ref = torch_reference(hardsigmoid, x, np.ones_like(x), None)
        np.testing.assert_array_equal(ref.dx, np.full(x.shape, 0.1666666716337204))


if __name__ == "__main__":
    unittest.main()
