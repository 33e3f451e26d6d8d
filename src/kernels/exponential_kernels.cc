// The activations built on one exponential: elu, celu, selu, sigmoid, silu, tanh,
// softplus, logsigmoid, mish, tanhshrink.
//
// Lane types: float (float32, float16, bfloat16 storage) and double (float64).
// Building blocks (kernel_ops-inl.h): SplitExp gives exp(x) = m * 2^q from Highway's
// reduction and polynomial (1 ULP), extended so that products like x * exp(x) apply 2^q
// last and stay accurate in the subnormal range; expm1 comes from the same parts as
// 2^q * p + (2^q - 1) (about 1 ULP, no cancellation); sigmoid uses exp(-|x|) only, so
// nothing overflows. Valid range: every input, including +-Inf (the limits of the oracle,
// tests/oracle/activation_math.cc, exactly) and NaN (restored by the loop).
//
// Accuracy: the bounds are those of src/kernels/accuracy_bounds.h (the one table the tests
// assert and README shows), the measured maxima over every float32 input are in
// bench/results/accuracy.md. tanhshrink cancels in x - tanh(x): float lanes use a
// polynomial below |x| = 1.5 and (|x| - 1) + (1 - tanh|x|) above (TanhshrinkFloat);
// float64 the Taylor series (20 terms) for |x| < 0.6 and x - tanh(x) beyond, where the
// cancellation costs up to ~8x tanh's error.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/exponential_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "src/kernels/kernel_families.h"
#include "src/kernels/kernel_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace actserve {
namespace kernels {
namespace HWY_NAMESPACE {
namespace {

// PyTorch's SELU constants (torch/nn/functional.py, ATen's Activation.cpp).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// Below this, exp(x) is 0 in T and x * exp(x) too: clamping multipliers here keeps
// -Inf * 0 from making NaN.
template <typename T>
constexpr T ExpFloor() {
  return sizeof(T) == 4 ? T(-170.0) : T(-1400.0);
}

// expm1(x), exact for tiny |x| (keeps -0). kPositive: valid for any x (overflows to
// +Inf); otherwise for x <= 41 only (callers discard the other lanes).
template <bool kPositive, class D>
HWY_INLINE V<D> Expm1Of(D d, V<D> x, const ExpParts<D>& parts) {
  using T = hn::TFromD<D>;
  return hn::IfThenElse(hn::Lt(hn::Abs(x), hn::Set(d, TinyArgument<T>())), x,
                        Expm1FromParts<kPositive>(d, parts));
}

template <typename T>
struct EluOp {
  // selu is scale * elu(x, alpha): `positive_scale` multiplies x > 0 (1 for elu),
  // `negative_scale` multiplies expm1(x) (alpha for elu, scale * alpha for selu). Both are
  // carried as hi + lo, the products as one FMA of the head plus the tail's product, so
  // SELU's irrational constants are not rounded to the lane type first: scale * x is then
  // correctly rounded up to the overflow threshold (rounding scale to float first made
  // x = 3.2386221e38 overflow to Inf where the exact product rounds to FLT_MAX).
  EluOp(long double positive, long double negative)
      : positive_scale(SameSignSplit(positive)),
        negative_scale(SameSignSplit(negative)),
        unit_positive(positive == 1) {}
  SplitConstant<T> positive_scale, negative_scale;
  bool unit_positive;

  // hi + lo with lo of hi's sign (hi rounded toward zero) or zero, so that an infinite v
  // gives hi * v + lo * v = +-Inf rather than Inf - Inf.
  static SplitConstant<T> SameSignSplit(long double value) {
    SplitConstant<T> split = Split<T>(value);
    if (split.lo != 0 && (split.lo < 0) != (split.hi < 0)) {
      split.hi = std::nextafter(split.hi, T(0));
      split.lo = static_cast<T>(value - static_cast<long double>(split.hi));
    }
    return split;
  }

