// GELU, both forms: approximate = none (the normal CDF, through our own erfc, since
// Highway 1.0.3 has no erf) and approximate = tanh.
//
// Lane types: float (float32, float16, bfloat16 storage) and double (float64).
// Valid range: every input; +-Inf give the limits (x and 0, gradients g and 0) exactly,
// NaN gives NaN (restored by the loop).
//
// approximate = none. With u = |x|, Phi(-u) = exp(-u^2 / 2) * R(u), where
// R(u) = erfcx(u / sqrt2) / 2 is smooth and slowly varying. u^2 / 2 is carried as
// hi + lo (TwoProduct), so exp(-u^2 / 2) keeps its relative accuracy although u^2 / 2
// reaches ~112 (float) or ~760 (double); 2^q is applied last, so the negative tail
// (gelu(-10) = -7.7e-23) keeps its relative, not just absolute, accuracy down into the
// subnormal range. Beyond u = 15 (float) / 39 (double) gelu underflows to -0 or equals x.
//
// float lanes (float32, float16, bfloat16): with t = u / (u + 3.5) in [0, 0.811],
// u R(u) = t J(t), J(t) = (u + 3.5) R(u) a degree-9 polynomial in t - 0.40625 (Lawson
// relative-minimax fit on 3000 Chebyshev nodes against mpmath at 40 digits; relative
// error 8.0e-9, about 0.13 of float's 2^-24, before rounding the coefficients to float).
// Then x Phi(x) = -(t J) (1 + p) 2^q for x < 0 and x - (t J)(1 + p) 2^q for x >= 0 (no
// cancellation: the subtracted term is at most x / 2), t J carried exactly (hi + lo) and
// rounded once with the exponential's 1 + p. One division, no separate path near 0.
// Error (float32 forward; bounds in src/kernels/accuracy_bounds.h, maxima over every
// float input in bench/results/accuracy.md): the terms are t (two roundings), J (Horner,
// ~1 ULP), the one rounding of t J (1 + p), exp's reduction (~0.5 ULP) and x - s (0.5 ULP);
// the erfcx path this replaced measured 0.26 ULP more.
//
// double lanes: R is approximated as G(tau) / (1 + u) with tau = (u - K) / (u + K) in
// [-1, 1) and G a polynomial fitted to Chebyshev nodes (mpmath chebyfit, 40 digits; the
// fit's relative error is 5e-19, degree 25, K = 4, u <= 39). Near 0 (|x| < 1/2) the
// Taylor series of Phi takes over (see CdfNearZero); gelu(x) is, for x < 0,
// -u * R * m * 2^q, and for x >= 0, x * (1 - Phi(-x)). Two divisions per vector.
//
// The gradient Phi(x) + x phi(x) shares the exponential (phi = exp(-x^2 / 2) / sqrt(2 pi))
// and cancels near its zero at x = -0.7518 (error a few ULP of the cancelling terms).
//
// approximate = tanh. gelu = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); 2u is
// computed in double-T arithmetic (error ~2^-44 relative for float), because exp(-|2u|)
// amplifies an error in 2u by |2u| (up to 87 where the result is still a normal float).
// Error: src/kernels/accuracy_bounds.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/gelu_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <type_traits>

#include "hwy/highway.h"
#include "src/activation_spec.h"
#include "src/kernels/kernel_families.h"
#include "src/kernels/kernel_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace actserve {
namespace kernels {
namespace HWY_NAMESPACE {
namespace {

// J(t) coefficients for float lanes, highest degree first, in t - kGeluJCenter (see the
// file comment).
constexpr float kGeluJFloat[] = {
    0.0556510128f, 0.0601351298f, -0.126074746f, -0.138975173f, 0.305925995f,
    0.156672180f,  -1.01146197f,  1.53557026f,   -1.39300144f,  0.862332940f};
constexpr float kGeluJShift = 3.5f;      // t = u / (u + kGeluJShift)
constexpr float kGeluJCenter = 0.40625f;  // the polynomial's variable is t - kGeluJCenter
constexpr float kGeluJMaxU = 15.0f;      // gelu(-15) = -5.5e-50 underflows to -0

// G(tau) coefficients for double lanes, highest degree first (see the file comment).
constexpr double kErfcxDouble[] = {
    8.85145574612120742667e-11,  -4.51936051554665088599e-11, -1.55882043332231266308e-9,
    -1.67761763134839743448e-9,  8.45290956524868059046e-9,   1.85171029227297563318e-8,
    -2.31897965539419801785e-8,  -1.12602699605471838615e-7,  4.41453152856665578507e-9,
    5.53554225414388276103e-7,   4.02766690649936619991e-7,   -0.00000261382465686525665904,
    -0.0000034315305371729188898, 0.0000136272147306554030648, 0.0000212498749164076899633,
    -0.0000878532668994685672923, -0.0000944302239907130232773, 0.000694897117035161975367,
    -0.000285623101176566338132, -0.00500237859212936724177,  0.0179360974798684728744,
    -0.0321978374280376679671,   0.0286003640535452301585,    0.0139996347244245858405,
    -0.096703477326525759733,    0.472053206509844683161};

constexpr long double kInvSqrt2Pi = 0.398942280401432677939946059934381868L;
constexpr long double kSqrt2OverPi = 0.797884560802865355879892119868763737L;
constexpr long double kGeluTanhCubic = 0.044715L;

// gelu (approximate = none) in double lanes.
struct GeluErfDoubleOp {
  using T = double;
  static constexpr T kK = 4.0;
  static constexpr T kMaxU = 39.0;

