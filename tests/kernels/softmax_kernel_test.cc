// The softmax / log_softmax kernel (kernels::RunSoftmax) on every Highway target this CPU
// supports, for every dtype, in four modes (forward; forward + backward with dy;
// backward only; backward with dy = 1), contiguous (inner = 1) and strided (inner > 1)
// layouts, lane lengths 1, 2, 3, 17, 1000, 4099 and odd inner counts so that every tail
// runs. Reductions cycle through patterns: random values, one +Inf, one -Inf, all -Inf,
// one NaN, huge values (+-1e30, or +-6e4 for float16) and a large offset where exp
// without the max subtraction would overflow, all equal, and one entry far above the
// rest (log_softmax's -log1p(rest) at the maximum).
//
// Oracles (tests/oracle, independent of src/): the long-double ref::Softmax for the
// values; math::SoftmaxForward / SoftmaxBackward for the special values, which must match
// exactly (NaN where it is NaN, the same infinities and zeros).
//
// Bounds, in ULP of the output dtype against the exact reference: y <= 2.5 ULP for
// float32 and float64, <= 1 ULP for float16 / bfloat16 (computed in float, rounded once).
// dx <= 4 ULP (float32, float64), 1 ULP (16-bit), or, where dx is small against the terms
// that cancel in it, |error| <= 2 eps * scale, eps the lane type's epsilon and scale
// softmax: y * (|dy| + sum(|dy * y|)) (sum(dy * y) itself may cancel: its terms carry
// y's rounding); log_softmax: |dy| + exp(y) * |sum(dy)|.
// y gets the reference's own error as slack: (lane + 2) * 2^-64, absolute for
// log_softmax, relative for softmax (its long-double sum of exponentials). ACTSERVE_PRINT_ERRORS=1 prints the measured
// maxima.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "tests/oracle/activation_math.h"
#include "src/activation_spec.h"
#include "src/dtype.h"
#include "src/kernels/accuracy_bounds.h"
#include "src/kernels/activation_kernels.h"
#include "tests/oracle/reference.h"

namespace actserve {
namespace {

using LD = long double;

// The bounds of src/kernels/accuracy_bounds.h (float32 / float64; float16 / bfloat16
// have 1 ULP there, for y and dx).
constexpr kernels::AccuracyBound kBound =
    kernels::AccuracyBoundFor(ActivationSpec{ActivationKind::kSoftmax, {}}, DType::kFloat32);
constexpr double kForwardUlp = kBound.forward_ulp;
constexpr double kBackwardUlp = kBound.backward_ulp;
constexpr double kHalfUlp =
    kernels::AccuracyBoundFor(ActivationSpec{ActivationKind::kSoftmax, {}}, DType::kFloat16)
        .forward_ulp;
constexpr double kBackwardAbsEps = kBound.abs_eps;  // in eps * scale

const DType kDTypes[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};

bool PrintErrors() {
  const char* env = std::getenv("ACTSERVE_PRINT_ERRORS");
  return env != nullptr && env[0] == '1';
}

LD LaneEpsilon(DType dtype) {
  return dtype == DType::kFloat64 ? std::numeric_limits<double>::epsilon()
                                  : std::numeric_limits<float>::epsilon();
}

struct Shape {
  int64_t outer, lane, inner;
};

const Shape kShapes[] = {
    // contiguous
    {5, 1, 1}, {4, 2, 1}, {9, 3, 1}, {11, 17, 1}, {9, 1000, 1}, {9, 4099, 1},
    // strided: inner below, at and above a vector, and past a column block with a tail
    {2, 1, 3}, {3, 2, 5}, {2, 3, 17}, {2, 17, 131}, {2, 1000, 37}, {1, 4099, 9}, {2, 5, 300},
};

// Input values by reduction index `r`: see the file comment.
struct Inputs {
  std::vector<LD> x, dy;  // representable in the dtype
};

Inputs MakeInputs(DType dtype, const Shape& s, uint64_t seed) {
  const LD inf = std::numeric_limits<LD>::infinity();
  const LD nan = std::numeric_limits<LD>::quiet_NaN();
  const LD huge = dtype == DType::kFloat16 ? 6e4L : 1e30L;
  const int64_t n = s.outer * s.lane * s.inner;
  Inputs in;
  in.x.resize(n);
  in.dy.resize(n);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-20, 20), wide(-120, 120), g(-4, 4);
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t j = 0; j < s.inner; ++j) {
      const int64_t r = o * s.inner + j;
      const int64_t special = s.lane > 1 ? static_cast<int64_t>(rng() % s.lane) : 0;
      for (int64_t k = 0; k < s.lane; ++k) {
        const int64_t at = (o * s.lane + k) * s.inner + j;
        LD v = uniform(rng);
        switch (r % 10) {
          case 1:
            if (k == special) v = inf;
            break;
          case 2:
            if (k == special) v = -inf;
            break;
          case 3:
            v = -inf;
            break;
          case 4:
            if (k == special) v = nan;
            break;
          case 5:
            v = k % 3 == 0 ? huge : -huge;
            break;
          case 6:
            v = 3.5;
            break;
          case 7:
            v = k == special ? 10 : -10;
            break;
          case 8:
            v = wide(rng);  // subnormal and underflowing softmax values
            break;
          case 9:
            v = (dtype == DType::kFloat16 ? 1000 : 1e4) + v;  // exp(x) alone overflows float
            break;
          default:
            break;
        }
        in.x[at] = ref::RoundTo(dtype, v);
        in.dy[at] = ref::RoundTo(dtype, g(rng));
      }
    }
  }
  return in;
}