  template <class D>
  HWY_INLINE V<D> Times(D d, const SplitConstant<T>& c, V<D> v) const {
    // A zero tail (the constant fits the lane type) would turn Inf into 0 * Inf = NaN.
    if (c.lo == 0) return hn::Mul(hn::Set(d, c.hi), v);
    return hn::MulAdd(hn::Set(d, c.hi), v, hn::Mul(hn::Set(d, c.lo), v));
  }
  template <class D>
  HWY_INLINE V<D> Positive(D d, V<D> v) const {
    return unit_positive ? v : Times(d, positive_scale, v);
  }
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const ExpParts<D> parts = SplitExp(d, x);
    const V<D> negative = Times(d, negative_scale, Expm1Of<false>(d, x, parts));
    return hn::IfThenElse(hn::Gt(x, hn::Zero(d)), Positive(d, x), negative);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const ExpParts<D> parts = SplitExp(d, x);
    const auto positive = hn::Gt(x, hn::Zero(d));
    y = hn::IfThenElse(positive, Positive(d, x),
                       Times(d, negative_scale, Expm1Of<false>(d, x, parts)));
    dx = hn::IfThenElse(positive, Positive(d, g),
                        hn::Mul(Times(d, negative_scale, g), ExpFromParts(d, parts)));
  }
};

// celu: x / alpha is carried as hi + lo (1 / alpha split, the product's error by FMA), so
// exp(x / alpha) keeps its relative accuracy for large |x / alpha|.
template <typename T>
struct CeluOp {
  explicit CeluOp(double alpha_value)
      : alpha(static_cast<T>(alpha_value)),
        inverse(Split<T>(1.0L / static_cast<long double>(alpha_value))) {}
  T alpha;
  SplitConstant<T> inverse;

  template <class D>
  HWY_INLINE ExpParts<D> Parts(D d, V<D> x, V<D>& arg) const {
    V<D> error;
    TwoProduct(d, x, hn::Set(d, inverse.hi), arg, error);
    V<D> lo = hn::MulAdd(x, hn::Set(d, inverse.lo), error);
    // Beyond |x / alpha| = 200 exp saturates; there the split may be Inf - Inf.
    lo = hn::IfThenZeroElse(hn::Gt(hn::Abs(arg), hn::Set(d, T(200))), lo);
    return SplitExp(d, arg, lo);
  }
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    V<D> arg;
    const ExpParts<D> parts = Parts(d, x, arg);
    const V<D> negative = hn::Mul(hn::Set(d, alpha), Expm1Of<true>(d, arg, parts));
    return hn::IfThenElse(hn::Gt(x, hn::Zero(d)), x, negative);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    V<D> arg;
    const ExpParts<D> parts = Parts(d, x, arg);
    const auto positive = hn::Gt(x, hn::Zero(d));
    y = hn::IfThenElse(positive, x, hn::Mul(hn::Set(d, alpha), Expm1Of<true>(d, arg, parts)));
    dx = hn::IfThenElse(positive, g, hn::Mul(g, ExpFromParts(d, parts)));
  }
};

template <typename T>
struct SigmoidOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return Sigmoid(d, x).s;
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const SigmoidParts<D> sp = Sigmoid(d, x);
    y = sp.s;
    dx = hn::Mul(hn::Mul(g, sp.s), sp.s_neg);
  }
};

