// The piecewise-linear and rational activations: relu, relu6, leaky_relu, prelu (with
// its fused weight gradient), hardtanh, hardsigmoid, hardswish, softsign, softshrink,
// hardshrink, threshold. They are memory-bound: a compare, a select and at most a
// division per vector.
//
// Lane types: float (float32, float16, bfloat16 storage) and double (float64).
// Accuracy (bounds in src/kernels/accuracy_bounds.h): relu, relu6, leaky_relu, prelu,
// hardtanh, hardshrink, threshold are exact (one rounding of s * x); softshrink is exact
// up to the rounding of x - lambd; hardsigmoid, hardswish and softsign take a few
// roundings each. Comparison constants that the lane type cannot hold are
// rounded in the direction that keeps every comparison exact, so kinks fall exactly
// where the float64 parameter puts them.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/piecewise_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cmath>
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

// The largest T <= value and the smallest T >= value: x <= value <=> x <= RoundDown(value)
// and x < value <=> x < RoundUp(value) for every T x.
template <typename T>
T RoundDown(double value) {
  const T t = static_cast<T>(value);
  return static_cast<double>(t) <= value ? t
                                         : std::nextafter(t, -std::numeric_limits<T>::infinity());
}
template <typename T>
T RoundUp(double value) {
  const T t = static_cast<T>(value);
  return static_cast<double>(t) >= value ? t
                                         : std::nextafter(t, std::numeric_limits<T>::infinity());
}

template <typename T>
struct ReluOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return hn::IfThenElseZero(hn::Gt(x, hn::Zero(d)), x);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const auto positive = hn::Gt(x, hn::Zero(d));
    y = hn::IfThenElseZero(positive, x);
    dx = hn::IfThenElseZero(positive, g);
  }
};

template <typename T>
struct Relu6Op {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return hn::IfThenElseZero(hn::Gt(x, hn::Zero(d)), hn::Min(x, hn::Set(d, T(6))));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> six = hn::Set(d, T(6));
    const auto positive = hn::Gt(x, hn::Zero(d));
    y = hn::IfThenElseZero(positive, hn::Min(x, six));
    dx = hn::IfThenElseZero(hn::And(positive, hn::Lt(x, six)), g);
  }
};

// leaky_relu and prelu: x > 0 ? x : s * x; a zero slope gives 0 even for x = -Inf.
template <typename T>
struct LeakyReluOp {
  explicit LeakyReluOp(double slope_value)
      : slope(static_cast<T>(slope_value)), zero_slope(slope_value == 0) {}
  T slope;
  bool zero_slope;

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> negative = zero_slope ? hn::Zero(d) : hn::Mul(hn::Set(d, slope), x);
    return hn::IfThenElse(hn::Gt(x, hn::Zero(d)), x, negative);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> s = hn::Set(d, slope);
    const auto positive = hn::Gt(x, hn::Zero(d));
    y = hn::IfThenElse(positive, x, zero_slope ? hn::Zero(d) : hn::Mul(s, x));
    dx = hn::IfThenElse(positive, g, hn::Mul(s, g));  // 0 * Inf is NaN, as in the oracle
  }
};

template <typename T>
struct HardtanhOp {
  HardtanhOp(double min_val, double max_val)
      : low(static_cast<T>(min_val)),
        high(static_cast<T>(max_val)),
        low_cut(RoundDown<T>(min_val)),
        high_cut(RoundUp<T>(max_val)) {}
  T low, high, low_cut, high_cut;

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return hn::IfThenElse(hn::Le(x, hn::Set(d, low_cut)), hn::Set(d, low),
                          hn::IfThenElse(hn::Ge(x, hn::Set(d, high_cut)), hn::Set(d, high), x));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const auto at_low = hn::Le(x, hn::Set(d, low_cut));
    const auto at_high = hn::Ge(x, hn::Set(d, high_cut));
    y = hn::IfThenElse(at_low, hn::Set(d, low), hn::IfThenElse(at_high, hn::Set(d, high), x));
    dx = hn::IfThenZeroElse(hn::Or(at_low, at_high), g);
  }
};

