// The oracle: the mathematics of every activation and its gradient, on one element (or
// one softmax lane), in long double, the one statement of each activation's semantics
// that the kernels (src/kernels) are tested against. Test-only (tests/oracle/
// CMakeLists.txt): nothing that ships links it; the kernels implement the same
// formulas in their lane types.
//
// `Real` is the working precision, double or long double: long double (x86's 64-bit
// significand) is the oracle of every bound; double is a fast first pass for the accuracy
// sweep, which measures again in long double wherever the double measurement comes near
// a maximum (bench/accuracy_sweep.cc). Formulas are
// arranged to avoid cancellation and overflow (e.g. log1p(exp(x)) as
// max(x, 0) + log1p(exp(-|x|)), sigmoid's derivative as sigmoid(x) * sigmoid(-x)); near
// the zeros of a function (gelu' at x = -0.75) the error is a few ULP of the terms that
// cancel rather than of the result.
//
// Conventions (DESIGN.md section 3): PyTorch's formulas and kink values; a NaN input
// gives NaN output and NaN gradient; +-Inf gives the mathematical limits.
#ifndef ACTSERVE_TESTS_ORACLE_ACTIVATION_MATH_H_
#define ACTSERVE_TESTS_ORACLE_ACTIVATION_MATH_H_

#include <cstdint>

#include "src/activation_spec.h"

namespace actserve {
namespace math {

// PyTorch's SELU constants (torch/nn/functional.py, ATen's Activation.cpp), typed in here
// again rather than taken from the kernels, so that a wrong digit there shows.
inline constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
inline constexpr double kSeluScale = 1.0507009873554804934193349852946;

// y = f(x) for an elementwise activation (every kind but softmax and log_softmax). For
// PReLU, spec.params[0] is the weight that applies to x. Instantiated for double and
// long double.
template <typename Real>
Real Forward(const ActivationSpec& spec, Real x);

// dx = dy * f'(x) for an elementwise activation, with PyTorch's selections at kinks (a
// masked gradient is exactly 0, even when dy is Inf or NaN, as in PyTorch).
template <typename Real>
Real Backward(const ActivationSpec& spec, Real x, Real dy);

// PReLU's contribution of one element to the weight gradient: x <= 0 ? x * dy : 0.
double PreluWeightGradient(double x, double dy);

// softmax (log = false) or log_softmax (log = true) of the `n` values `x`, into `y`.
// `y` may be `x`.
void SoftmaxForward(bool log, const double* x, int64_t n, double* y);

// The gradient of softmax / log_softmax given its output `y` and `dy`, into `dx`:
// softmax: y * (dy - sum(dy * y)); log_softmax: dy - exp(y) * sum(dy).
// `dx` may be `dy`.
void SoftmaxBackward(bool log, const double* y, const double* dy, int64_t n, double* dx);

}  // namespace math
}  // namespace actserve

#endif  // ACTSERVE_TESTS_ORACLE_ACTIVATION_MATH_H_
