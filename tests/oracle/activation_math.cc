#include "tests/oracle/activation_math.h"

#include <cmath>
#include <limits>

namespace actserve {
namespace math {
namespace {

// The formulas' constants in long double; each use converts them to the working precision.
constexpr long double kSqrtHalf = 0.707106781186547524400844362104849039L;      // 1/sqrt(2)
constexpr long double kInvSqrt2Pi = 0.398942280401432677939946059934381868L;    // 1/sqrt(2*pi)
constexpr long double kSqrt2OverPi = 0.797884560802865355879892119868763737L;   // sqrt(2/pi)
constexpr long double kGeluTanhCubic = 0.044715L;

template <typename Real>
Real NaN() { return std::numeric_limits<Real>::quiet_NaN(); }

template <typename Real>
Real Sigmoid(Real x) {
  // Never exp of a large positive number: both branches stay in (0, 1] without overflow.
  if (x >= 0) return 1 / (1 + std::exp(-x));
  const Real e = std::exp(x);
  return e / (1 + e);
}

// log(1 + exp(x)) without overflow for large x or loss for very negative x.
template <typename Real>
Real LogOnePlusExp(Real x) { return std::fmax(x, Real{0}) + std::log1p(std::exp(-std::fabs(x))); }

// x - tanh(x) near zero, where the subtraction would cancel: the Taylor series, whose
// terms shrink by about 0.4 * x^2 each, so eight terms reach 1e-19 for |x| < 0.1.
template <typename Real>
Real TanhshrinkSeries(Real x) {
  static constexpr long double kCoefficients[] = {
      1.0L / 3,          -2.0L / 15,          17.0L / 315,          -62.0L / 2835,
      1382.0L / 155925,  -21844.0L / 6081075, 929569.0L / 638512875,
      -6404582.0L / 10854718875,
  };
  const Real x2 = x * x;
  Real sum = 0;
  for (int i = 7; i >= 0; --i) sum = sum * x2 + static_cast<Real>(kCoefficients[i]);
  return sum * x2 * x;
}

// For gelu(approximate=tanh): u = sqrt(2/pi) * (x + 0.044715 x^3), and 1 + tanh(u) is
// written 2 * sigmoid(2u) so that it does not cancel for negative x.
template <typename Real>
Real GeluTanhInner(Real x) {
  return Real(kSqrt2OverPi) * (x + Real(kGeluTanhCubic) * x * x * x);
}

}  // namespace

template <typename Real>
Real Forward(const ActivationSpec& spec, Real x) {
  if (std::isnan(x)) return NaN<Real>();
  const Real p0 = spec.params[0];
  const Real p1 = spec.params[1];
  switch (spec.kind) {
    case ActivationKind::kRelu:
      return x > 0 ? x : 0;
    case ActivationKind::kRelu6:
      return x <= 0 ? 0 : x >= 6 ? 6 : x;
    case ActivationKind::kLeakyRelu:
    case ActivationKind::kPrelu:
      // A zero slope times -Inf is NaN; the limit is 0.
      return x > 0 ? x : p0 == 0 ? 0 : p0 * x;
    case ActivationKind::kElu:
      return x > 0 ? x : p0 * std::expm1(x);
    case ActivationKind::kCelu:
      return x > 0 ? x : p0 * std::expm1(x / p0);
    case ActivationKind::kSelu:
      return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x));
    case ActivationKind::kGelu:
      if (std::isinf(x)) return x > 0 ? x : 0;
      if (p0 == static_cast<double>(GeluApproximate::kTanh)) {
        return x * Sigmoid(2 * GeluTanhInner(x));
      }
      // 0.5 * x * (1 + erf(x / sqrt2)) = 0.5 * x * erfc(-x / sqrt2), without cancellation.
      return Real(0.5) * x * std::erfc(-x * Real(kSqrtHalf));
    case ActivationKind::kSilu:
      if (std::isinf(x)) return x > 0 ? x : 0;
      return x * Sigmoid(x);
    case ActivationKind::kMish:
      if (std::isinf(x)) return x > 0 ? x : 0;
      return x * std::tanh(LogOnePlusExp(x));
    case ActivationKind::kSoftplus: {
      const Real bx = p0 * x;
      return bx > p1 ? x : LogOnePlusExp(bx) / p0;
    }
    case ActivationKind::kHardtanh:
      return x <= p0 ? p0 : x >= p1 ? p1 : x;
    case ActivationKind::kHardsigmoid:
      return std::fmin(std::fmax(x + 3, Real{0}), Real{6}) / 6;
    case ActivationKind::kHardswish:
      // For x <= -3 the clamp is 0, and 0 * -Inf would be NaN.
      if (x <= -3) return 0;
      return x * std::fmin(x + 3, Real{6}) / 6;
    case ActivationKind::kSigmoid:
      return Sigmoid(x);
    case ActivationKind::kTanh:
      return std::tanh(x);
    case ActivationKind::kLogsigmoid:
      return std::fmin(x, Real{0}) - std::log1p(std::exp(-std::fabs(x)));
    case ActivationKind::kSoftsign:
      if (std::isinf(x)) return x > 0 ? 1 : -1;
      return x / (1 + std::fabs(x));
    case ActivationKind::kTanhshrink:
      if (std::fabs(x) < Real(0.1)) return TanhshrinkSeries(x);
      return x - std::tanh(x);
    case ActivationKind::kSoftshrink:
      return x > p0 ? x - p0 : x < -p0 ? x + p0 : 0;
    case ActivationKind::kHardshrink:
      return (x >= -p0 && x <= p0) ? 0 : x;
    case ActivationKind::kThreshold:
      return x <= p0 ? p1 : x;
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;  // not elementwise: SoftmaxForward
  }
  return NaN<Real>();
}

