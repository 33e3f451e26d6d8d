// Per-target building blocks shared by the activation kernel families: the streaming
// loop (full vectors plus a padded tail vector), the float16 / bfloat16 codecs, and the
// exponential pieces every transcendental activation is built from.
//
// Included once per Highway target by each family's translation unit (after
// foreach_target.h), hence the toggling include guard instead of a plain one.
//
// Lane types: the compute type T is float (for float32, float16 and bfloat16 storage) or
// double (float64). Every helper is exact on +-0, +-Inf and NaN lanes in the sense that
// it never traps and never feeds NaN into integer conversions; NaN inputs are restored
// by the loop (RunLoop) after the activation ran, because x86's min/max do not
// propagate NaN.

#if defined(ACTSERVE_SRC_KERNELS_KERNEL_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ACTSERVE_SRC_KERNELS_KERNEL_OPS_INL_H_
#undef ACTSERVE_SRC_KERNELS_KERNEL_OPS_INL_H_
#else
#define ACTSERVE_SRC_KERNELS_KERNEL_OPS_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "src/kernels/activation_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace actserve {
namespace kernels {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

template <class D>
using V = hn::Vec<D>;
template <class D>
using VI32 = hn::Vec<hn::Rebind<int32_t, D>>;

// ---------------------------------------------------------------------------------------
// Constants split into a head in the lane type and the rounded remainder, so that
// products with them can be carried in double-T arithmetic.

template <typename T>
struct SplitConstant {
  T hi;
  T lo;
};
template <typename T>
constexpr SplitConstant<T> Split(long double value) {
  return {static_cast<T>(value), static_cast<T>(value - static_cast<long double>(static_cast<T>(value)))};
}

// a * b = p + e exactly (barring underflow). Uses FMA where the target has it, Dekker's
// split otherwise; the split is exact for |a|, |b| below 2^100 (float) / 2^970 (double),
// which every caller guarantees by clamping.
template <class D>
HWY_INLINE void TwoProduct(D d, V<D> a, V<D> b, V<D>& p, V<D>& e) {
  p = hn::Mul(a, b);
#if HWY_NATIVE_FMA
  (void)d;
  e = hn::MulSub(a, b, p);
#else
  using T = hn::TFromD<D>;
  const V<D> k = hn::Set(d, sizeof(T) == 4 ? T(4097.0) : T(134217729.0));  // 2^s + 1
  const V<D> ca = hn::Mul(a, k);
  const V<D> a_hi = hn::Sub(ca, hn::Sub(ca, a));
  const V<D> a_lo = hn::Sub(a, a_hi);
  const V<D> cb = hn::Mul(b, k);
  const V<D> b_hi = hn::Sub(cb, hn::Sub(cb, b));
  const V<D> b_lo = hn::Sub(b, b_hi);
  e = hn::Add(hn::Add(hn::Add(hn::Sub(hn::Mul(a_hi, b_hi), p), hn::Mul(a_hi, b_lo)),
                      hn::Mul(a_lo, b_hi)),
              hn::Mul(a_lo, b_lo));
#endif
}

// ---------------------------------------------------------------------------------------
// The exponential, split: exp(x + x_lo) = m * 2^q with m in [sqrt(1/2), sqrt(2)] and
// p = m - 1 computed without cancellation. Highway's Exp reduction and polynomial
// (1 ULP, hwy/contrib/math) are reused; the range is widened so that products such as
// x * exp(x) can apply 2^q last and land correctly in the subnormal range
// (x is clamped to [-170, 89] for float, [-1400, 710] for double: exp overflows to +Inf
// above, and below, every use underflows to 0).

template <class D>
struct ExpParts {
  V<D> m;
  V<D> p;
  VI32<D> q;
  V<D> q_float;  // q in the lane type (exact)
};

// exp(r) - 1 = r + r^2 P(r) on |r| <= ln2 / 2, P of degree 4 (Lawson minimax against
// mpmath, weighted for the relative error of expm1: 1.3e-8, i.e. at most 4e-9 relative
// to exp(r)): two ops less than Highway's degree-5 P (2.4e-10), for callers that need
// exp(r) = 1 + p but not expm1's relative accuracy for tiny results.
template <class D>
HWY_INLINE V<D> ShortExpPoly(D d, V<D> r) {
  const V<D> r2 = hn::Mul(r, r);
  V<D> poly = hn::MulAdd(hn::Set(d, 0.00138825213f), r, hn::Set(d, 0.00836651865f));
  poly = hn::MulAdd(poly, r, hn::Set(d, 0.0416672006f));
  poly = hn::MulAdd(poly, r, hn::Set(d, 0.166665435f));
  poly = hn::MulAdd(poly, r, hn::Set(d, 0.49999997f));
  return hn::MulAdd(poly, r2, r);
}

// kClamp = false: the caller guarantees x within the clamping range (and not NaN).
// kHasLow = false: x_lo is zero (saves an addition).
// kShortPoly: float lanes use ShortExpPoly (see there); double lanes ignore it.
template <bool kClamp = true, bool kHasLow = true, bool kShortPoly = false, class D>
HWY_INLINE ExpParts<D> SplitExp(D d, V<D> x, V<D> x_lo) {
  using T = hn::TFromD<D>;
  hn::impl::ExpImpl<T> impl;
  if (kClamp) {
    const V<D> lower = hn::Set(d, sizeof(T) == 4 ? T(-170.0) : T(-1400.0));
    const V<D> upper = hn::Set(d, sizeof(T) == 4 ? T(89.0) : T(710.0));
    // x86 Max/Min return the second operand for NaN lanes: no NaN reaches ToInt32.
    x = hn::Min(hn::Max(x, lower), upper);
  }
  VI32<D> q;
  V<D> q_float;
  V<D> r;
  if constexpr (sizeof(T) == 4) {
    // q = round(x / ln2) by the 1.5 * 2^23 shifter: its low mantissa bits are q, so the
    // integer comes from a subtraction instead of a checked conversion (|q| < 2^22 after
    // clamping). Then Highway's Cody-Waite reduction constants.
    const hn::Rebind<int32_t, D> di;
    const V<D> shifter = hn::Set(d, 12582912.0f);
    const V<D> shifted = hn::MulAdd(x, hn::Set(d, 1.44269504088896341f), shifter);
    q_float = hn::Sub(shifted, shifter);
    q = hn::Sub(hn::BitCast(di, shifted), hn::BitCast(di, shifter));
    r = hn::MulAdd(q_float, hn::Set(d, -0.693145751953125f), x);
    r = hn::MulAdd(q_float, hn::Set(d, -1.428606765330187045e-6f), r);
  } else {
    const V<D> half = hn::Set(d, T(0.5));
    const V<D> neg_zero = hn::Set(d, T(-0.0));
    const V<D> log2e = hn::Set(d, T(1.442695040888963407359924681));
    q = impl.ToInt32(d, hn::MulAdd(x, log2e, hn::Or(half, hn::And(x, neg_zero))));
    r = impl.ExpReduce(d, x, q);
    q_float = hn::PromoteTo(d, q);
  }
  if (kHasLow) r = hn::Add(r, x_lo);
  V<D> p;
  if constexpr (kShortPoly && sizeof(T) == 4) {
    p = ShortExpPoly(d, r);
  } else {
    p = impl.ExpPoly(d, r);
  }
  return {hn::Add(p, hn::Set(d, T(1))), p, q, q_float};
}

template <bool kClamp = true, class D>
HWY_INLINE ExpParts<D> SplitExp(D d, V<D> x) {
  return SplitExp<kClamp, false>(d, x, x);
}

// 1 / v, correctly rounded. (The hardware estimate plus a Newton step was measured: it
// saves ~7% of gelu's cycles on AVX-512 but adds up to 1.3 ULP to mish and sigmoid, and
// SSE/AVX2's 12-bit estimate needs a second step.)
template <class D>
HWY_INLINE V<D> Reciprocal(D d, V<D> v) {
  return hn::Div(hn::Set(d, hn::TFromD<D>(1)), v);
}

#if HWY_TARGET <= HWY_AVX3
// AVX-512's scalef: v * 2^floor(e), the exact product rounded once (subnormal results
// included, as FTZ is off), for every vector size the AVX3 targets use.
HWY_INLINE hn::Vec512<float> Scalef(hn::Vec512<float> v, hn::Vec512<float> e) {
  return hn::Vec512<float>{_mm512_scalef_ps(v.raw, e.raw)};
}
HWY_INLINE hn::Vec512<double> Scalef(hn::Vec512<double> v, hn::Vec512<double> e) {
  return hn::Vec512<double>{_mm512_scalef_pd(v.raw, e.raw)};
}
HWY_INLINE hn::Vec256<float> Scalef(hn::Vec256<float> v, hn::Vec256<float> e) {
  return hn::Vec256<float>{_mm256_scalef_ps(v.raw, e.raw)};
}
HWY_INLINE hn::Vec256<double> Scalef(hn::Vec256<double> v, hn::Vec256<double> e) {
  return hn::Vec256<double>{_mm256_scalef_pd(v.raw, e.raw)};
}
template <size_t N>
HWY_INLINE hn::Vec128<float, N> Scalef(hn::Vec128<float, N> v, hn::Vec128<float, N> e) {
  return hn::Vec128<float, N>{_mm_scalef_ps(v.raw, e.raw)};
}
template <size_t N>
HWY_INLINE hn::Vec128<double, N> Scalef(hn::Vec128<double, N> v, hn::Vec128<double, N> e) {
  return hn::Vec128<double, N>{_mm_scalef_pd(v.raw, e.raw)};
}
#endif

// v * 2^q, rounded once (the exact product v * 2^q, correctly rounded, subnormal results
// included). AVX-512: one scalef (q < 2^24 converts to T exactly). Elsewhere: when every
// lane's 2^q is a normal number, one multiplication; otherwise two factors 2^(q/2) and
// 2^(q - q/2), the first exact, so the result is again rounded once. All ways give the
// same bits, so neither the target nor the branch (vector-uniform, and nearly always the
// first way for data of moderate magnitude) changes a result.
template <class D>
HWY_INLINE V<D> ScaleByPow2(D d, V<D> v, VI32<D> q) {
  using T = hn::TFromD<D>;
#if HWY_TARGET <= HWY_AVX3
  if constexpr (sizeof(T) == 4) {
    return Scalef(v, hn::ConvertTo(d, q));
  } else {
    return Scalef(v, hn::PromoteTo(d, q));
  }
#else
  hn::impl::ExpImpl<T> impl;
  const hn::Rebind<int32_t, D> di;
  const int32_t max_exponent = sizeof(T) == 4 ? 127 : 1023;
  const auto in_range = hn::And(hn::Gt(q, hn::Set(di, -max_exponent)),
                                hn::Lt(q, hn::Set(di, max_exponent)));
  if (HWY_LIKELY(hn::AllTrue(di, in_range))) return hn::Mul(v, impl.Pow2I(d, q));
  return impl.LoadExpShortRange(d, v, q);
#endif
}

// v * 2^q for the exponent of `e` (AVX-512: straight from q_float, no conversion).
template <class D>
HWY_INLINE V<D> ScaleByPow2(D d, V<D> v, const ExpParts<D>& e) {
#if HWY_TARGET <= HWY_AVX3
  (void)d;
  return Scalef(v, e.q_float);
#else
  return ScaleByPow2(d, v, e.q);
#endif
}

template <class D>
HWY_INLINE V<D> ExpFromParts(D d, const ExpParts<D>& e) {
  return ScaleByPow2(d, e.m, e);
}

// expm1 from the parts: 2^q * p + (2^q - 1), where 2^q - 1 is exact for the |q| <= 60
// used here, so the only rounding is the final FMA (about 1 ULP). With kPositive, large
// q (x > 41) falls back to exp (the -1 is below half an ULP there); without it the
// caller guarantees x <= 41 or discards those lanes.
template <bool kPositive = true, class D>
HWY_INLINE V<D> Expm1FromParts(D d, const ExpParts<D>& e) {
  using T = hn::TFromD<D>;
  hn::impl::ExpImpl<T> impl;
  const hn::Rebind<int32_t, D> di;
  const VI32<D> q_small = hn::Min(hn::Max(e.q, hn::Set(di, -60)), hn::Set(di, 60));
  const V<D> two_q = impl.Pow2I(d, q_small);
  const V<D> small = hn::MulAdd(two_q, e.p, hn::Sub(two_q, hn::Set(d, T(1))));
  if (!kPositive) return small;
  const auto large = hn::Gt(e.q_float, hn::Set(d, T(60)));
  return hn::IfThenElse(large, ExpFromParts(d, e), small);
}

// Below this magnitude expm1(x), tanh(x), ... round to x itself; returning x keeps -0 and
// subnormals exact.
template <typename T>
constexpr T TinyArgument() {
  return sizeof(T) == 4 ? T(1.0 / (1 << 26)) : T(1.0 / 36028797018963968.0);  // 2^-26, 2^-55
}

// The logistic function of z from one exponential of -|z| (never overflows):
// with e = exp(-|z|) and r = 1 / (1 + e), sigmoid(|z|) = r and sigmoid(-|z|) = e * r.
// `s` = sigmoid(z), `s_neg` = sigmoid(-z) = 1 - sigmoid(z), both with relative accuracy
// (about 2.5 ULP). `parts` and `r` are kept for callers that multiply the small side by
// a factor before applying 2^q (see TimesSigmoid).
template <class D>
struct SigmoidParts {
  ExpParts<D> parts;
  V<D> e;
  V<D> r;
  V<D> s;
  V<D> s_neg;
};

// kShortPoly: exp from ShortExpPoly (softplus, logsigmoid; see SplitExp).
template <bool kShortPoly = false, class D>
HWY_INLINE SigmoidParts<D> Sigmoid(D d, V<D> z) {
  using T = hn::TFromD<D>;
  const V<D> one = hn::Set(d, T(1));
  SigmoidParts<D> out;
  // -|z| <= 0: only the lower clamp can apply (x86 Max returns the bound for NaN lanes).
  const V<D> floor = hn::Set(d, sizeof(T) == 4 ? T(-170.0) : T(-1400.0));
  const V<D> minus_abs = hn::Max(hn::Neg(hn::Abs(z)), floor);
  out.parts = SplitExp<false, false, kShortPoly>(d, minus_abs, minus_abs);
  out.e = ExpFromParts(d, out.parts);
  out.r = Reciprocal(d, hn::Add(one, out.e));
  const V<D> small = hn::Mul(out.e, out.r);
  const auto non_negative = hn::Ge(z, hn::Zero(d));
  out.s = hn::IfThenElse(non_negative, out.r, small);
  out.s_neg = hn::IfThenElse(non_negative, small, out.r);
  return out;
}

// a * sigmoid(z), with 2^q applied after the product on the small side, so that
// a * sigmoid(z) in the subnormal range (silu(-100)) keeps its full relative accuracy.
template <class D>
HWY_INLINE V<D> TimesSigmoid(D d, V<D> a, V<D> z, const SigmoidParts<D>& sp) {
  const V<D> large_side = hn::Mul(a, sp.r);
  const V<D> small_side = ScaleByPow2(d, hn::Mul(hn::Mul(a, sp.parts.m), sp.r), sp.parts);
  return hn::IfThenElse(hn::Ge(z, hn::Zero(d)), large_side, small_side);
}

// log1p(w) for w in [0, 1]. float: w + w^2 M(w), M a degree-8 fit of (log1p(w) / w - 1)
// / w on [0, 1] (Lawson minimax on 2000 Chebyshev nodes against mpmath, weighted so that
// the error of log1p itself is relative: 5.1e-9), no division and no table; w M is
// rounded once and the last FMA once more (the w^2 M term is at most 0.31 of
// log1p(w)). softplus and logsigmoid built on it: 2.50 ULP forward over every 16th
// float. double: Highway's Log1p (2 ULP). Both return w itself for tiny w.
template <class D>
HWY_INLINE V<D> Log1pUnit(D d, V<D> w) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 4) {
    static constexpr float kCoefficients[] = {
        -0.00331845484f, 0.020204505f, -0.0576642938f, 0.106805407f, -0.153553873f,
        0.196953982f,    -0.249585867f, 0.33330512f,   -0.499999315f};
    V<D> m = hn::Set(d, kCoefficients[0]);
    for (size_t i = 1; i < sizeof(kCoefficients) / sizeof(float); ++i) {
      m = hn::MulAdd(m, w, hn::Set(d, kCoefficients[i]));
    }
    return hn::MulAdd(hn::Mul(w, m), w, w);
  } else {
    return hn::Log1p(d, w);
  }
}