  template <class D>
  struct Parts {
    ExpParts<D> exp;  // exp(-u^2 / 2)
    V<D> u;           // |x|, clamped to kMaxU
    V<D> poly;        // G(tau), R(u) = Phi(-u) exp(u^2 / 2) = G(tau) / (1 + u)
  };

  template <class D>
  HWY_INLINE Parts<D> Compute(D d, V<D> x) const {
    Parts<D> p;
    const V<D> half = hn::Set(d, T(-0.5));
    p.u = hn::Min(hn::Abs(x), hn::Set(d, kMaxU));
    V<D> square, square_error;
    TwoProduct(d, p.u, p.u, square, square_error);
    // -u^2 / 2 >= -112.5 (float) / -760.5 (double): within SplitExp's range.
    p.exp = SplitExp<false>(d, hn::Mul(half, square), hn::Mul(half, square_error));
    // Two correctly rounded divisions rather than one shared reciprocal: the shared
    // one's three extra roundings pushed the float error to 4.4 ULP.
    const V<D> k = hn::Set(d, kK);
    const V<D> one = hn::Set(d, T(1));
    const V<D> tau = hn::Div(hn::Sub(p.u, k), hn::Add(p.u, k));
    V<D> poly = hn::Set(d, kErfcxDouble[0]);
    for (size_t i = 1; i < sizeof(kErfcxDouble) / sizeof(double); ++i) {
      poly = hn::MulAdd(poly, tau, hn::Set(d, kErfcxDouble[i]));
    }
    p.poly = poly;
    return p;
  }

  // One scaling by 2^q serves both sides: for x < 0 it scales -u * m * R (gelu itself,
  // accurate into the subnormal range), for x >= 0 it scales m * R (Phi(-u), used in
  // 1 - Phi(-u), where a subnormal Phi(-u) is far below half an ULP of 1).
  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, const Parts<D>& p, V<D>& one_minus_tail) const {
    // Phi(-u) 2^-q = G (1 + p) / (1 + u), and for x < 0 gelu 2^-q = -u G (1 + p) / (1 + u):
    // the numerator, u G carried exactly (hi + lo), is rounded once, then one division.
    // (m R with R rounded first, then times -u, reached 4.6 ULP at x = -1.83 in the
    // all-input sweep.)
    const auto negative = hn::Lt(x, hn::Zero(d));
    V<D> u_g, u_g_error;
    TwoProduct(d, p.u, p.poly, u_g, u_g_error);
    const V<D> head = hn::IfThenElse(negative, u_g, p.poly);
    const V<D> tail = hn::IfThenZeroElse(hn::Not(negative), u_g_error);
    const V<D> numerator = hn::Add(head, hn::MulAdd(head, p.exp.p, tail));
    const V<D> quotient = hn::Div(numerator, hn::Add(hn::Set(d, T(1)), p.u));
    const V<D> scaled =
        ScaleByPow2(d, hn::IfThenElse(negative, hn::Neg(quotient), quotient), p.exp);
    one_minus_tail = hn::Sub(hn::Set(d, T(1)), scaled);
    const V<D> general = hn::IfThenElse(negative, scaled, hn::Mul(x, one_minus_tail));
    return hn::IfThenElse(NearZero(d, p.u), hn::Mul(x, CdfNearZero(d, x)), general);
  }

