// softmax and log_softmax along one dimension, forward and backward, on Highway vectors.
//
// The input is seen as [outer, lane, inner] and reduced along `lane`. Two layouts:
//   contiguous (inner == 1): one reduction at a time, SIMD along the lane; the vector
//     partial sums are added in long double at the end;
//   strided (inner > 1, e.g. dim 0 or 1 of NCHW): SIMD across `inner`: adjacent columns
//     j..j+N of one outer index are independent reductions, so every access reads a
//     contiguous run of a row. Columns go in blocks of up to kBlockVectors vectors whose
//     per-column state lives in stack scratch (no heap, no allocation per call).
// Passes over a lane: max (and NaN detection), sum of exp(x - max), for softmax backward
// sum(dy * softmax), then the outputs. Each element's x and dy are read before its y and
// dx are written, so y may alias x and dx may alias dy.
//
// Lane types: float for float32, float16 and bfloat16 storage (16-bit results rounded once
// to nearest-even), double for float64. Numerics:
//   - x - max is carried exactly as hi + lo (TwoSum) into SplitExp, so exp(x - max) has
//     Highway's 1 ULP even far below the maximum (x - max = -80 rounded to float alone
//     would cost up to 80 ULP);
//   - sums are accumulated in double lanes for float, and compensated (TwoSum /
//     TwoProduct) in double lanes for float64: their relative error is about
//     lane * 2^-53 (float) or 2^-100 (double), negligible against one ULP of the output;
//   - the sum excludes the entries equal to the maximum (each contributes exactly 1,
//     counted apart), so log_softmax keeps the digits of -log1p(rest) at the maximum when
//     the other entries are tiny, as the scalar oracle (tests/oracle/activation_math.cc) does;
//   - softmax is exp(x - max) * (1 / sum), with the exponential of the sum pass kept in
//     an output buffer (float32, float64), so each element costs one exponential.
// Measured against the long-double reference on every target (tests/kernels/
// softmax_kernel_test.cc asserts the bounds of src/kernels/accuracy_bounds.h): y within 2.2 ULP (softmax) and 1.1 ULP (log_softmax) in float32 and float64; float16 /
// bfloat16 correctly rounded (0.5 ULP) in the test's inputs. dx within 4.5 ULP (softmax)
// and 6.8 ULP (log_softmax, whose dy - exp(y) * sum(dy) may cancel by up to 8x before the
// test calls it cancelling), or, where dx is small against the terms that cancel in it,
// within 0.8 eps of their size.
//
// Special values are exactly the oracle's: a NaN anywhere in a lane, or a lane whose
// maximum is +Inf or -Inf (an +Inf entry; all entries -Inf), gives NaN for the whole
// lane's y and dx; a -Inf entry below a finite maximum gives y = 0 (softmax) or -Inf
// (log_softmax). Equal maxima are counted exactly up to 2^31 per vector lane.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/softmax_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "hwy/highway.h"
#include "src/kernels/kernel_families.h"
#include "src/kernels/kernel_ops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace actserve {
namespace kernels {
namespace HWY_NAMESPACE {
namespace {

// Columns per block of the strided layout, in vectors: 16 vectors make each row access a
// run of 1 KiB on AVX-512 (256 float32), long enough for the prefetchers to stream rows
// that lie a power of two apart (which map to the same cache sets), while the per-column
// scratch (about 14 KiB) stays in L1. Measured on [1024, 16384] over dim 0 (float32,
// AVX-512, with the engine's 256-reduction chunks): 0.45-0.56 Gelem/s against 0.35 with
// the 256-byte runs of 4-vector blocks.
constexpr size_t kBlockVectors = 16;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);  // float lanes, the most

// Below this, exp(x) rounds to 0 in T (SplitExp clamps here too).
template <typename T>
constexpr T ExpFloor() {
  return sizeof(T) == 4 ? T(-170.0) : T(-1400.0);
}

// A sum of T lanes in more precision: for float, two vectors of double lanes (the lower
// and upper halves); for double, a compensated pair (s, c) whose s is the plain sum, so
// Inf and NaN propagate exactly as in plain summation (the correction is used only where
// s is finite).
template <class D, bool kFloat = sizeof(hn::TFromD<D>) == 4>
struct WideSum;

template <class D>
struct WideSum<D, true> {
  using DD = DoubleHalfTag<D>;
  V<DD> lower, upper;