// ---------------------------------------------------------------------------------------
// Float lanes as two vectors of double lanes and back, for the few computations that
// float32 cannot carry accurately (x - tanh(x), PReLU's weight-gradient sum).

#if HWY_TARGET == HWY_SCALAR
template <class D>
using DoubleHalfTag = hn::Rebind<double, D>;
template <class D>
HWY_INLINE void PromoteHalves(D /*d*/, V<D> v, V<DoubleHalfTag<D>>& lower,
                              V<DoubleHalfTag<D>>& upper) {
  const DoubleHalfTag<D> dd;
  lower = hn::PromoteTo(dd, v);
  upper = hn::Zero(dd);
}
template <class D>
HWY_INLINE V<D> DemoteHalves(D d, V<DoubleHalfTag<D>> lower, V<DoubleHalfTag<D>> /*upper*/) {
  return hn::DemoteTo(d, lower);
}
#else
template <class D>
using DoubleHalfTag = hn::Repartition<double, D>;
template <class D>
HWY_INLINE void PromoteHalves(D /*d*/, V<D> v, V<DoubleHalfTag<D>>& lower,
                              V<DoubleHalfTag<D>>& upper) {
  const DoubleHalfTag<D> dd;
  const hn::Half<D> dh;
  lower = hn::PromoteTo(dd, hn::LowerHalf(dh, v));
  upper = hn::PromoteTo(dd, hn::UpperHalf(dh, v));
}
template <class D>
HWY_INLINE V<D> DemoteHalves(D d, V<DoubleHalfTag<D>> lower, V<DoubleHalfTag<D>> upper) {
  const hn::Half<D> dh;
  return hn::Combine(d, hn::DemoteTo(dh, upper), hn::DemoteTo(dh, lower));
}
#endif