struct MaxErrors {
  double y = 0, dx = 0, dx_abs = 0;
};

class Checker {
 public:
  Checker(std::string what, DType dtype) : what_(std::move(what)), dtype_(dtype) {}

  // `oracle`: math::Softmax* in double, whose special values must match exactly.
  // `ref_slack`: the reference's own absolute error.
  void Check(const char* name, int64_t at, LD ref, LD oracle, LD got, double ulp_bound,
             LD scale, LD ref_slack, double* max_ulp, double* max_abs) {
    const ref::Format format = ref::FormatOf(dtype_);
    bool ok = true;
    double err = 0;
    if (std::isnan(oracle) || std::isnan(ref)) {
      ok = std::isnan(got) && std::isnan(oracle) && std::isnan(ref);
    } else if (std::isnan(got)) {
      ok = false;
    } else {
      const LD want = ref::RoundTo(dtype_, ref);
      const LD oracle_rounded = ref::RoundTo(dtype_, oracle);
      if (std::isinf(want) || std::isinf(got) || std::isinf(oracle_rounded)) {
        ok = got == want && got == oracle_rounded;
      } else if (oracle == 0 && ref == 0 && scale == 0) {
        ok = got == 0;  // exact zeros: y of a -Inf entry and its softmax gradient
      } else {
        err = static_cast<double>(fabsl(got - ref) / ref::Ulp(format, ref));
        const double abs_err = scale > 0 ? static_cast<double>(fabsl(got - ref) /
                                                               (LaneEpsilon(dtype_) * scale))
                                         : 0;
        // Where dx is small against the terms that cancel in it (|ref| < scale / 8, the
        // convention of kernel_accuracy_test.cc) the absolute bound applies instead.
        const bool cancelling = scale > 0 && fabsl(ref) < scale / 8;
        if (fabsl(got - ref) <= ref_slack) {
          // within the reference's own error: nothing to measure
        } else if (cancelling) {
          if (err > ulp_bound) {
            *max_abs = std::max(*max_abs, abs_err);
            ok = abs_err <= kBackwardAbsEps;
          }
        } else {
          *max_ulp = std::max(*max_ulp, err);
          ok = err <= ulp_bound;
        }
      }
    }
    if (!ok && ++failures_ <= 8) {
      ADD_FAILURE() << what_ << " " << name << " at element " << at << ": want "
                    << absl::StrFormat("%.21Lg", ref) << " (oracle "
                    << absl::StrFormat("%.17Lg", oracle) << "), got "
                    << absl::StrFormat("%.17Lg", got) << absl::StrFormat(" (%.2f ULP)", err);
    }
  }

 private:
  std::string what_;
  DType dtype_;
  int failures_ = 0;
};

// The scalar oracle (math::Softmax*) on every reduction of the tensor, dy = `g` (empty: 1).
void Oracle(bool log, const Shape& s, const std::vector<LD>& x, const std::vector<LD>& g,
            std::vector<LD>* y, std::vector<LD>* dx) {
  y->assign(x.size(), 0);
  dx->assign(x.size(), 0);
  std::vector<double> lx(s.lane), ly(s.lane), lg(s.lane), ldx(s.lane);
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t j = 0; j < s.inner; ++j) {
      auto at = [&](int64_t k) { return (o * s.lane + k) * s.inner + j; };
      for (int64_t k = 0; k < s.lane; ++k) {
        lx[k] = static_cast<double>(x[at(k)]);
        lg[k] = g.empty() ? 1.0 : static_cast<double>(g[at(k)]);
      }
      math::SoftmaxForward(log, lx.data(), s.lane, ly.data());
      math::SoftmaxBackward(log, ly.data(), lg.data(), s.lane, ldx.data());
      for (int64_t k = 0; k < s.lane; ++k) {
        (*y)[at(k)] = ly[k];
        (*dx)[at(k)] = ldx[k];
      }
    }
  }
}