// silu = x * sigmoid(x); the gradient s * (1 + x * (1 - s)) with 1 - s = sigmoid(-x).
template <typename T>
struct SiluOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const SigmoidParts<D> sp = Sigmoid(d, x);
    return Value(d, x, sp);
  }
  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, const SigmoidParts<D>& sp) const {
    const V<D> large = hn::Mul(x, sp.r);
    const V<D> clamped = hn::Max(x, hn::Set(d, ExpFloor<T>()));
    const V<D> small = ScaleByPow2(d, hn::Mul(hn::Mul(clamped, sp.parts.m), sp.r), sp.parts);
    return hn::IfThenElse(hn::Ge(x, hn::Zero(d)), large, small);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const SigmoidParts<D> sp = Sigmoid(d, x);
    y = Value(d, x, sp);
    const V<D> clamped =
        hn::Min(hn::Max(x, hn::Set(d, ExpFloor<T>())), hn::Set(d, -ExpFloor<T>()));
    dx = hn::Mul(hn::Mul(g, sp.s), hn::MulAdd(clamped, sp.s_neg, hn::Set(d, T(1))));
  }
};

// tanh(|x|) = -e / (2 + e) with e = expm1(-2|x|) in (-1, 0]: no overflow, no
// cancellation; 1 - tanh^2 = 4 exp(-2|x|) / (2 + e)^2 from the same exponential (only
// computed when `sech2` is asked for).
template <class D>
HWY_INLINE V<D> TanhParts(D d, V<D> x, V<D>* sech2) {
  using T = hn::TFromD<D>;
  const V<D> minus_two_abs = hn::Mul(hn::Set(d, T(-2)), hn::Abs(x));
  const ExpParts<D> parts = SplitExp(d, minus_two_abs);
  const V<D> e = Expm1Of<false>(d, minus_two_abs, parts);
  const V<D> denominator = hn::Add(hn::Set(d, T(2)), e);
  if (sech2 != nullptr) {
    *sech2 = hn::Div(hn::Mul(hn::Set(d, T(4)), ExpFromParts(d, parts)),
                     hn::Mul(denominator, denominator));
  }
  return hn::CopySign(hn::Div(hn::Neg(e), denominator), x);
}

template <typename T>
struct TanhOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return TanhParts(d, x, static_cast<V<D>*>(nullptr));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    V<D> sech2;
    y = TanhParts(d, x, &sech2);
    dx = hn::Mul(g, sech2);
  }
};

// softplus: b * x > threshold ? x : (max(bx, 0) + log1p(exp(-|bx|))) / b.
// kUnitBeta: instantiated for PyTorch's default beta = 1, so that the loop carries no
// test of `unit_beta` (nor the division by beta).
template <typename T, bool kUnitBeta = false>
struct SoftplusOp {
  SoftplusOp(double beta_value, double threshold_value)
      : beta(static_cast<T>(beta_value)),
        threshold(static_cast<T>(threshold_value)),
        unit_beta(kUnitBeta || beta_value == 1) {}
  T beta, threshold;
  bool unit_beta;
  // Max(0, bx) passes a NaN bx on (kMinMaxPropagateSecondNaN), the sum and the
  // threshold select (false for NaN) keep it.
  static constexpr bool kForwardKeepsNaN = kMinMaxPropagateSecondNaN;

  template <class D>
  HWY_INLINE V<D> Scaled(D d, V<D> x) const {
    return kUnitBeta || unit_beta ? x : hn::Mul(hn::Set(d, beta), x);
  }
  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, V<D> bx, const SigmoidParts<D>& sp) const {
    V<D> value = hn::Add(hn::Max(hn::Zero(d), bx), Log1pUnit(d, sp.e));
    if (!kUnitBeta && !unit_beta) value = hn::Div(value, hn::Set(d, beta));
    return hn::IfThenElse(hn::Gt(bx, hn::Set(d, threshold)), x, value);
  }
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> bx = Scaled(d, x);
    return Value(d, x, bx, Sigmoid<true>(d, bx));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> bx = Scaled(d, x);
    const SigmoidParts<D> sp = Sigmoid<true>(d, bx);
    y = Value(d, x, bx, sp);
    dx = hn::IfThenElse(hn::Gt(bx, hn::Set(d, threshold)), g, hn::Mul(g, sp.s));
  }
};