  HWY_INLINE WideSum() {
    const DD dd;
    lower = hn::Zero(dd);
    upper = hn::Zero(dd);
  }
  HWY_INLINE void Add(D d, V<D> term) {
    V<DD> a, b;
    PromoteHalves(d, term, a, b);
    lower = hn::Add(lower, a);
    upper = hn::Add(upper, b);
  }
  // a * b is exact in double; one rounding per addition.
  HWY_INLINE void AddProduct(D d, V<D> a, V<D> b) {
    V<DD> a_lower, a_upper, b_lower, b_upper;
    PromoteHalves(d, a, a_lower, a_upper);
    PromoteHalves(d, b, b_lower, b_upper);
    lower = hn::MulAdd(a_lower, b_lower, lower);
    upper = hn::MulAdd(a_upper, b_upper, upper);
  }
  // The lanes' totals in order, as hi + lo (hn::Lanes(D) values each; lo is 0 here).
  HWY_INLINE void StoreTotals(D d, double* hi, double* lo) const {
    const DD dd;
    const size_t half = hn::Lanes(dd);
    hn::StoreU(lower, dd, hi);
    if (hn::Lanes(d) > half) hn::StoreU(upper, dd, hi + half);
    for (size_t i = 0; i < hn::Lanes(d); ++i) lo[i] = 0;
  }
};

template <class D>
struct WideSum<D, false> {
  V<D> s, c;