template <typename Real>
Real Backward(const ActivationSpec& spec, Real x, Real g) {
  if (std::isnan(x)) return NaN<Real>();
  const Real p0 = spec.params[0];
  const Real p1 = spec.params[1];
  switch (spec.kind) {
    case ActivationKind::kRelu:
      return x > 0 ? g : 0;
    case ActivationKind::kRelu6:
      return (x > 0 && x < 6) ? g : 0;
    case ActivationKind::kLeakyRelu:
    case ActivationKind::kPrelu:
      return x > 0 ? g : p0 * g;
    case ActivationKind::kElu:
      return x > 0 ? g : g * p0 * std::exp(x);
    case ActivationKind::kCelu:
      return x > 0 ? g : g * std::exp(x / p0);
    case ActivationKind::kSelu:
      return x > 0 ? kSeluScale * g : g * kSeluScale * kSeluAlpha * std::exp(x);
    case ActivationKind::kGelu: {
      if (std::isinf(x)) return x > 0 ? g : 0;
      if (p0 == static_cast<double>(GeluApproximate::kTanh)) {
        const Real u = GeluTanhInner(x);
        const Real s = Sigmoid(2 * u);
        const Real s_neg = Sigmoid(-2 * u);
        // d/dx [x * sigmoid(2u)] = s + 2x * s * (1 - s) * u'; the second term vanishes
        // where s or 1 - s underflows (and u' may be huge there).
        if (s == 0 || s_neg == 0) return g * s;
        const Real du = Real(kSqrt2OverPi) * (1 + 3 * Real(kGeluTanhCubic) * x * x);
        return g * (s + 2 * x * s * s_neg * du);
      }
      const Real cdf = Real(0.5) * std::erfc(-x * Real(kSqrtHalf));
      const Real pdf = Real(kInvSqrt2Pi) * std::exp(Real(-0.5) * x * x);
      return g * (cdf + x * pdf);
    }
    case ActivationKind::kSilu: {
      if (std::isinf(x)) return x > 0 ? g : 0;
      // s * (1 + x * (1 - s)), with 1 - s computed as sigmoid(-x) to keep its precision.
      return g * Sigmoid(x) * (1 + x * Sigmoid(-x));
    }
    case ActivationKind::kMish: {
      if (std::isinf(x)) return x > 0 ? g : 0;
      const Real t = std::tanh(LogOnePlusExp(x));
      return g * (t + x * Sigmoid(x) * (1 - t * t));
    }
    case ActivationKind::kSoftplus: {
      const Real bx = p0 * x;
      return bx > p1 ? g : g * Sigmoid(bx);
    }
    case ActivationKind::kHardtanh:
      return (x <= p0 || x >= p1) ? 0 : g;
    case ActivationKind::kHardsigmoid:
      return (x > -3 && x < 3) ? g / 6 : 0;
    case ActivationKind::kHardswish:
      return x < -3 ? 0 : x <= 3 ? g * (x / 3 + Real(0.5)) : g;
    case ActivationKind::kSigmoid:
      return g * Sigmoid(x) * Sigmoid(-x);
    case ActivationKind::kTanh: {
      // 1 - tanh(x)^2 cancels for large |x|; 1 / cosh(x)^2 does not.
      const Real sech = 1 / std::cosh(x);
      return g * sech * sech;
    }
    case ActivationKind::kLogsigmoid:
      return g * Sigmoid(-x);
    case ActivationKind::kSoftsign: {
      const Real denominator = 1 + std::fabs(x);
      return g / (denominator * denominator);
    }
    case ActivationKind::kTanhshrink: {
      const Real t = std::tanh(x);
      return g * t * t;
    }
    case ActivationKind::kSoftshrink:
    case ActivationKind::kHardshrink:
      return (x >= -p0 && x <= p0) ? 0 : g;
    case ActivationKind::kThreshold:
      return x <= p0 ? 0 : g;
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;  // not elementwise: SoftmaxBackward
  }
  return NaN<Real>();
}