// logsigmoid = min(x, 0) - log1p(exp(-|x|)); gradient g * sigmoid(-x).
template <typename T>
struct LogsigmoidOp {
  // Min(0, x) passes a NaN x on (kMinMaxPropagateSecondNaN).
  static constexpr bool kForwardKeepsNaN = kMinMaxPropagateSecondNaN;

  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, const SigmoidParts<D>& sp) const {
    return hn::Sub(hn::Min(hn::Zero(d), x), Log1pUnit(d, sp.e));
  }
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return Value(d, x, Sigmoid<true>(d, x));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const SigmoidParts<D> sp = Sigmoid<true>(d, x);
    y = Value(d, x, sp);
    dx = hn::Mul(g, sp.s_neg);
  }
};

// mish = x * tanh(softplus(x)). With E = exp(x) and n = E (E + 2):
// tanh(log(1 + E)) = n / (n + 2) and 1 - tanh^2 = 4 (n + 1) / (n + 2)^2, from one
// exponential. Above x = 20 tanh(softplus(x)) rounds to 1 in float and double.
template <typename T>
struct MishOp {
  template <class D>
  struct Parts {
    ExpParts<D> exp;
    V<D> e;             // E = exp(min(x, 20))
    V<D> a;             // E + 2
    V<D> n_plus_two;    // E (E + 2) + 2, one FMA
  };
  template <class D>
  HWY_INLINE Parts<D> Compute(D d, V<D> x) const {
    Parts<D> p;
    const V<D> two = hn::Set(d, T(2));
    p.exp = SplitExp(d, hn::Min(x, hn::Set(d, T(20))));
    p.e = ExpFromParts(d, p.exp);
    p.a = hn::Add(p.e, two);
    p.n_plus_two = hn::MulAdd(p.e, p.a, two);
    return p;
  }
  // x E (E + 2) / (n + 2) with E = (1 + p) 2^q: the numerator x (E + 2) (1 + p) is
  // xa + xa p with xa = x (E + 2) carried exactly (hi + lo), rounded once; 2^q applied
  // last. (With x m (E + 2) rounded three times the error reached 4.3 ULP over every
  // 16th float input, at x = -3.24.)
  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, const Parts<D>& p) const {
    const V<D> clamped = hn::Max(x, hn::Set(d, ExpFloor<T>()));
    V<D> xa, xa_error;
    TwoProduct(d, clamped, p.a, xa, xa_error);
    const V<D> numerator = hn::Add(xa, hn::MulAdd(xa, p.exp.p, xa_error));
    const V<D> value = ScaleByPow2(d, hn::Div(numerator, p.n_plus_two), p.exp);
    return hn::IfThenElse(hn::Gt(x, hn::Set(d, T(20))), x, value);
  }
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return Value(d, x, Compute(d, x));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const Parts<D> p = Compute(d, x);
    y = Value(d, x, p);
    const V<D> one = hn::Set(d, T(1));
    const V<D> t = hn::Div(hn::Mul(p.e, p.a), p.n_plus_two);
    const V<D> sigmoid = hn::Div(p.e, hn::Add(one, p.e));
    // 1 - t^2 = 4 (n + 1) / (n + 2)^2; (n + 2)^2 <= 5e34 (x <= 20): no overflow.
    const V<D> one_minus_t2 =
        hn::Div(hn::Mul(hn::Set(d, T(4)), hn::MulAdd(p.e, p.a, one)),
                hn::Mul(p.n_plus_two, p.n_plus_two));
    const V<D> clamped = hn::Max(x, hn::Set(d, ExpFloor<T>()));
    const V<D> derivative = hn::MulAdd(hn::Mul(clamped, sigmoid), one_minus_t2, t);
    dx = hn::IfThenElse(hn::Gt(x, hn::Set(d, T(20))), g, hn::Mul(g, derivative));
  }
};