  // |x| < 1/2: Phi(x) = 1/2 + x E(x^2), E the Taylor series of (Phi(x) - 1/2) / x,
  // (-1)^k x^2k / (2^k k! (2k + 1) sqrt(2 pi)), truncated where its terms fall below
  // 2^-60 (11 terms). There the general path's 1 - Phi(-u) rounds values near 1/2 across
  // the binade boundary at 1/2 (up to 4 ULP measured in float); this one adds a small term
  // to 1/2 once (about 1 ULP).
  template <class D>
  static HWY_INLINE auto NearZero(D d, V<D> u) {
    return hn::Lt(u, hn::Set(d, T(0.5)));
  }
  template <class D>
  static HWY_INLINE V<D> CdfNearZero(D d, V<D> x) {
    constexpr int kTerms = 11;
    const V<D> x2 = hn::Mul(x, x);
    // Coefficient k: (-1)^k / (2^k k! (2k + 1) sqrt(2 pi)).
    long double coefficient[12];
    long double factorial = 1;
    for (int k = 0; k < kTerms; ++k) {
      if (k > 0) factorial *= 2 * k;  // 2^k k!
      coefficient[k] = (k % 2 ? -1.0L : 1.0L) * kInvSqrt2Pi / (factorial * (2 * k + 1));
    }
    V<D> e = hn::Set(d, static_cast<T>(coefficient[kTerms - 1]));
    for (int k = kTerms - 2; k >= 0; --k) {
      e = hn::MulAdd(e, x2, hn::Set(d, static_cast<T>(coefficient[k])));
    }
    return hn::MulAdd(x, e, hn::Set(d, T(0.5)));
  }

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    V<D> one_minus_tail;
    return Value(d, x, Compute(d, x), one_minus_tail);
  }

  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const Parts<D> p = Compute(d, x);
    V<D> one_minus_tail;
    y = Value(d, x, p, one_minus_tail);
    // Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
    // x < 0: exp(-u^2/2) (R - u / sqrt(2 pi)), scaled once; x >= 0: 1 - Phi(-u) + u phi(u).
    const auto negative = hn::Lt(x, hn::Zero(d));
    const V<D> u_pdf_scale = hn::Mul(p.u, hn::Set(d, static_cast<T>(kInvSqrt2Pi)));
    const V<D> r = hn::Div(p.poly, hn::Add(hn::Set(d, T(1)), p.u));
    const V<D> scaled = ScaleByPow2(
        d, hn::IfThenElse(negative, hn::Mul(p.exp.m, hn::Sub(r, u_pdf_scale)), p.exp.m),
        p.exp);
    V<D> derivative = hn::IfThenElse(negative, scaled,
                                     hn::MulAdd(u_pdf_scale, scaled, one_minus_tail));
    // Near 0: Phi(x) + x phi(x) with Phi from the series and phi = exp(-x^2/2) / sqrt(2 pi)
    // (q = 0 there, so m is exp(-x^2/2) itself).
    const V<D> near_zero = hn::MulAdd(hn::Mul(x, hn::Set(d, static_cast<T>(kInvSqrt2Pi))),
                                      p.exp.m, CdfNearZero(d, x));
    derivative = hn::IfThenElse(NearZero(d, p.u), near_zero, derivative);
    dx = hn::Mul(g, derivative);
  }
};

// gelu (approximate = none) in float lanes; see the file comment for the formulas and
// their error.
struct GeluErfFloatOp {
  template <class D>
  struct Parts {
    ExpParts<D> exp;  // exp(-u^2 / 2)
    V<D> u;           // |x|, clamped to kGeluJMaxU
    V<D> shifted_u;   // u + kGeluJShift, rounded
    V<D> v;           // t - kGeluJCenter, t = u / (u + kGeluJShift)
    V<D> j_head;      // J(t) = j_head * v + kGeluJFloat[9]
    V<D> scaled;      // u Phi(-u) = t J (1 + p) 2^q
  };