// ---------------------------------------------------------------------------------------
// Storage codecs. Loads widen to the compute type; float16 / bfloat16 stores round to
// nearest-even with integer operations (Highway 1.0.3's DemoteTo truncates on SSE4 and
// EMU128 and saturates float16 overflow to 65504), keep NaN a quiet NaN and overflow to
// +-Inf. Loads and stores are unaligned: tensor data may live in protobuf strings.

template <typename Storage>
struct Codec;

template <>
struct Codec<float> {
  using T = float;
  using D = hn::ScalableTag<float>;
  static HWY_INLINE V<D> Load(D d, const float* p) { return hn::LoadU(d, p); }
  static HWY_INLINE void Store(D d, V<D> v, float* p) { hn::StoreU(v, d, p); }
};

template <>
struct Codec<double> {
  using T = double;
  using D = hn::ScalableTag<double>;
  static HWY_INLINE V<D> Load(D d, const double* p) { return hn::LoadU(d, p); }
  static HWY_INLINE void Store(D d, V<D> v, double* p) { hn::StoreU(v, d, p); }
};

// Narrows 32-bit lanes that hold values <= 0xFFFF to uint16 and stores them.
template <class D>
HWY_INLINE void StoreLow16(D /*d*/, hn::Vec<hn::RebindToUnsigned<D>> bits, uint16_t* p) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::RebindToSigned<D> di;
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, bits)), du16, p);
}