  HWY_INLINE WideSum() {
    const D d;
    s = hn::Zero(d);
    c = hn::Zero(d);
  }
  // TwoSum: s + term = s' + error exactly.
  HWY_INLINE void Add(D d, V<D> term) {
    (void)d;
    const V<D> sum = hn::Add(s, term);
    const V<D> bb = hn::Sub(sum, s);
    const V<D> error = hn::Add(hn::Sub(s, hn::Sub(sum, bb)), hn::Sub(term, bb));
    c = hn::Add(c, error);
    s = sum;
  }
  HWY_INLINE void AddProduct(D d, V<D> a, V<D> b) {
    V<D> product, error;
    TwoProduct(d, a, b, product, error);
    Add(d, product);
    // Dekker's split (targets without FMA) overflows for huge factors: drop the error
    // there rather than turn a finite sum into NaN.
    c = hn::Add(c, hn::IfThenElseZero(hn::IsFinite(error), error));
  }
  HWY_INLINE void StoreTotals(D d, double* hi, double* lo) const {
    hn::StoreU(s, d, hi);
    hn::StoreU(hn::IfThenElseZero(hn::IsFinite(s), c), d, lo);
  }
};

// The sum of every lane of `sum`, in long double (the order is fixed by the target).
template <class D>
HWY_INLINE long double Reduce(D d, const WideSum<D>& sum) {
  HWY_ALIGN double hi[kMaxLanes], lo[kMaxLanes];
  sum.StoreTotals(d, hi, lo);
  long double total = 0;
  for (size_t i = 0; i < hn::Lanes(d); ++i) total += hi[i];
  if (!std::isfinite(total)) return total;  // Inf and NaN as in a plain sum
  for (size_t i = 0; i < hn::Lanes(d); ++i) total += lo[i];
  return total;
}

// `value` as hi + lo in T: softmax's dy - sum(dy * y) is computed as (dy - hi) - lo, exact
// in the first step where they cancel, so the gradient keeps its relative accuracy there.
template <typename T>
HWY_INLINE void SplitTotal(long double value, T* hi, T* lo) {
  *hi = static_cast<T>(value);
  *lo = std::isfinite(*hi) ? static_cast<T>(value - *hi) : T(0);
}

// The count of maxima per lane: integer lanes as wide as T's, decremented by the all-ones
// bits of a true mask (exact up to 2^31 per lane, one operation per vector).
template <class D>
using CountTag = hn::RebindToSigned<D>;
template <class D>
using CountLane = hn::TFromD<CountTag<D>>;

template <class D>
HWY_INLINE V<CountTag<D>> CountMaxima(D d, V<CountTag<D>> count, hn::Mask<D> is_max) {
  const CountTag<D> di;
  return hn::Sub(count, hn::BitCast(di, hn::VecFromMask(d, is_max)));
}

// x - m = hi + lo exactly (TwoSum). lo is zeroed where exp(hi) is 0 anyway, because an
// infinite hi (x = -Inf, or an overflowing difference) makes it NaN.
template <class D>
HWY_INLINE void ShiftedInput(D d, V<D> x, V<D> m, V<D>& hi, V<D>& lo) {
  using T = hn::TFromD<D>;
  hi = hn::Sub(x, m);
  const V<D> bb = hn::Sub(hi, x);
  lo = hn::Add(hn::Sub(x, hn::Sub(hi, bb)), hn::Sub(hn::Neg(m), bb));
  lo = hn::IfThenElseZero(hn::Gt(hi, hn::Set(d, ExpFloor<T>())), lo);
}

// The per-reduction constants of the output pass, broadcast or per column.
template <class D>
struct LaneConstants {
  V<D> max;          // the lane's maximum
  V<D> inverse_sum;  // 1 / sum(exp(x - max))
  V<D> log_sum;      // log(sum(exp(x - max)))
  V<D> dot;          // softmax: sum(dy * y) as dot + dot_low; log_softmax: sum(dy)
  V<D> dot_low;
};

// exp(x - m) with Highway's 1 ULP (x - m exact as hi + lo).
template <class D>
HWY_INLINE V<D> ShiftedExp(D d, V<D> x, V<D> m) {
  V<D> hi, lo;
  ShiftedInput(d, x, m, hi, lo);
  return ExpFromParts(d, SplitExp(d, hi, lo));
}

// y and dx of one vector from x, dy and e = exp(x - max) (unused by log_softmax without
// a gradient). Softmax is e * (1 / sum): the exponential is what the sum pass computed,
// so it can be kept in an output buffer instead of being computed again.
template <bool kLog, class D>
HWY_INLINE void Outputs(D d, V<D> x, V<D> e, V<D> g, const LaneConstants<D>& k, V<D>& y,
                        V<D>& dx) {
  const V<D> p = hn::Mul(e, k.inverse_sum);
  if constexpr (kLog) {
    V<D> hi, lo;
    ShiftedInput(d, x, k.max, hi, lo);
    // (x - max) - log_sum with both terms <= 0 <= log_sum: no cancellation.
    y = hn::Add(hn::Sub(hi, k.log_sum), lo);
    dx = hn::NegMulAdd(p, k.dot, g);
  } else {
    (void)x;
    y = p;
    dx = hn::Mul(p, hn::Sub(hn::Sub(g, k.dot), k.dot_low));
  }
}

// Loads `count` <= Lanes(d) elements; the missing lanes are `pad`.
template <typename Storage, class D>
HWY_INLINE V<D> LoadPartial(D d, const Storage* p, size_t count, hn::TFromD<D> pad) {
  using C = Codec<Storage>;
  if (HWY_LIKELY(count == hn::Lanes(d))) return C::Load(d, p);
  HWY_ALIGN Storage buffer[kMaxTailLanes];
  std::memset(buffer, 0, sizeof(buffer));
  std::memcpy(buffer, p, count * sizeof(Storage));
  return hn::IfThenElse(hn::FirstN(d, count), C::Load(d, buffer), hn::Set(d, pad));
}

template <typename Storage, class D>
HWY_INLINE void StorePartial(D d, V<D> v, Storage* p, size_t count) {
  using C = Codec<Storage>;
  if (HWY_LIKELY(count == hn::Lanes(d))) return C::Store(d, v, p);
  HWY_ALIGN Storage buffer[kMaxTailLanes];
  C::Store(d, v, buffer);
  std::memcpy(p, buffer, count * sizeof(Storage));
}

// The buffers of one call, typed.
template <typename Storage>
struct Buffers {
  const Storage* x;
  const Storage* dy;  // nullptr: dy = 1
  Storage* y;         // nullptr: no output
  Storage* dx;        // nullptr: no gradient
  // Where the sum pass keeps exp(x - max) for the later passes, or nullptr: compute it
  // again. An output that the final pass overwrites element by element after reading it:
  // softmax's y (or dx when only dx is asked for and it does not alias dy), log_softmax's
  // dx. float32 and float64 only, whose storage holds the float lanes exactly; the
  // results are the same bits either way.
  Storage* exp;
};

template <bool kLog, typename Storage>
Storage* ExpBuffer(const Buffers<Storage>& b) {
  if constexpr (!std::is_same_v<Storage, ComputeType<Storage>>) {
    return nullptr;
  } else {
    Storage* dx_if_free = b.dx != nullptr && b.dx != b.dy ? b.dx : nullptr;
    if (kLog) return dx_if_free;
    return b.y != nullptr ? b.y : dx_if_free;
  }
}

// ---------------------------------------------------------------------------------------
// Contiguous: the lane is `n` adjacent elements starting at `offset`.

template <bool kLog, typename Storage>
HWY_NOINLINE void ContiguousLane(const Buffers<Storage>& b, size_t offset, size_t n) {
  using C = Codec<Storage>;
  using T = typename C::T;
  using D = typename C::D;
  const D d;
  const size_t lanes = hn::Lanes(d);
  const T inf = std::numeric_limits<T>::infinity();
  const Storage* x = b.x + offset;
  const Storage* dy = b.dy != nullptr ? b.dy + offset : nullptr;
  const bool backward = b.dx != nullptr;

  // Pass 1: the maximum; NaN is tracked apart (x86's max drops it). Two accumulators
  // halve the dependency chain.
  V<D> max0 = hn::Set(d, -inf), max1 = max0;
  auto nan = hn::Eq(max0, hn::Zero(d));  // all false
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const V<D> a = C::Load(d, x + i), c = C::Load(d, x + i + lanes);
    nan = hn::Or(nan, hn::Or(hn::IsNaN(a), hn::IsNaN(c)));
    max0 = hn::Max(max0, a);
    max1 = hn::Max(max1, c);
  }
  for (; i < n; i += lanes) {
    const V<D> a = LoadPartial(d, x + i, HWY_MIN(lanes, n - i), -inf);
    nan = hn::Or(nan, hn::IsNaN(a));
    max0 = hn::Max(max0, a);
  }
  const T max = hn::GetLane(hn::MaxOfLanes(d, hn::Max(max0, max1)));
  if (!hn::AllFalse(d, nan) || std::isinf(max)) {
    // The whole lane is NaN, as in PyTorch: Inf - Inf or a NaN reaches every entry.
    const V<D> nan_vector = hn::Set(d, std::numeric_limits<T>::quiet_NaN());
    for (i = 0; i < n; i += lanes) {
      const size_t count = HWY_MIN(lanes, n - i);
      if (b.y != nullptr) StorePartial(d, nan_vector, b.y + offset + i, count);
      if (backward) StorePartial(d, nan_vector, b.dx + offset + i, count);
    }
    return;
  }