// clamp(x + 3, 0, 6) / 6: x + 3 is exact near -3 (Sterbenz), so y keeps its relative
// accuracy where it approaches 0.
template <typename T>
struct HardsigmoidOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> six = hn::Set(d, T(6));
    return hn::Div(hn::Min(hn::Max(hn::Add(x, hn::Set(d, T(3))), hn::Zero(d)), six), six);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> three = hn::Set(d, T(3));
    const V<D> six = hn::Set(d, T(6));
    y = hn::Div(hn::Min(hn::Max(hn::Add(x, three), hn::Zero(d)), six), six);
    const auto inside = hn::And(hn::Gt(x, hn::Neg(three)), hn::Lt(x, three));
    dx = hn::IfThenElseZero(inside, hn::Div(g, six));
  }
};

// y = x <= -3 ? 0 : x * min(x + 3, 6) / 6; the gradient's x / 3 + 1/2 is evaluated as
// (x + 3/2) / 3, exact near its zero at x = -3/2.
template <typename T>
struct HardswishOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> three = hn::Set(d, T(3));
    const V<D> six = hn::Set(d, T(6));
    // x * (clamp / 6), not (x * clamp) / 6, which overflows for x > FLT_MAX / 6.
    const V<D> value = hn::Mul(x, hn::Div(hn::Min(hn::Add(x, three), six), six));
    return hn::IfThenZeroElse(hn::Le(x, hn::Neg(three)), value);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> three = hn::Set(d, T(3));
    y = Forward(d, x);
    const V<D> slope = hn::Div(hn::Add(x, hn::Set(d, T(1.5))), three);
    const V<D> inner = hn::IfThenElse(hn::Le(x, three), hn::Mul(g, slope), g);
    dx = hn::IfThenZeroElse(hn::Lt(x, hn::Neg(three)), inner);
  }
};

template <typename T>
struct SoftsignOp {
  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> one = hn::Set(d, T(1));
    const V<D> value = hn::Div(x, hn::Add(one, hn::Abs(x)));
    return hn::IfThenElse(hn::IsInf(x), hn::CopySign(one, x), value);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> one = hn::Set(d, T(1));
    const V<D> denominator = hn::Add(one, hn::Abs(x));
    y = hn::IfThenElse(hn::IsInf(x), hn::CopySign(one, x), hn::Div(x, denominator));
    // Two divisions rather than one by denominator^2, which overflows for |x| > 1.8e19.
    dx = hn::Div(hn::Div(g, denominator), denominator);
  }
};

// x - lambd with lambd = hi + lo split, so that x - lambd keeps its relative accuracy near
// the kink even when the lane type cannot hold lambd.
template <typename T>
struct SoftshrinkOp {
  explicit SoftshrinkOp(double lambd)
      : cut(RoundDown<T>(lambd)),
        lambd_hi(static_cast<T>(lambd)),
        lambd_lo(static_cast<T>(lambd - static_cast<double>(static_cast<T>(lambd)))) {}
  T cut, lambd_hi, lambd_lo;

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> hi = hn::Set(d, lambd_hi);
    const V<D> lo = hn::Set(d, lambd_lo);
    const V<D> above = hn::Sub(hn::Sub(x, hi), lo);
    const V<D> below = hn::Add(hn::Add(x, hi), lo);
    return hn::IfThenElse(hn::Gt(x, hn::Set(d, cut)), above,
                          hn::IfThenElseZero(hn::Lt(x, hn::Set(d, -cut)), below));
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    y = Forward(d, x);
    const V<D> c = hn::Set(d, cut);
    dx = hn::IfThenZeroElse(hn::And(hn::Ge(x, hn::Neg(c)), hn::Le(x, c)), g);
  }
};