template <>
struct Codec<hwy::float16_t> {
  using T = float;
  using D = hn::ScalableTag<float>;
  static HWY_INLINE V<D> Load(D d, const hwy::float16_t* p) {
#if HWY_TARGET <= HWY_AVX2
    // F16C's conversion is exact, Inf and NaN included.
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, p));
#else
    // Highway 1.0.3's emulated PromoteTo turns Inf and NaN into finite values: decode the
    // bits here. Normal: rebias; Inf/NaN: exponent 255; subnormal: m * 2^-24 (exact).
    const hn::Rebind<uint16_t, D> du16;
    const hn::RebindToUnsigned<D> du;
    const hn::RebindToSigned<D> di;
    const auto bits = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
    const auto sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(du, 0x8000u)));
    const auto exponent = hn::And(hn::ShiftRight<10>(bits), hn::Set(du, 0x1Fu));
    const auto mantissa = hn::And(bits, hn::Set(du, 0x3FFu));
    const auto normal = hn::Or(hn::ShiftLeft<23>(hn::Add(exponent, hn::Set(du, 112u))),
                               hn::ShiftLeft<13>(mantissa));
    const auto special = hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(mantissa));
    const auto subnormal = hn::BitCast(
        du, hn::Mul(hn::ConvertTo(d, hn::BitCast(di, mantissa)), hn::Set(d, 5.9604644775390625e-8f)));
    const auto exponent_signed = hn::BitCast(di, exponent);
    auto magnitude = hn::IfThenElse(hn::RebindMask(du, hn::Eq(exponent_signed, hn::Set(di, 31))),
                                    special, normal);
    magnitude = hn::IfThenElse(hn::RebindMask(du, hn::Eq(exponent_signed, hn::Zero(di))),
                               subnormal, magnitude);
    return hn::BitCast(d, hn::Or(magnitude, sign));