// The size of the terms that cancel in dx, per element (see the file comment).
std::vector<LD> BackwardScale(bool log, const Shape& s, const std::vector<LD>& y,
                              const std::vector<LD>& g) {
  std::vector<LD> scale(y.size(), 0);
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t j = 0; j < s.inner; ++j) {
      auto at = [&](int64_t k) { return (o * s.lane + k) * s.inner + j; };
      LD dot = 0;  // log_softmax: |sum(dy)|; softmax: sum(|dy * y|)
      for (int64_t k = 0; k < s.lane; ++k) {
        const LD gk = g.empty() ? 1 : g[at(k)];
        dot += log ? gk : fabsl(gk * y[at(k)]);
      }
      for (int64_t k = 0; k < s.lane; ++k) {
        const LD gk = g.empty() ? 1 : g[at(k)];
        scale[at(k)] = log ? fabsl(gk) + expl(y[at(k)]) * fabsl(dot)
                           : fabsl(y[at(k)]) * (fabsl(gk) + dot);
      }
    }
  }
  return scale;
}

struct Expected {
  std::vector<LD> y, dx, dx1;                // ref::Softmax
  std::vector<LD> oracle_y, oracle_dx, oracle_dx1;
  std::vector<LD> scale, scale1;
};

class SoftmaxKernelTest : public ::testing::TestWithParam<bool> {};