  template <class D>
  HWY_INLINE Parts<D> Compute(D d, V<D> x) const {
    Parts<D> p;
    p.u = hn::Min(hn::Abs(x), hn::Set(d, kGeluJMaxU));
    // -u^2 / 2 = hi + lo exactly (-u / 2 is exact), >= -112.5: within SplitExp's range.
    V<D> square_hi, square_lo;
    TwoProduct(d, p.u, hn::Mul(p.u, hn::Set(d, -0.5f)), square_hi, square_lo);
    p.exp = SplitExp<false>(d, square_hi, square_lo);
    p.shifted_u = hn::Add(p.u, hn::Set(d, kGeluJShift));
    const V<D> t = hn::Div(p.u, p.shifted_u);
    // t - kGeluJCenter only positions the polynomial's variable: its rounding (below t's
    // own ULP) moves J by far less than J's error.
    p.v = hn::Sub(t, hn::Set(d, kGeluJCenter));
    constexpr size_t kLast = sizeof(kGeluJFloat) / sizeof(float) - 1;
    V<D> j_head = hn::Set(d, kGeluJFloat[0]);
    for (size_t i = 1; i < kLast; ++i) {
      j_head = hn::MulAdd(j_head, p.v, hn::Set(d, kGeluJFloat[i]));
    }
    p.j_head = j_head;
    const V<D> j = hn::MulAdd(j_head, p.v, hn::Set(d, kGeluJFloat[kLast]));
    // t J (1 + p) with t J exact (hi + lo), rounded once; 2^q last.
    V<D> tj, tj_error;
    TwoProduct(d, t, j, tj, tj_error);
    p.scaled = ScaleByPow2(d, hn::Add(tj, hn::MulAdd(tj, p.exp.p, tj_error)), p.exp);
    return p;
  }

  // x < 0: -u Phi(-u); x >= 0: x - u Phi(-u) (= x Phi(x); -0 stays -0).
  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, const Parts<D>& p) const {
    return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Neg(p.scaled), hn::Sub(x, p.scaled));
  }

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return Value(d, x, Compute(d, x));
  }

  // Phi(x) + x phi(x) = exp(-u^2/2) (R - u / sqrt(2 pi)) = (1 + p) 2^q (J - u (u + 3.5) /
  // sqrt(2 pi)) / (u + 3.5) for x < 0, and 1 minus that for x >= 0 (where it is at most
  // 1/2). J's last Horner step is merged into the difference, and 1 + p into one FMA,
  // so that neither J nor m is rounded on its own: with both rounded the error reached
  // 5.2 ULP at x = -0.3246 over every float; this way 3.7 in the fitting prototype.
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const Parts<D> p = Compute(d, x);
    y = Value(d, x, p);
    constexpr size_t kLast = sizeof(kGeluJFloat) / sizeof(float) - 1;
    const V<D> u_pdf_scale = hn::Mul(p.u, hn::Set(d, static_cast<float>(kInvSqrt2Pi)));
    const V<D> difference =
        hn::MulAdd(p.j_head, p.v,
                   hn::NegMulAdd(u_pdf_scale, p.shifted_u, hn::Set(d, kGeluJFloat[kLast])));
    const V<D> tail = ScaleByPow2(
        d, hn::Div(hn::MulAdd(difference, p.exp.p, difference), p.shifted_u), p.exp);
    const V<D> derivative =
        hn::IfThenElse(hn::Lt(x, hn::Zero(d)), tail, hn::Sub(hn::Set(d, 1.0f), tail));
    dx = hn::Mul(g, derivative);
  }
};

template <typename T>
struct GeluTanhOp {
  // Beyond this |x| sigmoid(2u) is 0 or 1 in T; |2u| stays within SplitExp's range.
  static constexpr T kClamp = sizeof(T) == 4 ? T(12.0) : T(25.0);

  template <class D>
  struct Parts {
    V<D> clamped;  // x clamped to [-kClamp, kClamp]
    V<D> square;   // clamped^2, rounded
    ExpParts<D> exp;  // exp(-|2u|)
    V<D> e, r;        // exp(-|2u|), 1 / (1 + exp(-|2u|))
    V<D> non_negative_mask_source;  // 2u (hi), its sign is x's
  };