#endif
  }
  static HWY_INLINE void Store(D d, V<D> v, hwy::float16_t* p) {
#if HWY_TARGET <= HWY_AVX2
    // F16C's conversion rounds to nearest-even (imm 0), overflows to Inf, keeps NaN.
    const hn::Rebind<hwy::float16_t, D> dh;
    hn::StoreU(hn::DemoteTo(dh, v), dh, p);
#else
    const hn::RebindToUnsigned<D> du;
    const auto bits = hn::BitCast(du, v);
    const auto sign = hn::ShiftLeft<15>(hn::ShiftRight<31>(bits));
    const auto abs_bits = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
    const V<D> abs_value = hn::BitCast(d, abs_bits);
    // Normal half: rebias the exponent and round the 13 dropped bits to nearest-even.
    const auto rebiased = hn::Sub(abs_bits, hn::Set(du, 0x38000000u));
    const auto odd = hn::And(hn::ShiftRight<13>(rebiased), hn::Set(du, 1u));
    const auto normal =
        hn::ShiftRight<13>(hn::Add(hn::Add(rebiased, hn::Set(du, 0xFFFu)), odd));
    // Subnormal half (|v| < 2^-14): adding 0.5 aligns the value so that the FPU's own
    // round-to-nearest-even yields the half's mantissa in the low bits.
    const auto subnormal = hn::Sub(hn::BitCast(du, hn::Add(abs_value, hn::Set(d, 0.5f))),
                                   hn::Set(du, 0x3F000000u));
    auto half = hn::IfThenElse(hn::RebindMask(du, hn::Lt(abs_value, hn::Set(d, 6.103515625e-05f))),
                               subnormal, normal);
    // 65520 and above round to Inf.
    // (Signed comparisons: x86 has no unsigned ones, and abs_bits < 2^31.)
    const hn::RebindToSigned<D> di;
    const auto abs_signed = hn::BitCast(di, abs_bits);
    half = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs_signed, hn::Set(di, 0x477FEFFF))),
                          hn::Set(du, 0x7C00u), half);
    half = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs_signed, hn::Set(di, 0x7F800000))),
                          hn::Set(du, 0x7E00u), half);
    StoreLow16(d, hn::Or(half, sign), reinterpret_cast<uint16_t*>(p));