// x - tanh(x) in double lanes: the Taylor series x^3 (1/3 - 2/15 x^2 + ...) below
// |x| = 0.6 (20 terms: 2e-17 relative), x - tanh(x) above.
template <class DD>
HWY_INLINE void TanhshrinkDouble(DD dd, V<DD> x, V<DD>& y, V<DD>& t) {
  static constexpr double kSeries[] = {
      0.333333333333333333333,     -0.133333333333333333333,   0.053968253968253968254,
      -0.0218694885361552028219,   0.00886323552990219656886,  -0.00359212803657248101693,
      0.00145583438705131826825,   -0.000590027440945585981378, 0.000239129114243552481486,
      -0.000096915379569294503256, 0.0000392783238833168340534, -0.0000159189050693289647407,
      0.00000645168921565543076319, -0.00000261477115129075455426,
      0.00000105972683201046543509, -4.29491107827380585482e-7, 1.74066189635716477799e-7,
      -7.05463694640096832521e-8,  2.85913666230525390833e-8, -1.15876444327988522002e-8};
  t = TanhParts(dd, x, static_cast<V<DD>*>(nullptr));
  const V<DD> x2 = hn::Mul(x, x);
  V<DD> sum = hn::Set(dd, kSeries[19]);
  for (int i = 18; i >= 0; --i) sum = hn::MulAdd(sum, x2, hn::Set(dd, kSeries[i]));
  const V<DD> series = hn::Mul(hn::Mul(sum, x2), x);
  // x - t is Inf - 1 at x = Inf: the limit Inf, as in the oracle.
  y = hn::IfThenElse(hn::Lt(hn::Abs(x), hn::Set(dd, 0.6)), series, hn::Sub(x, t));
}