  template <class D>
  HWY_INLINE Parts<D> Compute(D d, V<D> x) const {
    Parts<D> p;
    const V<D> one = hn::Set(d, T(1));
    const SplitConstant<T> cubic = Split<T>(kGeluTanhCubic);
    const SplitConstant<T> twice_scale = Split<T>(2 * kSqrt2OverPi);
    p.clamped = hn::Min(hn::Max(x, hn::Set(d, -kClamp)), hn::Set(d, kClamp));
    // 1 + c x^2 as sh + sl.
    V<D> square_error, cubic_hi, cubic_lo;
    TwoProduct(d, p.clamped, p.clamped, p.square, square_error);
    TwoProduct(d, hn::Set(d, cubic.hi), p.square, cubic_hi, cubic_lo);
    cubic_lo = hn::MulAdd(hn::Set(d, cubic.hi), square_error,
                          hn::MulAdd(hn::Set(d, cubic.lo), p.square, cubic_lo));
    const V<D> sum_hi = hn::Add(one, cubic_hi);
    const V<D> b = hn::Sub(sum_hi, one);
    const V<D> sum_lo = hn::Add(hn::Add(hn::Sub(one, hn::Sub(sum_hi, b)), hn::Sub(cubic_hi, b)),
                                cubic_lo);
    // 2u = (2 sqrt(2/pi) x) (1 + c x^2) as z_hi + z_lo.
    V<D> scaled_hi, scaled_lo, z_hi, z_lo;
    TwoProduct(d, hn::Set(d, twice_scale.hi), p.clamped, scaled_hi, scaled_lo);
    scaled_lo = hn::MulAdd(hn::Set(d, twice_scale.lo), p.clamped, scaled_lo);
    TwoProduct(d, scaled_hi, sum_hi, z_hi, z_lo);
    z_lo = hn::MulAdd(scaled_hi, sum_lo, hn::MulAdd(scaled_lo, sum_hi, z_lo));
    // exp(-|2u|).
    const auto non_negative = hn::Ge(z_hi, hn::Zero(d));
    // |2u| <= 1.6 (kClamp + 0.045 kClamp^3): within SplitExp's range.
    p.exp = SplitExp<false>(d, hn::Neg(hn::Abs(z_hi)),
                            hn::IfThenElse(non_negative, hn::Neg(z_lo), z_lo));
    p.e = ExpFromParts(d, p.exp);
    p.r = hn::Div(one, hn::Add(one, p.e));
    p.non_negative_mask_source = z_hi;
    return p;
  }

  template <class D>
  HWY_INLINE V<D> Value(D d, V<D> x, const Parts<D>& p) const {
    const V<D> small = ScaleByPow2(d, hn::Mul(hn::Mul(p.clamped, p.exp.m), p.r), p.exp);
    return hn::IfThenElse(hn::Ge(p.non_negative_mask_source, hn::Zero(d)), hn::Mul(x, p.r),
                          small);
  }

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return Value(d, x, Compute(d, x));
  }

  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const Parts<D> p = Compute(d, x);
    y = Value(d, x, p);
    const auto non_negative = hn::Ge(p.non_negative_mask_source, hn::Zero(d));
    const V<D> small = hn::Mul(p.e, p.r);
    const V<D> s = hn::IfThenElse(non_negative, p.r, small);
    const V<D> s_product = hn::Mul(small, p.r);  // s * (1 - s)
    // u' = sqrt(2/pi) (1 + 3 c x^2)
    const V<D> du = hn::MulAdd(hn::Set(d, static_cast<T>(3 * kGeluTanhCubic * kSqrt2OverPi)),
                               p.square, hn::Set(d, static_cast<T>(kSqrt2OverPi)));
    const V<D> term = hn::Mul(hn::Mul(hn::Add(p.clamped, p.clamped), s_product), du);
    dx = hn::Mul(g, hn::Add(s, term));
  }
};

template <typename Storage>
void RunGeluTyped(const ElementwiseCall& call) {
  using T = ComputeType<Storage>;
  if (call.params[0] == static_cast<double>(GeluApproximate::kTanh)) {
    RunOp<GeluTanhOp<T>, Storage>(GeluTanhOp<T>(), call);
  } else {
    using ErfOp = std::conditional_t<sizeof(T) == 4, GeluErfFloatOp, GeluErfDoubleOp>;
    RunOp<ErfOp, Storage>(ErfOp(), call);
  }
}

}  // namespace

void RunGelu(const ElementwiseCall& call) {
  WithStorage(call.dtype, [&](auto* storage) {
    RunGeluTyped<std::remove_pointer_t<decltype(storage)>>(call);
  });
}

int64_t GeluTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace kernels
}  // namespace actserve
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace actserve {
namespace kernels {

HWY_EXPORT(RunGelu);
HWY_EXPORT(GeluTarget);

void RunGeluFamily(const ElementwiseCall& call) { HWY_DYNAMIC_DISPATCH(RunGelu)(call); }

int64_t GeluFamilyTarget() { return HWY_DYNAMIC_DISPATCH(GeluTarget)(); }

int64_t GeluFamilyTargets() { return HWY_TARGETS; }

}  // namespace kernels
}  // namespace actserve
#endif  // HWY_ONCE