#endif
  }
};

template <>
struct Codec<hwy::bfloat16_t> {
  using T = float;
  using D = hn::ScalableTag<float>;
  static HWY_INLINE V<D> Load(D d, const hwy::bfloat16_t* p) {
    const hn::Rebind<hwy::bfloat16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, p));
  }
  static HWY_INLINE void Store(D d, V<D> v, hwy::bfloat16_t* p) {
    const hn::RebindToUnsigned<D> du;
    const auto bits = hn::BitCast(du, v);
    const auto odd = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
    const auto rounded = hn::ShiftRight<16>(hn::Add(hn::Add(bits, hn::Set(du, 0x7FFFu)), odd));
    // A NaN keeps its sign and becomes quiet (rounding could carry it into Inf).
    const auto quiet_nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x0040u));
    const hn::RebindToSigned<D> di;
    const auto is_nan = hn::RebindMask(
        du, hn::Gt(hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu))), hn::Set(di, 0x7F800000)));
    StoreLow16(d, hn::IfThenElse(is_nan, quiet_nan, rounded), reinterpret_cast<uint16_t*>(p));
  }
};

// ---------------------------------------------------------------------------------------
// The streaming loop. An Op provides
//   V Forward(D, V x) const;                          y
//   void Both(D, V x, V g, V& y, V& dx) const;        y and dx = g * f'(x)
// RunLoop reads x (and dy) of each vector before writing y (and dx), so outputs may alias
// inputs. The tail (n not a multiple of the lane count) is copied into a zero-padded
// vector and run through the very same code, so every element's result is independent
// of where a chunk starts or ends.