// x - tanh(x) in float lanes, |x| = a:
//   a < 1.5: a^3 P(a^2), P a degree-10 polynomial in w = a^2 - 9/8 (weighted least
//     squares against mpmath, relative error 3.6e-9; in w rather than a^2 so that the
//     Horner sum is well conditioned up to the edge, where the series in a^2 is not).
//     a^2, w, the last two Horner steps and a^3 are carried as hi + lo (TwoProduct), so
//     the only error of size is the final rounding: each float rounding of P alone cost
//     up to 0.5 ULP, and the plain evaluation measured 2 ULP. Below 2^-20, a is scaled
//     by 2^40 for the a^3 part (and the result by 2^-120, one rounding), so that a result
//     in the subnormal range is rounded once.
//   a >= 1.5: (a - 1) + q with q = 1 - tanh(a) = 2E / (1 + E), E = exp(-2a) <= e^-3;
//     a - 1 is exact (Sterbenz, or an integer step below 2^24) and q <= 0.095 is at most
//     a sixth of the result, so q's two ULP are a quarter ULP of the result at most.
//     q = 2E (1 - E + E^2 - ... + E^6) (truncation 1.5e-8 relative to q) instead of a
//     division.
// The gradient g tanh(a)^2 (when `g` is given, into *dx): a < 1.5: g (a - f)^2 with a - f
// carried as hi + lo; a >= 1.5: g (1 - q (2 - q)); below 2^-20 (g a) a, so that a
// subnormal tanh(a)^2 is not rounded before the product (2.6-3.2 ULP on the targets
// without FMA). Measured (every float32 input, bench/results/accuracy.md): within the
// bounds of src/kernels/accuracy_bounds.h.
template <class D>
HWY_INLINE void TanhshrinkFloat(D d, V<D> x, V<D>& y, const V<D>* g, V<D>* dx) {
  using T = hn::TFromD<D>;
  const V<D> a = hn::Abs(x);
  const auto tiny = hn::Lt(a, hn::Set(d, T(9.5367431640625e-07)));  // 2^-20
  const auto series = hn::Lt(a, hn::Set(d, T(1.5)));
  // a^2 = u + u_lo (exact) and, for the a^3 part, the scaled s^2.
  const V<D> s = hn::IfThenElse(tiny, hn::Mul(a, hn::Set(d, T(1099511627776.0))), a);  // 2^40
  V<D> u, u_lo;
  TwoProduct(d, s, s, u, u_lo);
  // w = a^2 - 9/8 as w + w_lo (Fast2Sum: |9/8| >= u, or Sterbenz-exact above 9/8). For
  // tiny a, w = -9/8: P(0) to 2^-40.
  const V<D> center = hn::Set(d, T(1.125));
  V<D> w = hn::Sub(u, center);
  V<D> w_lo = hn::Add(hn::Sub(u, hn::Add(w, center)), u_lo);
  w = hn::IfThenElse(tiny, hn::Neg(center), w);
  w_lo = hn::IfThenElseZero(hn::Not(tiny), w_lo);
  V<D> r2 = hn::Set(d, T(8.34828199e-07f));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(-2.9966518e-06f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(7.85955399e-06f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(-2.82422188e-05f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(0.000105134874f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(-0.000377678749f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(0.00135474827f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(-0.00486706244f)));
  r2 = hn::MulAdd(r2, w, hn::Set(d, T(0.0174910333f)));
  // r = c1 + w r2 and v = w r, each as hi + lo; the first-order term of w_lo, with P'
  // to three terms, joins v's low part.
  const V<D> c1 = hn::Set(d, T(-0.0629839748f));
  V<D> p, p_lo;
  TwoProduct(d, w, r2, p, p_lo);
  const V<D> r = hn::Add(c1, p);
  const V<D> r_lo = hn::Add(hn::Add(hn::Sub(c1, r), p), p_lo);
  V<D> v, v_lo;
  TwoProduct(d, w, r, v, v_lo);
  const V<D> derivative = hn::MulAdd(
      w, hn::MulAdd(w, hn::Set(d, T(-0.0146011878f)), hn::Set(d, T(0.0349820666f))), c1);
  v_lo = hn::MulAdd(derivative, w_lo, hn::MulAdd(w, r_lo, v_lo));
  const V<D> c0 = hn::Set(d, T(0.230249703f));
  const V<D> poly = hn::Add(c0, v);
  const V<D> poly_lo =
      hn::Add(hn::Add(hn::Sub(c0, poly), v), hn::Add(v_lo, hn::Set(d, T(-7.87881427e-10f))));
  // a^3 = cube + cube_lo, then a^3 P rounded once.
  V<D> cube, cube_lo;
  TwoProduct(d, u, s, cube, cube_lo);
  cube_lo = hn::MulAdd(u_lo, s, cube_lo);
  V<D> f = hn::MulAdd(cube, poly, hn::MulAdd(cube, poly_lo, hn::Mul(cube_lo, poly)));
  f = hn::Mul(f, hn::IfThenElse(tiny, hn::Set(d, T(7.52316384526264e-37)), hn::Set(d, T(1))));

  // a >= 1.5.
  const ExpParts<D> parts = SplitExp(d, hn::Mul(hn::Set(d, T(-2)), a));
  const V<D> e = ExpFromParts(d, parts);
  const V<D> two = hn::Set(d, T(2));
  const V<D> minus_e = hn::Neg(e);
  V<D> sum = two;
  for (int k = 0; k < 6; ++k) sum = hn::MulAdd(sum, minus_e, two);
  const V<D> q = hn::Mul(e, sum);
  const V<D> tail = hn::Add(hn::Sub(a, hn::Set(d, T(1))), q);

  y = hn::CopySign(hn::IfThenElse(series, f, tail), x);
  if (g != nullptr) {
    const V<D> t = hn::Sub(a, f);
    const V<D> t_lo = hn::Sub(hn::Sub(a, t), f);
    V<D> square, square_lo;
    TwoProduct(d, t, t, square, square_lo);
    const V<D> near = hn::Add(square, hn::MulAdd(hn::Add(t, t), t_lo, square_lo));
    const V<D> far = hn::NegMulAdd(q, hn::Sub(two, q), hn::Set(d, T(1)));
    const V<D> t2 = hn::IfThenElse(series, near, far);
    *dx = hn::IfThenElse(tiny, hn::Mul(hn::Mul(*g, a), a), hn::Mul(*g, t2));
  }
}

template <typename T>
struct TanhshrinkOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    V<D> y;
    if constexpr (sizeof(T) == 8) {
      V<D> t;
      TanhshrinkDouble(d, x, y, t);
    } else {
      TanhshrinkFloat(d, x, y, static_cast<const V<D>*>(nullptr), static_cast<V<D>*>(nullptr));
    }
    return y;
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    if constexpr (sizeof(T) == 8) {
      V<D> t;
      TanhshrinkDouble(d, x, y, t);
      dx = hn::Mul(hn::Mul(g, t), t);
    } else {
      TanhshrinkFloat(d, x, y, &g, &dx);
    }
  }
};

template <typename Storage>
void RunExponentialTyped(const ElementwiseCall& call) {
  using T = ComputeType<Storage>;
  const double p0 = call.params[0];
  const double p1 = call.params[1];
  switch (call.kind) {
    case ActivationKind::kElu:
      // alpha as the lane type holds it (parameters are rounded to the lane type).
      return RunOp<EluOp<T>, Storage>(EluOp<T>(1.0L, static_cast<T>(p0)), call);
    case ActivationKind::kSelu:
      // PyTorch's constants (as doubles), their product in long double.
      return RunOp<EluOp<T>, Storage>(
          EluOp<T>(static_cast<long double>(kSeluScale),
                   static_cast<long double>(kSeluScale) * kSeluAlpha),
          call);
    case ActivationKind::kCelu:
      return RunOp<CeluOp<T>, Storage>(CeluOp<T>(p0), call);
    case ActivationKind::kSigmoid:
      return RunOp<SigmoidOp<T>, Storage>(SigmoidOp<T>(), call);
    case ActivationKind::kSilu:
      return RunOp<SiluOp<T>, Storage>(SiluOp<T>(), call);
    case ActivationKind::kTanh:
      return RunOp<TanhOp<T>, Storage>(TanhOp<T>(), call);
    case ActivationKind::kSoftplus:
      if (p0 == 1) return RunOp<SoftplusOp<T, true>, Storage>(SoftplusOp<T, true>(p0, p1), call);
      return RunOp<SoftplusOp<T>, Storage>(SoftplusOp<T>(p0, p1), call);
    case ActivationKind::kLogsigmoid:
      return RunOp<LogsigmoidOp<T>, Storage>(LogsigmoidOp<T>(), call);
    case ActivationKind::kMish:
      return RunOp<MishOp<T>, Storage>(MishOp<T>(), call);
    case ActivationKind::kTanhshrink:
      return RunOp<TanhshrinkOp<T>, Storage>(TanhshrinkOp<T>(), call);
    default:
      break;  // not in this family: RunElementwise routes only the kinds above here
  }
}

}  // namespace

void RunExponential(const ElementwiseCall& call) {
  WithStorage(call.dtype, [&](auto* storage) {
    RunExponentialTyped<std::remove_pointer_t<decltype(storage)>>(call);
  });
}

int64_t ExponentialTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace kernels
}  // namespace actserve
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace actserve {
namespace kernels {

HWY_EXPORT(RunExponential);
HWY_EXPORT(ExponentialTarget);

void RunExponentialFamily(const ElementwiseCall& call) {
  HWY_DYNAMIC_DISPATCH(RunExponential)(call);
}

int64_t ExponentialFamilyTarget() { return HWY_DYNAMIC_DISPATCH(ExponentialTarget)(); }

int64_t ExponentialFamilyTargets() { return HWY_TARGETS; }

}  // namespace kernels
}  // namespace actserve
#endif  // HWY_ONCE