  // Pass 2: rest = sum over x < max of exp(x - max), the count of maxima apart; for
  // log_softmax's gradient also sum(dy). Padding lanes are -Inf (exp 0) and dy 0.
  LaneConstants<D> k;
  k.max = hn::Set(d, max);
  Storage* exp = b.exp != nullptr ? b.exp + offset : nullptr;
  WideSum<D> rest, dy_sum;
  const CountTag<D> di;
  V<CountTag<D>> maxima = hn::Zero(di);
  const V<D> one = hn::Set(d, T(1));
  for (i = 0; i < n; i += lanes) {
    const size_t count = HWY_MIN(lanes, n - i);
    const V<D> a = LoadPartial(d, x + i, count, -inf);
    const V<D> e = ShiftedExp(d, a, k.max);
    if (exp != nullptr) StorePartial(d, e, exp + i, count);
    const auto is_max = hn::Eq(a, k.max);
    rest.Add(d, hn::IfThenZeroElse(is_max, e));
    maxima = CountMaxima(d, maxima, is_max);
    if (kLog && backward) {
      dy_sum.Add(d, dy != nullptr ? LoadPartial(d, dy + i, count, T(0))
                                  : hn::IfThenElseZero(hn::FirstN(d, count), one));
    }
  }
  HWY_ALIGN CountLane<D> counts[kMaxLanes];
  hn::Store(maxima, di, counts);
  int64_t maxima_total = 0;
  for (size_t c = 0; c < lanes; ++c) maxima_total += counts[c];
  const long double rest_total = Reduce(d, rest) + static_cast<long double>(maxima_total - 1);
  k.inverse_sum = hn::Set(d, static_cast<T>(1 / (1 + rest_total)));
  k.log_sum = hn::Set(d, static_cast<T>(std::log1p(rest_total)));
  k.dot = hn::Zero(d);
  k.dot_low = hn::Zero(d);
  const bool needs_exp = !kLog || backward;
  // exp(x - max) of the vector at i (x already loaded as `a`).
  auto exp_at = [&](size_t at, size_t count, V<D> a) HWY_ATTR {
    if (!needs_exp) return hn::Zero(d);
    return exp != nullptr ? LoadPartial(d, exp + at, count, T(0)) : ShiftedExp(d, a, k.max);
  };
  if (backward) {
    if constexpr (kLog) {
      k.dot = hn::Set(d, static_cast<T>(Reduce(d, dy_sum)));
    } else {
      // Pass 3 (softmax backward): sum(dy * y).
      WideSum<D> dot;
      for (i = 0; i < n; i += lanes) {
        const size_t count = HWY_MIN(lanes, n - i);
        const V<D> a = exp != nullptr ? one : LoadPartial(d, x + i, count, -inf);
        const V<D> g = dy != nullptr ? LoadPartial(d, dy + i, count, T(0)) : one;
        dot.AddProduct(d, g, hn::Mul(exp_at(i, count, a), k.inverse_sum));
      }
      T hi, lo;
      SplitTotal(Reduce(d, dot), &hi, &lo);
      k.dot = hn::Set(d, hi);
      k.dot_low = hn::Set(d, lo);
    }
  }