template double Forward<double>(const ActivationSpec&, double);
template long double Forward<long double>(const ActivationSpec&, long double);
template double Backward<double>(const ActivationSpec&, double, double);
template long double Backward<long double>(const ActivationSpec&, long double, long double);

double PreluWeightGradient(double x, double dy) {
  if (std::isnan(x)) return NaN<double>();
  return x <= 0 ? x * dy : 0;
}

void SoftmaxForward(bool log, const double* x, int64_t n, double* y) {
  using Real = long double;
  if (n == 0) return;
  Real max = -std::numeric_limits<Real>::infinity();
  bool has_nan = false;
  for (int64_t i = 0; i < n; ++i) {
    has_nan |= std::isnan(x[i]);
    max = std::fmax(max, static_cast<Real>(x[i]));
  }
  // An infinite maximum makes x - max NaN for the infinite entries (Inf - Inf), and the
  // sum NaN with them: the whole lane is NaN, as in PyTorch.
  if (has_nan || std::isinf(max)) {
    for (int64_t i = 0; i < n; ++i) y[i] = NaN<double>();
    return;
  }
  // The sum is 1 (one maximal entry) plus the rest; keeping the rest apart lets
  // log_softmax use log1p, so the largest entry's result keeps its digits when the
  // others are tiny (log_softmax([60, -50]) at 60 is -exp(-110), not 0).
  Real rest = 0;
  bool skipped_one_max = false;
  for (int64_t i = 0; i < n; ++i) {
    if (!skipped_one_max && static_cast<Real>(x[i]) == max) {
      skipped_one_max = true;
      continue;
    }
    rest += std::exp(static_cast<Real>(x[i]) - max);
  }
  const Real sum = 1 + rest;
  if (log) {
    const Real log_sum = std::log1p(rest);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<double>((x[i] - max) - log_sum);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = static_cast<double>(std::exp(static_cast<Real>(x[i]) - max) / sum);
    }
  }
}

void SoftmaxBackward(bool log, const double* y, const double* dy, int64_t n, double* dx) {
  using Real = long double;
  Real sum = 0;
  if (log) {
    for (int64_t i = 0; i < n; ++i) sum += dy[i];
    for (int64_t i = 0; i < n; ++i) {
      dx[i] = static_cast<double>(dy[i] - std::exp(static_cast<Real>(y[i])) * sum);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) sum += static_cast<Real>(dy[i]) * y[i];
    for (int64_t i = 0; i < n; ++i) dx[i] = static_cast<double>(y[i] * (dy[i] - sum));
  }
}

}  // namespace math
}  // namespace actserve