inline constexpr size_t kMaxTailLanes = 64;  // >= the lanes of any x86 target

// On x86's SIMD targets Min / Max return their second operand when either is NaN, so
// hn::Max(zero, x) propagates a NaN x. (EMU128 and SCALAR return the other operand.)
inline constexpr bool kMinMaxPropagateSecondNaN =
    HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128;

// An Op whose Forward already turns NaN into NaN declares
//   static constexpr bool kForwardKeepsNaN = true;
// and the loop skips the restoring select (two ops per vector) for it.
template <class Op, class = void>
struct ForwardKeepsNaN : std::false_type {};
template <class Op>
struct ForwardKeepsNaN<Op, std::void_t<decltype(Op::kForwardKeepsNaN)>>
    : std::bool_constant<Op::kForwardKeepsNaN> {};

template <bool kGradient, bool kHasDy, class Op, typename Storage>
HWY_INLINE void Step(const Op& op, const Storage* x, const Storage* dy, Storage* y,
                     Storage* dx) {
  using C = Codec<Storage>;
  using T = typename C::T;
  const typename C::D d;
  V<decltype(d)> xv = C::Load(d, x);
#if HWY_TARGET <= HWY_AVX3
  // x in a register: otherwise GCC may fold the NaN-restoring select into a merge-masked
  // load of x (hardsigmoid's forward did, and ran at 0.8x of the copy limit; see dy below).
  if constexpr (sizeof(xv.raw) == 64) asm volatile("" : "+v"(xv.raw));
#endif
  if constexpr (!kGradient && ForwardKeepsNaN<Op>::value) {
    C::Store(d, op.Forward(d, xv), y);
    return;
  }
  const auto is_nan = hn::IsNaN(xv);
  if constexpr (!kGradient) {
    C::Store(d, hn::IfThenElse(is_nan, xv, op.Forward(d, xv)), y);
  } else {
    V<decltype(d)> g = kHasDy ? C::Load(d, dy) : hn::Set(d, T(1));
#if HWY_TARGET <= HWY_AVX3
    // Keeps GCC from folding `IfThenElseZero(mask, g)` (relu, relu6, hardtanh, the
    // shrinks, threshold) into a zero-masked load of dy: streaming from memory, those
    // masked loads ran relu6's fused pass at 0.75x of the copy limit on the AMD Zen
    // build machines; a full load plus a masked register move runs it at 1.05-1.10x.
    if constexpr (kHasDy && sizeof(g.raw) == 64) asm volatile("" : "+v"(g.raw));
#endif
    V<decltype(d)> yv, dxv;
    op.Both(d, xv, g, yv, dxv);
    // A loop-invariant, perfectly predicted branch (y is absent in backward-only calls).
    if (y != nullptr) C::Store(d, hn::IfThenElse(is_nan, xv, yv), y);
    C::Store(d, hn::IfThenElse(is_nan, xv, dxv), dx);
  }
}