  // The outputs. (softmax with `exp` in y: x may have been overwritten; it is not read.)
  for (i = 0; i < n; i += lanes) {
    const size_t count = HWY_MIN(lanes, n - i);
    const V<D> a = kLog || exp == nullptr ? LoadPartial(d, x + i, count, -inf) : one;
    const V<D> g = dy != nullptr && backward ? LoadPartial(d, dy + i, count, T(0)) : one;
    V<D> y, dx;
    Outputs<kLog>(d, a, exp_at(i, count, a), g, k, y, dx);
    if (b.y != nullptr) StorePartial(d, y, b.y + offset + i, count);
    if (backward) StorePartial(d, dx, b.dx + offset + i, count);
  }
}

// ---------------------------------------------------------------------------------------
// Strided: columns [j, j + width) of outer index `o`, width <= kBlockVectors * lanes;
// element (k, column c) at base + k * inner + c.

template <bool kLog, typename Storage>
HWY_NOINLINE void StridedBlock(const Buffers<Storage>& b, size_t base, size_t lane_length,
                               size_t inner, size_t width) {
  using C = Codec<Storage>;
  using T = typename C::T;
  using D = typename C::D;
  const D d;
  const size_t lanes = hn::Lanes(d);
  const size_t vectors = (width + lanes - 1) / lanes;
  const T inf = std::numeric_limits<T>::infinity();
  const bool backward = b.dx != nullptr;
  const V<D> one = hn::Set(d, T(1));
  auto count_of = [&](size_t v) { return HWY_MIN(lanes, width - v * lanes); };

  // Per-column state, one vector per block vector.
  HWY_ALIGN T max[kBlockVectors * kMaxLanes];
  HWY_ALIGN T invalid[kBlockVectors * kMaxLanes];  // all ones bits: NaN lane
  for (size_t v = 0; v < vectors; ++v) {
    hn::Store(hn::Set(d, -inf), d, max + v * lanes);
    hn::Store(hn::Zero(d), d, invalid + v * lanes);
  }
  // Pass 1: maxima and NaN, row by row so that each access is a contiguous run.
  for (size_t k = 0; k < lane_length; ++k) {
    const Storage* row = b.x + base + k * inner;
    for (size_t v = 0; v < vectors; ++v) {
      const V<D> a = LoadPartial(d, row + v * lanes, count_of(v), -inf);
      hn::Store(hn::Max(hn::Load(d, max + v * lanes), a), d, max + v * lanes);
      hn::Store(hn::Or(hn::Load(d, invalid + v * lanes), hn::VecFromMask(d, hn::IsNaN(a))), d,
                invalid + v * lanes);
    }
  }
  for (size_t v = 0; v < vectors; ++v) {
    const V<D> m = hn::Load(d, max + v * lanes);
    hn::Store(hn::Or(hn::Load(d, invalid + v * lanes), hn::VecFromMask(d, hn::IsInf(m))), d,
              invalid + v * lanes);
  }

  // Pass 2: the sums, kept in scratch between rows.
  WideSum<D> rest[kBlockVectors], dy_sum[kBlockVectors];
  const CountTag<D> di;
  V<CountTag<D>> maxima[kBlockVectors];
  for (size_t v = 0; v < vectors; ++v) maxima[v] = hn::Zero(di);
  for (size_t k = 0; k < lane_length; ++k) {
    const size_t row = base + k * inner;
    for (size_t v = 0; v < vectors; ++v) {
      const size_t count = count_of(v);
      const V<D> a = LoadPartial(d, b.x + row + v * lanes, count, -inf);
      const V<D> m = hn::Load(d, max + v * lanes);
      const V<D> e = ShiftedExp(d, a, m);
      if (b.exp != nullptr) StorePartial(d, e, b.exp + row + v * lanes, count);
      const auto is_max = hn::Eq(a, m);
      rest[v].Add(d, hn::IfThenZeroElse(is_max, e));
      maxima[v] = CountMaxima(d, maxima[v], is_max);
      if (kLog && backward) {
        dy_sum[v].Add(d, b.dy != nullptr ? LoadPartial(d, b.dy + row + v * lanes, count, T(0))
                                         : one);
      }
    }
  }
  // Per-column constants: 1 / sum and log(sum) from rest + (maxima - 1), in double.
  HWY_ALIGN T inverse_sum[kBlockVectors * kMaxLanes];
  HWY_ALIGN T log_sum[kBlockVectors * kMaxLanes];
  HWY_ALIGN T dot[kBlockVectors * kMaxLanes];
  HWY_ALIGN T dot_low[kBlockVectors * kMaxLanes];
  HWY_ALIGN double rest_hi[kMaxLanes], rest_lo[kMaxLanes], dy_hi[kMaxLanes], dy_lo[kMaxLanes];
  HWY_ALIGN CountLane<D> counts[kMaxLanes];
  for (size_t v = 0; v < vectors; ++v) {
    rest[v].StoreTotals(d, rest_hi, rest_lo);
    hn::Store(maxima[v], di, counts);
    if (kLog && backward) dy_sum[v].StoreTotals(d, dy_hi, dy_lo);
    for (size_t c = 0; c < lanes; ++c) {
      // Once per column and lane_length rows: scalar long double costs little here.
      const long double total = (static_cast<long double>(rest_hi[c]) + rest_lo[c]) +
                                static_cast<long double>(counts[c] - 1);
      inverse_sum[v * lanes + c] = static_cast<T>(1 / (1 + total));
      log_sum[v * lanes + c] = static_cast<T>(std::log1p(total));
      dot[v * lanes + c] =
          kLog && backward
              ? static_cast<T>(std::isfinite(dy_hi[c]) ? dy_hi[c] + static_cast<long double>(dy_lo[c])
                                                       : dy_hi[c])
              : T(0);
      dot_low[v * lanes + c] = T(0);
    }
  }

  const bool needs_exp = !kLog || backward;
  // exp(x - max) of block vector v in row `row` (x already loaded as `a`).
  auto exp_at = [&](size_t at, size_t count, V<D> a, const V<D>& m) HWY_ATTR {
    if (!needs_exp) return hn::Zero(d);
    return b.exp != nullptr ? LoadPartial(d, b.exp + at, count, T(0)) : ShiftedExp(d, a, m);
  };
  auto constants = [&](size_t v) HWY_ATTR {
    LaneConstants<D> k;
    k.max = hn::Load(d, max + v * lanes);
    k.inverse_sum = hn::Load(d, inverse_sum + v * lanes);
    k.log_sum = hn::Load(d, log_sum + v * lanes);
    k.dot = hn::Load(d, dot + v * lanes);
    k.dot_low = hn::Load(d, dot_low + v * lanes);
    return k;
  };

  // Pass 3 (softmax backward): sum(dy * y).
  if (!kLog && backward) {
    WideSum<D> products[kBlockVectors];
    for (size_t k = 0; k < lane_length; ++k) {
      const size_t row = base + k * inner;
      for (size_t v = 0; v < vectors; ++v) {
        const size_t count = count_of(v);
        const size_t at = row + v * lanes;
        const V<D> a = b.exp != nullptr ? one : LoadPartial(d, b.x + at, count, -inf);
        const V<D> g = b.dy != nullptr ? LoadPartial(d, b.dy + at, count, T(0)) : one;
        const LaneConstants<D> k = constants(v);
        products[v].AddProduct(d, g, hn::Mul(exp_at(at, count, a, k.max), k.inverse_sum));
      }
    }
    HWY_ALIGN double hi[kMaxLanes], lo[kMaxLanes];
    for (size_t v = 0; v < vectors; ++v) {
      products[v].StoreTotals(d, hi, lo);
      for (size_t c = 0; c < lanes; ++c) {
        const long double total =
            std::isfinite(hi[c]) ? hi[c] + static_cast<long double>(lo[c]) : hi[c];
        SplitTotal(total, dot + v * lanes + c, dot_low + v * lanes + c);
      }
    }
  }

  // The outputs; NaN columns get NaN.
  const V<D> nan_vector = hn::Set(d, std::numeric_limits<T>::quiet_NaN());
  for (size_t k = 0; k < lane_length; ++k) {
    const size_t row = base + k * inner;
    for (size_t v = 0; v < vectors; ++v) {
      const size_t count = count_of(v);
      const size_t at = row + v * lanes;
      const V<D> a = kLog || b.exp == nullptr ? LoadPartial(d, b.x + at, count, -inf) : one;
      const V<D> g = b.dy != nullptr && backward ? LoadPartial(d, b.dy + at, count, T(0)) : one;
      const LaneConstants<D> k = constants(v);
      V<D> y, dx;
      Outputs<kLog>(d, a, exp_at(at, count, a, k.max), g, k, y, dx);
      const auto is_invalid = hn::MaskFromVec(hn::Load(d, invalid + v * lanes));
      if (b.y != nullptr) {
        StorePartial(d, hn::IfThenElse(is_invalid, nan_vector, y), b.y + row + v * lanes, count);
      }
      if (backward) {
        StorePartial(d, hn::IfThenElse(is_invalid, nan_vector, dx), b.dx + row + v * lanes,
                     count);
      }
    }
  }
}

template <bool kLog, typename Storage>
void RunTyped(const SoftmaxCall& call, int64_t begin, int64_t end) {
  Buffers<Storage> b = {static_cast<const Storage*>(call.x),
                        static_cast<const Storage*>(call.dy), static_cast<Storage*>(call.y),
                        static_cast<Storage*>(call.dx), nullptr};
  b.exp = ExpBuffer<kLog>(b);
  const size_t lane_length = static_cast<size_t>(call.lane);
  const size_t inner = static_cast<size_t>(call.inner);
  if (inner == 1) {
    for (int64_t l = begin; l < end; ++l) {
      ContiguousLane<kLog>(b, static_cast<size_t>(l) * lane_length, lane_length);
    }
    return;
  }
  const size_t block = kBlockVectors * hn::Lanes(typename Codec<Storage>::D());
  for (size_t l = static_cast<size_t>(begin); l < static_cast<size_t>(end);) {
    const size_t o = l / inner;
    const size_t j = l % inner;
    const size_t width = HWY_MIN(HWY_MIN(block, inner - j), static_cast<size_t>(end) - l);
    StridedBlock<kLog>(b, o * lane_length * inner + j, lane_length, inner, width);
    l += width;
  }
}

}  // namespace

void RunSoftmaxLanes(const SoftmaxCall& call, int64_t begin, int64_t end) {
  WithStorage(call.dtype, [&](auto* storage) {
    using Storage = std::remove_pointer_t<decltype(storage)>;
    if (call.log) {
      RunTyped<true, Storage>(call, begin, end);
    } else {
      RunTyped<false, Storage>(call, begin, end);
    }
  });
}

int64_t SoftmaxTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace kernels
}  // namespace actserve
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace actserve {
namespace kernels {

HWY_EXPORT(RunSoftmaxLanes);
HWY_EXPORT(SoftmaxTarget);

void RunSoftmaxFamily(const SoftmaxCall& call, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RunSoftmaxLanes)(call, begin, end);
}

int64_t SoftmaxFamilyTarget() { return HWY_DYNAMIC_DISPATCH(SoftmaxTarget)(); }

int64_t SoftmaxFamilyTargets() { return HWY_TARGETS; }

}  // namespace kernels
}  // namespace actserve
#endif  // HWY_ONCE