template <typename T>
struct HardshrinkOp {
  explicit HardshrinkOp(double lambd) : cut(RoundDown<T>(lambd)) {}
  T cut;

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    const V<D> c = hn::Set(d, cut);
    return hn::IfThenZeroElse(hn::And(hn::Ge(x, hn::Neg(c)), hn::Le(x, c)), x);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const V<D> c = hn::Set(d, cut);
    const auto inside = hn::And(hn::Ge(x, hn::Neg(c)), hn::Le(x, c));
    y = hn::IfThenZeroElse(inside, x);
    dx = hn::IfThenZeroElse(inside, g);
  }
};

template <typename T>
struct ThresholdOp {
  ThresholdOp(double threshold, double value)
      : cut(RoundDown<T>(threshold)), replacement(static_cast<T>(value)) {}
  T cut, replacement;

  template <class D>
  HWY_INLINE V<D> Forward(D d, V<D> x) const {
    return hn::IfThenElse(hn::Le(x, hn::Set(d, cut)), hn::Set(d, replacement), x);
  }
  template <class D>
  HWY_INLINE void Both(D d, V<D> x, V<D> g, V<D>& y, V<D>& dx) const {
    const auto below = hn::Le(x, hn::Set(d, cut));
    y = hn::IfThenElse(below, hn::Set(d, replacement), x);
    dx = hn::IfThenZeroElse(below, g);
  }
};

// ---------------------------------------------------------------------------------------
// PReLU with its weight gradient, fused: one pass reads x and dy, writes y and dx, and
// sums x * dy over x <= 0 in double lanes.

// Sum of x * g over x <= 0 (NaN x: NaN) for the float lanes of `xv`, `g`, in double.
template <class D>
using SumTag = std::conditional_t<sizeof(hn::TFromD<D>) == 8, D, DoubleHalfTag<D>>;

template <class D>
HWY_INLINE V<SumTag<D>> NegativeProducts(D d, V<D> xv, V<D> g) {
  using T = hn::TFromD<D>;
  const V<D> masked_x = hn::IfThenElse(hn::IsNaN(xv), xv,
                                       hn::IfThenElseZero(hn::Le(xv, hn::Zero(d)), xv));
  if constexpr (sizeof(T) == 8) {
    return hn::Mul(masked_x, g);
  } else {
    V<DoubleHalfTag<D>> x_lower, x_upper, g_lower, g_upper;
    PromoteHalves(d, masked_x, x_lower, x_upper);
    PromoteHalves(d, g, g_lower, g_upper);
    return hn::MulAdd(x_upper, g_upper, hn::Mul(x_lower, g_lower));
  }
}

template <typename Storage>
HWY_NOINLINE void RunPreluWithWeightGradient(const ElementwiseCall& call) {
  using C = Codec<Storage>;
  using T = typename C::T;
  const typename C::D d;
  const SumTag<decltype(d)> dd;
  const LeakyReluOp<T> op(call.params[0]);
  const auto* x = static_cast<const Storage*>(call.x);
  const auto* dy = static_cast<const Storage*>(call.dy);
  auto* y = static_cast<Storage*>(call.y);
  auto* dx = static_cast<Storage*>(call.dx);
  const size_t lanes = hn::Lanes(d);
  auto sum = hn::Zero(dd);

  auto step = [&](const Storage* xp, const Storage* dyp, Storage* yp, Storage* dxp) HWY_ATTR {
    const V<decltype(d)> xv = C::Load(d, xp);
    const V<decltype(d)> g = dyp != nullptr ? C::Load(d, dyp) : hn::Set(d, T(1));
    V<decltype(d)> yv, dxv;
    op.Both(d, xv, g, yv, dxv);
    const auto is_nan = hn::IsNaN(xv);
    if (yp != nullptr) C::Store(d, hn::IfThenElse(is_nan, xv, yv), yp);
    C::Store(d, hn::IfThenElse(is_nan, xv, dxv), dxp);
    sum = hn::Add(sum, NegativeProducts(d, xv, g));
  };

  size_t i = 0;
  if (call.n >= lanes) {
    for (; i <= call.n - lanes; i += lanes) {
      step(x + i, dy != nullptr ? dy + i : nullptr, y != nullptr ? y + i : nullptr, dx + i);
    }
  }
  const size_t rest = call.n - i;
  if (rest != 0) {
    HWY_ALIGN Storage x_tail[kMaxTailLanes];
    HWY_ALIGN Storage dy_tail[kMaxTailLanes];
    HWY_ALIGN Storage y_tail[kMaxTailLanes];
    HWY_ALIGN Storage dx_tail[kMaxTailLanes];
    std::memset(x_tail, 0, sizeof(x_tail));
    std::memset(dy_tail, 0, sizeof(dy_tail));
    std::memcpy(x_tail, x + i, rest * sizeof(Storage));
    if (dy != nullptr) std::memcpy(dy_tail, dy + i, rest * sizeof(Storage));
    step(x_tail, dy != nullptr ? dy_tail : nullptr, y_tail, dx_tail);
    if (y != nullptr) std::memcpy(y + i, y_tail, rest * sizeof(Storage));
    std::memcpy(dx + i, dx_tail, rest * sizeof(Storage));
  }
  *call.weight_gradient = hn::GetLane(hn::SumOfLanes(dd, sum));
}