TEST_P(SoftmaxKernelTest, EveryTargetDTypeModeAndLayoutAgainstTheReference) {
  const bool log = GetParam();
  ActivationSpec spec = *ParseActivationSpec(log ? "log_softmax" : "softmax");
  hwy::SetSupportedTargetsForTest(0);
  const int64_t supported = hwy::SupportedTargets();
  const std::vector<int64_t> targets = kernels::CompiledTargets();
  ASSERT_FALSE(targets.empty());
  uint64_t seed = 1;
  for (DType dtype : kDTypes) {
    const bool half = dtype == DType::kFloat16 || dtype == DType::kBFloat16;
    const double y_bound = half ? kHalfUlp : kForwardUlp;
    const double dx_bound = half ? kHalfUlp : kBackwardUlp;
    for (const Shape& s : kShapes) {
      // ref::Softmax sums exp(x - max) in long double, all terms <= 1: the sum carries up to
      // about lane * 2^-64 of relative error, which is an absolute error in log_softmax
      // (visible near the maximum, where the kernel keeps log1p(rest)) and a relative one in
      // softmax (visible in float64 for long lanes).
      const LD ref_error = (s.lane + 2) * std::ldexp(1.0L, -64);
      const Inputs in = MakeInputs(dtype, s, seed++);
      const std::vector<int64_t> shape = {s.outer, s.lane, s.inner};
      Expected e;
      ref::SoftmaxResult r = ref::Softmax(spec, shape, 1, in.x, in.dy);
      e.y = r.y;
      e.dx = r.dx;
      e.dx1 = ref::Softmax(spec, shape, 1, in.x, {}).dx;
      Oracle(log, s, in.x, in.dy, &e.oracle_y, &e.oracle_dx);
      std::vector<LD> unused;
      Oracle(log, s, in.x, {}, &unused, &e.oracle_dx1);
      e.scale = BackwardScale(log, s, e.y, in.dy);
      e.scale1 = BackwardScale(log, s, e.y, {});
      const std::vector<char> x = ref::Pack(dtype, in.x);
      const std::vector<char> dy = ref::Pack(dtype, in.dy);
      const size_t bytes = x.size();
      const int64_t reductions = s.outer * s.inner;
      for (int64_t target : targets) {
        if ((supported & target) == 0) continue;
        hwy::SetSupportedTargetsForTest(target);
        const std::string what = absl::StrFormat(
            "%s %s [%s] shape [%d, %d, %d]", log ? "log_softmax" : "softmax", DTypeName(dtype),
            hwy::TargetName(target), s.outer, s.lane, s.inner);
        std::vector<char> y_forward(bytes), y_fused(bytes), dx_fused(bytes), dx_backward(bytes),
            dx_no_dy(bytes);
        kernels::SoftmaxCall call;
        call.log = log;
        call.dtype = dtype;
        call.x = x.data();
        call.outer = s.outer;
        call.lane = s.lane;
        call.inner = s.inner;
        call.y = y_forward.data();
        kernels::RunSoftmax(call, 0, reductions);
        call.y = y_fused.data();
        call.dy = dy.data();
        call.dx = dx_fused.data();
        kernels::RunSoftmax(call, 0, reductions);
        call.y = nullptr;
        call.dx = dx_backward.data();
        // Split in three uneven ranges: results must not depend on the split.
        const int64_t a = reductions / 3, b = reductions - reductions / 5;
        kernels::RunSoftmax(call, 0, a);
        kernels::RunSoftmax(call, a, b);
        kernels::RunSoftmax(call, b, reductions);
        call.dy = nullptr;
        call.dx = dx_no_dy.data();
        kernels::RunSoftmax(call, 0, reductions);
        EXPECT_EQ(0, std::memcmp(y_forward.data(), y_fused.data(), bytes))
            << what << ": the fused pass's y differs from forward's";
        EXPECT_EQ(0, std::memcmp(dx_fused.data(), dx_backward.data(), bytes))
            << what << ": backward-only dx (split in three) differs from the fused";
        const std::vector<LD> got_y = ref::Unpack(dtype, y_forward);
        const std::vector<LD> got_dx = ref::Unpack(dtype, dx_fused);
        const std::vector<LD> got_dx1 = ref::Unpack(dtype, dx_no_dy);
        Checker checker(what, dtype);
        MaxErrors m;
        for (size_t i = 0; i < got_y.size(); ++i) {
          const int64_t at = static_cast<int64_t>(i);
          const LD y_slack = log ? ref_error : ref_error * fabsl(e.y[i]);
          checker.Check("y", at, e.y[i], e.oracle_y[i], got_y[i], y_bound, 0, y_slack, &m.y,
                        &m.y);
          checker.Check("dx", at, e.dx[i], e.oracle_dx[i], got_dx[i], dx_bound, e.scale[i], 0,
                        &m.dx, &m.dx_abs);
          checker.Check("dx(dy=1)", at, e.dx1[i], e.oracle_dx1[i], got_dx1[i], dx_bound,
                        e.scale1[i], 0, &m.dx, &m.dx_abs);
        }
        if (PrintErrors()) {
          std::printf("ERR %-60s y %5.2f ulp, dx %5.2f ulp (cancelling: %5.2f eps)\n",
                      what.c_str(), m.y, m.dx, m.dx_abs);
        }
      }
      hwy::SetSupportedTargetsForTest(0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SoftmaxAndLogSoftmax, SoftmaxKernelTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "log_softmax" : "softmax");
                         });

// y over x and dx over dy (the engine's in-place buffers) give the out-of-place bits.
TEST(SoftmaxKernelAliasing, InPlaceMatchesOutOfPlace) {
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kFloat64}) {
    for (const Shape& s : {Shape{3, 1000, 1}, Shape{2, 17, 131}}) {
      for (bool log : {false, true}) {
        const Inputs in = MakeInputs(dtype, s, 77);
        const std::vector<char> x = ref::Pack(dtype, in.x), dy = ref::Pack(dtype, in.dy);
        std::vector<char> y(x.size()), dx(x.size());
        kernels::SoftmaxCall call;
        call.log = log;
        call.dtype = dtype;
        call.outer = s.outer;
        call.lane = s.lane;
        call.inner = s.inner;
        call.x = x.data();
        call.dy = dy.data();
        call.y = y.data();
        call.dx = dx.data();
        kernels::RunSoftmax(call, 0, s.outer * s.inner);
        std::vector<char> x_in_place = x, dy_in_place = dy;
        call.x = call.y = x_in_place.data();
        call.dy = call.dx = dy_in_place.data();
        kernels::RunSoftmax(call, 0, s.outer * s.inner);
        EXPECT_EQ(x_in_place, y) << DTypeName(dtype) << " log " << log << " inner " << s.inner;
        EXPECT_EQ(dy_in_place, dx) << DTypeName(dtype) << " log " << log << " inner " << s.inner;
      }
    }
  }
}

// By hand: softmax([0, ln 3]) = [1/4, 3/4]; log_softmax([10, -10]) at 10 keeps
// -log1p(exp(-20)) = -2.0611536e-9 rather than rounding it to 0.
TEST(SoftmaxKernelExamples, ValuesAReaderCanCheck) {
  const float x[] = {0.0f, std::log(3.0f)};
  float y[2];
  kernels::SoftmaxCall call;
  call.x = x;
  call.y = y;
  call.lane = 2;
  kernels::RunSoftmax(call, 0, 1);
  EXPECT_NEAR(y[0], 0.25f, 1e-7f);
  EXPECT_NEAR(y[1], 0.75f, 1e-7f);
  const float far[] = {10.0f, -10.0f};
  call.x = far;
  call.log = true;
  kernels::RunSoftmax(call, 0, 1);
  EXPECT_FLOAT_EQ(y[0], -2.0611536e-9f);
  EXPECT_FLOAT_EQ(y[1], -20.0f);
}

}  // namespace
}  // namespace actserve