// `n` elements, a multiple of the lane count. Not inlined, and used for the padded tail
// too, so each (gradient, dy) variant of an activation is compiled once per target: the
// kernel families' code size (and the sanitizer build's compile time, which grows faster
// than linearly with it) stays small. Unrolling by two and a loop per (dy, y) presence
// were measured: no gain on the compute-bound kernels, and the memory-bound ones run at
// the copy limit without it.
template <bool kGradient, bool kHasDy, class Op, typename Storage>
HWY_NOINLINE void RunVectors(const Op& op, const Storage* x, const Storage* dy, Storage* y,
                             Storage* dx, size_t n) {
  const size_t lanes = hn::Lanes(typename Codec<Storage>::D());
  for (size_t i = 0; i < n; i += lanes) {
    Step<kGradient, kHasDy>(op, x + i, kHasDy ? dy + i : nullptr, y != nullptr ? y + i : nullptr,
                            kGradient ? dx + i : nullptr);
  }
}

// y (may be nullptr when kGradient), dx (kGradient only), dy (nullptr: 1).
template <bool kGradient, bool kHasDy, class Op, typename Storage>
HWY_INLINE void RunLoopWith(const Op& op, const Storage* x, const Storage* dy, Storage* y,
                            Storage* dx, size_t n) {
  const size_t lanes = hn::Lanes(typename Codec<Storage>::D());
  const size_t full = n - n % lanes;
  RunVectors<kGradient, kHasDy>(op, x, dy, y, dx, full);
  const size_t rest = n - full;
  if (rest == 0) return;
  HWY_ALIGN Storage x_tail[kMaxTailLanes];
  HWY_ALIGN Storage dy_tail[kMaxTailLanes];
  HWY_ALIGN Storage y_tail[kMaxTailLanes];
  HWY_ALIGN Storage dx_tail[kMaxTailLanes];
  std::memset(x_tail, 0, sizeof(x_tail));
  std::memset(dy_tail, 0, sizeof(dy_tail));
  std::memcpy(x_tail, x + full, rest * sizeof(Storage));
  if (kHasDy) std::memcpy(dy_tail, dy + full, rest * sizeof(Storage));
  RunVectors<kGradient, kHasDy>(op, x_tail, kHasDy ? dy_tail : nullptr,
                                y != nullptr ? y_tail : nullptr, kGradient ? dx_tail : nullptr,
                                lanes);
  if (y != nullptr) std::memcpy(y + full, y_tail, rest * sizeof(Storage));
  if (kGradient) std::memcpy(dx + full, dx_tail, rest * sizeof(Storage));
}

template <bool kGradient, class Op, typename Storage>
HWY_INLINE void RunLoop(const Op& op, const Storage* x, const Storage* dy, Storage* y,
                        Storage* dx, size_t n) {
  if (kGradient && dy != nullptr) {
    RunLoopWith<kGradient, true>(op, x, dy, y, dx, n);
  } else {
    RunLoopWith<kGradient, false>(op, x, static_cast<const Storage*>(nullptr), y, dx, n);
  }
}

// Runs `op` (built for compute type T) on the call's buffers.
template <class Op, typename Storage>
HWY_INLINE void RunOp(const Op& op, const ElementwiseCall& call) {
  const auto* x = static_cast<const Storage*>(call.x);
  const auto* dy = static_cast<const Storage*>(call.dy);
  auto* y = static_cast<Storage*>(call.y);
  auto* dx = static_cast<Storage*>(call.dx);
  if (dx != nullptr) {
    RunLoop<true, Op, Storage>(op, x, dy, y, dx, call.n);
  } else {
    RunLoop<false, Op, Storage>(op, x, nullptr, y, nullptr, call.n);
  }
}

// Calls `fn(Storage*)` (a null pointer of the storage type) for the call's dtype.
template <class Fn>
HWY_INLINE void WithStorage(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat64:
      return fn(static_cast<double*>(nullptr));
    case DType::kFloat16:
      return fn(static_cast<hwy::float16_t*>(nullptr));
    case DType::kBFloat16:
      return fn(static_cast<hwy::bfloat16_t*>(nullptr));
    case DType::kFloat32:
    case DType::kUnspecified:
      break;
  }
  fn(static_cast<float*>(nullptr));
}

// The compute type of a storage type.
template <typename Storage>
using ComputeType = typename Codec<Storage>::T;

}  // namespace HWY_NAMESPACE
}  // namespace kernels
}  // namespace actserve
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
