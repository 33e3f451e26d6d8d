#include "src/catalogue.h"

#include <cassert>

namespace actserve {
namespace {

constexpr absl::string_view kGeluChoices[] = {"none", "tanh"};

constexpr ParamInfo Real(absl::string_view name, double default_value,
                         ParamConstraint constraint = ParamConstraint::kAny,
                         absl::string_view valid_range = "finite") {
  return {name, ParamType::kReal, false, default_value, constraint, valid_range, {}};
}
constexpr ParamInfo RequiredReal(absl::string_view name) {
  return {name, ParamType::kReal, true, 0, ParamConstraint::kAny, "finite", {}};
}

constexpr ParamInfo kLeakyReluParams[] = {Real("negative_slope", 0.01)};
// nn.PReLU starts from 0.25; on the wire the weight is a tensor, in the text form a value.
constexpr ParamInfo kPreluParams[] = {
    {"weight", ParamType::kTensor, false, 0.25, ParamConstraint::kAny,
     "finite; 1 value or one per channel (input.shape[1])", {}}};
constexpr ParamInfo kEluParams[] = {Real("alpha", 1.0)};
constexpr ParamInfo kCeluParams[] = {Real("alpha", 1.0, ParamConstraint::kNonZero, "nonzero")};
constexpr ParamInfo kGeluParams[] = {
    {"approximate", ParamType::kChoice, false, 0, ParamConstraint::kAny, "none or tanh",
     kGeluChoices}};
constexpr ParamInfo kSoftplusParams[] = {
    Real("beta", 1.0, ParamConstraint::kNonZero, "nonzero"), Real("threshold", 20.0)};
constexpr ParamInfo kHardtanhParams[] = {
    Real("min_val", -1.0, ParamConstraint::kAny, "<= max_val"),
    Real("max_val", 1.0, ParamConstraint::kAny, ">= min_val")};
constexpr ParamInfo kShrinkParams[] = {
    Real("lambd", 0.5, ParamConstraint::kNonNegative, ">= 0")};
constexpr ParamInfo kThresholdParams[] = {RequiredReal("threshold"), RequiredReal("value")};
constexpr ParamInfo kSoftmaxParams[] = {
    {"dim", ParamType::kInteger, false, -1, ParamConstraint::kAny,
     "[-rank, rank); negative counts from the end", {}}};

template <size_t N>
constexpr absl::Span<const ParamInfo> Params(const ParamInfo (&params)[N]) {
  return absl::Span<const ParamInfo>(params, N);
}
constexpr absl::Span<const ParamInfo> None() { return {}; }

// Formulas are written as DESIGN.md section 3 states them (g is dy).
const ActivationInfo kCatalogue[] = {
    {ActivationKind::kRelu, "relu", "Rectified linear unit.", "max(0, x)",
     "x > 0 ? g : 0", true, "relu", None()},
    {ActivationKind::kRelu6, "relu6", "ReLU capped at 6.", "min(max(0, x), 6)",
     "0 < x < 6 ? g : 0", true, "relu6", None()},
    {ActivationKind::kLeakyRelu, "leaky_relu", "ReLU with a small slope for negative inputs.",
     "x > 0 ? x : negative_slope * x", "x > 0 ? g : negative_slope * g", true,
     "leaky_relu(negative_slope=0.2)", Params(kLeakyReluParams)},
    {ActivationKind::kPrelu, "prelu",
     "Leaky ReLU with a learned slope, one or one per channel (dim 1).",
     "x > 0 ? x : w_c * x",
     "x > 0 ? g : w_c * g; grad_weight_c = sum over x <= 0 of x * g", true,
     "prelu(weight=0.25)", Params(kPreluParams)},
    {ActivationKind::kElu, "elu", "Exponential linear unit.",
     "x > 0 ? x : alpha * (exp(x) - 1)", "x > 0 ? g : g * alpha * exp(x)", true,
     "elu(alpha=0.5)", Params(kEluParams)},
    {ActivationKind::kCelu, "celu", "Continuously differentiable ELU.",
     "x > 0 ? x : alpha * (exp(x / alpha) - 1)", "x > 0 ? g : g * exp(x / alpha)", true,
     "celu(alpha=2)", Params(kCeluParams)},
    {ActivationKind::kSelu, "selu",
     "Scaled ELU with fixed alpha = 1.6732632423543772 and scale = 1.0507009873554805.",
     "scale * (x > 0 ? x : alpha * (exp(x) - 1))",
     "x > 0 ? scale * g : g * scale * alpha * exp(x)", true, "selu", None()},
    {ActivationKind::kGelu, "gelu", "Gaussian error linear unit, exact or tanh-approximated.",
     "0.5 * x * (1 + erf(x / sqrt(2))); tanh: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + "
     "0.044715 * x^3)))",
     "g * (Phi(x) + x * phi(x)); tanh: g times the exact derivative of the tanh form", true,
     "gelu(approximate=tanh)", Params(kGeluParams)},
    {ActivationKind::kSilu, "silu", "Sigmoid linear unit (swish).", "x * sigmoid(x)",
     "g * s * (1 + x * (1 - s)), s = sigmoid(x)", true, "silu", None()},
    {ActivationKind::kMish, "mish", "Self-regularized non-monotonic activation.",
     "x * tanh(softplus(x))",
     "g * (t + x * sigmoid(x) * (1 - t^2)), t = tanh(softplus(x))", true, "mish", None()},
    {ActivationKind::kSoftplus, "softplus", "Smooth approximation of ReLU.",
     "beta * x > threshold ? x : log(1 + exp(beta * x)) / beta",
     "beta * x > threshold ? g : g * sigmoid(beta * x)", true,
     "softplus(beta=2, threshold=10)", Params(kSoftplusParams)},
    {ActivationKind::kHardtanh, "hardtanh", "Clamp to [min_val, max_val].",
     "clamp(x, min_val, max_val)", "min_val < x < max_val ? g : 0", true,
     "hardtanh(min_val=-2, max_val=2)", Params(kHardtanhParams)},
    {ActivationKind::kHardsigmoid, "hardsigmoid", "Piecewise-linear sigmoid.",
     "clamp(x / 6 + 1/2, 0, 1)", "-3 < x < 3 ? g / 6 : 0", true, "hardsigmoid", None()},
    {ActivationKind::kHardswish, "hardswish", "Piecewise-quadratic swish.",
     "x * min(max(x + 3, 0), 6) / 6", "x < -3 ? 0 : x <= 3 ? g * (x / 3 + 1/2) : g", true,
     "hardswish", None()},
    {ActivationKind::kSigmoid, "sigmoid", "Logistic function.", "1 / (1 + exp(-x))",
     "g * y * (1 - y)", true, "sigmoid", None()},
    {ActivationKind::kTanh, "tanh", "Hyperbolic tangent.", "tanh(x)", "g * (1 - y^2)", true,
     "tanh", None()},
    {ActivationKind::kLogsigmoid, "logsigmoid", "Logarithm of the logistic function.",
     "min(x, 0) - log1p(exp(-|x|))", "g * sigmoid(-x)", true, "logsigmoid", None()},
    {ActivationKind::kSoftsign, "softsign", "x / (1 + |x|).", "x / (1 + |x|)",
     "g / (1 + |x|)^2", true, "softsign", None()},
    {ActivationKind::kTanhshrink, "tanhshrink", "x - tanh(x).", "x - tanh(x)",
     "g * tanh(x)^2", true, "tanhshrink", None()},
    {ActivationKind::kSoftshrink, "softshrink", "Soft thresholding towards zero.",
     "x > lambd ? x - lambd : x < -lambd ? x + lambd : 0", "|x| <= lambd ? 0 : g", true,
     "softshrink(lambd=1)", Params(kShrinkParams)},
    {ActivationKind::kHardshrink, "hardshrink", "Hard thresholding to zero.",
     "|x| <= lambd ? 0 : x", "|x| <= lambd ? 0 : g", true, "hardshrink(lambd=1)",
     Params(kShrinkParams)},
    {ActivationKind::kThreshold, "threshold", "Replace values at or below a threshold.",
     "x <= threshold ? value : x", "x <= threshold ? 0 : g", true,
     "threshold(threshold=0.1, value=0)", Params(kThresholdParams)},
    {ActivationKind::kSoftmax, "softmax", "Normalized exponential along dim.",
     "exp(x - max) / sum(exp(x - max)) along dim", "y * (g - sum(g * y)) along dim", false,
     "softmax(dim=1)", Params(kSoftmaxParams)},
    {ActivationKind::kLogSoftmax, "log_softmax", "Logarithm of softmax along dim.",
     "x - max - log(sum(exp(x - max))) along dim", "g - exp(y) * sum(g) along dim", false,
     "log_softmax(dim=-1)", Params(kSoftmaxParams)},
};
static_assert(sizeof(kCatalogue) / sizeof(kCatalogue[0]) == kNumActivations,
              "every ActivationKind needs a catalogue entry");

}  // namespace

absl::Span<const ActivationInfo> Catalogue() { return kCatalogue; }

const ActivationInfo& GetActivationInfo(ActivationKind kind) {
  const ActivationInfo& info = kCatalogue[static_cast<int>(kind)];
  assert(info.kind == kind);
  return info;
}

const ActivationInfo* FindActivation(absl::string_view name) {
  for (const ActivationInfo& info : kCatalogue) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

int FindParam(const ActivationInfo& info, absl::string_view name) {
  for (size_t i = 0; i < info.params.size(); ++i) {
    if (info.params[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace actserve