template <typename Storage>
void RunPiecewiseTyped(const ElementwiseCall& call) {
  using T = ComputeType<Storage>;
  const double p0 = call.params[0];
  const double p1 = call.params[1];
  switch (call.kind) {
    case ActivationKind::kRelu:
      return RunOp<ReluOp<T>, Storage>(ReluOp<T>(), call);
    case ActivationKind::kRelu6:
      return RunOp<Relu6Op<T>, Storage>(Relu6Op<T>(), call);
    case ActivationKind::kPrelu:
      if (call.weight_gradient != nullptr && call.dx != nullptr) {
        return RunPreluWithWeightGradient<Storage>(call);
      }
      return RunOp<LeakyReluOp<T>, Storage>(LeakyReluOp<T>(p0), call);
    case ActivationKind::kLeakyRelu:
      return RunOp<LeakyReluOp<T>, Storage>(LeakyReluOp<T>(p0), call);
    case ActivationKind::kHardtanh:
      return RunOp<HardtanhOp<T>, Storage>(HardtanhOp<T>(p0, p1), call);
    case ActivationKind::kHardsigmoid:
      return RunOp<HardsigmoidOp<T>, Storage>(HardsigmoidOp<T>(), call);
    case ActivationKind::kHardswish:
      return RunOp<HardswishOp<T>, Storage>(HardswishOp<T>(), call);
    case ActivationKind::kSoftsign:
      return RunOp<SoftsignOp<T>, Storage>(SoftsignOp<T>(), call);
    case ActivationKind::kSoftshrink:
      return RunOp<SoftshrinkOp<T>, Storage>(SoftshrinkOp<T>(p0), call);
    case ActivationKind::kHardshrink:
      return RunOp<HardshrinkOp<T>, Storage>(HardshrinkOp<T>(p0), call);
    case ActivationKind::kThreshold:
      return RunOp<ThresholdOp<T>, Storage>(ThresholdOp<T>(p0, p1), call);
    default:
      break;  // not in this family: RunElementwise routes only the kinds above here
  }
}

}  // namespace

void RunPiecewise(const ElementwiseCall& call) {
  WithStorage(call.dtype, [&](auto* storage) {
    RunPiecewiseTyped<std::remove_pointer_t<decltype(storage)>>(call);
  });
}

int64_t PiecewiseTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace kernels
}  // namespace actserve
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace actserve {
namespace kernels {

HWY_EXPORT(RunPiecewise);
HWY_EXPORT(PiecewiseTarget);

void RunPiecewiseFamily(const ElementwiseCall& call) {
  HWY_DYNAMIC_DISPATCH(RunPiecewise)(call);
}

int64_t PiecewiseFamilyTarget() { return HWY_DYNAMIC_DISPATCH(PiecewiseTarget)(); }

int64_t PiecewiseFamilyTargets() { return HWY_TARGETS; }

}  // namespace kernels
}  // namespace actserve
#endif  // HWY_ONCE
