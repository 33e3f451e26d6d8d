// Every SIMD kernel (src/kernels) on every Highway target this CPU supports, against the
// long-double oracle math::Forward<long double> / math::Backward<long double>
// (tests/oracle/activation_math.cc, checked against PyTorch in float64), for every dtype, in the
// three modes (forward, backward, fused) with and without dy, over inputs that reach
// every branch: a dense sweep of [-20, 20], random values over every binade from the
// smallest subnormal to the largest finite, +-0, +-Inf, NaN and each kink with its
// neighbours. Lengths are odd so the tails run.
//
// Error metric: |got - ref| / ulp(ref) in the output dtype, ref exact (long double). Per
// activation (src/kernels/accuracy_bounds.h, the one table of bounds): `forward` and
// `backward` ULP bounds, and where the result is
// small against the terms that cancel to make it (|ref| < scale / 8, scale as in
// ForwardScale / BackwardScale), an absolute bound |got - ref| <= abs_eps * eps * scale
// instead, eps the epsilon of the lane type (float for float32/float16/bfloat16, double
// for float64). float16 / bfloat16 are computed in float and rounded once: 1 ULP.
// +-Inf must give exactly the limits; NaN gives NaN; kinks of the piecewise activations
// are exact (their bound is 0.5 ULP, i.e. correctly rounded). The forward output of the fused pass equals the forward-only pass bit for bit.
//
// ACTSERVE_PRINT_ERRORS=1 prints the measured maxima (the table in README.md).
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
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

namespace actserve {
namespace {

using LD = long double;

bool PrintErrors() {
  const char* env = std::getenv("ACTSERVE_PRINT_ERRORS");
  return env != nullptr && env[0] == '1';
}

// ---- dtype helpers ----------------------------------------------------------------------

struct Format {
  int precision;  // significand bits, implicit bit included
  int min_exponent;
  LD epsilon;     // of the lane type the kernels compute in
};

Format FormatOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return {53, -1022, std::numeric_limits<double>::epsilon()};
    case DType::kFloat16:
      return {11, -14, std::numeric_limits<float>::epsilon()};
    case DType::kBFloat16:
      return {8, -126, std::numeric_limits<float>::epsilon()};
    default:
      return {24, -126, std::numeric_limits<float>::epsilon()};
  }
}

LD UlpOf(DType dtype, LD v) {
  const Format f = FormatOf(dtype);
  int exponent = v == 0 ? f.min_exponent : std::ilogb(v);
  if (exponent < f.min_exponent) exponent = f.min_exponent;
  return std::ldexp(1.0L, exponent - f.precision + 1);
}

LD RoundTo(DType dtype, LD v) {
  switch (dtype) {
    case DType::kFloat64:
      return static_cast<double>(v);
    case DType::kFloat16:
      // Long double -> double first: a double rounding only for values within 2^-53
      // relative of a half tie, which the sweep's reference values never are.
      return Float16ToDouble(RoundToFloat16(static_cast<double>(v)));
    case DType::kBFloat16:
      return BFloat16ToDouble(RoundToBFloat16(static_cast<double>(v)));
    default:
      return static_cast<float>(v);
  }
}

std::vector<char> Pack(DType dtype, const std::vector<LD>& values) {
  const size_t size = DTypeSize(dtype);
  std::vector<char> bytes(values.size() * size);
  for (size_t i = 0; i < values.size(); ++i) {
    char* p = bytes.data() + i * size;
    if (dtype == DType::kFloat64) {
      const double v = static_cast<double>(values[i]);
      std::memcpy(p, &v, 8);
    } else if (dtype == DType::kFloat32) {
      const float v = static_cast<float>(values[i]);
      std::memcpy(p, &v, 4);
    } else {
      const uint16_t bits = dtype == DType::kFloat16
                                ? RoundToFloat16(static_cast<double>(values[i]))
                                : RoundToBFloat16(static_cast<double>(values[i]));
      std::memcpy(p, &bits, 2);
    }
  }
  return bytes;
}

LD Unpack(DType dtype, const std::vector<char>& bytes, size_t i) {
  const char* p = bytes.data() + i * DTypeSize(dtype);
  if (dtype == DType::kFloat64) {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  if (dtype == DType::kFloat32) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return dtype == DType::kFloat16 ? Float16ToDouble(bits) : BFloat16ToDouble(bits);
}

// ---- bounds -----------------------------------------------------------------------------

// The size of the terms that cancel in f (or f'), or 0 where nothing cancels.
LD ForwardScale(ActivationKind kind, LD x) {
  switch (kind) {
    case ActivationKind::kTanhshrink:
      return fabsl(x);
    case ActivationKind::kHardsigmoid:
      return 1;
    default:
      return 0;
  }
}
LD BackwardScale(ActivationKind kind, LD g) {
  switch (kind) {
    case ActivationKind::kGelu:       // Phi(x) + x phi(x) = 0 at x = -0.75
    case ActivationKind::kSilu:       // zero at x = -1.28
    case ActivationKind::kMish:       // zero at x = -1.19
    case ActivationKind::kHardswish:  // zero at x = -1.5
    case ActivationKind::kSigmoid:
    case ActivationKind::kTanh:
      return fabsl(g);
    default:
      return 0;
  }
}

// ---- inputs -----------------------------------------------------------------------------

std::vector<LD> Kinks(const ActivationSpec& spec) {
  std::vector<LD> k = {0, 3, -3, 6, 1.5, -1.5, 20, -20, 1, -1, -0.75, -1.25};
  for (double p : spec.params) {
    k.push_back(p);
    k.push_back(-p);
  }
  return k;
}

// The float32 inputs where `make accuracy` (every float32 input, bench/results/accuracy.md)
// found each activation's largest forward and backward errors, so that the bounds
// are checked where they are tightest.
std::vector<LD> SweepMaxima(const ActivationSpec& spec) {
  switch (spec.kind) {
    case ActivationKind::kElu:
    case ActivationKind::kCelu:
      return {-0.347594798L, -5.88269186L};
    case ActivationKind::kSelu:
      return {-0.323527247L, -87.3642273L};
    case ActivationKind::kGelu:
      if (spec.params[0] == static_cast<double>(GeluApproximate::kTanh)) {
        return {-1.38313723L, -1.37579656L};
      }
      return {-0.0155655025L, -0.327502608L};
    case ActivationKind::kSilu:
      return {-3.21365905L, 1.260499L};
    case ActivationKind::kMish:
      return {-5.94873905L, -0.793810308L};
    case ActivationKind::kSoftplus:
      return {0.00198665261L, -1.95424449L};
    case ActivationKind::kSigmoid:
      return {-1.95424449L, 0.68996501L};
    case ActivationKind::kTanh:
      return {-4.50509071L, 1.31762886L};
    case ActivationKind::kHardsigmoid:
      return {1.00000119L};
    case ActivationKind::kHardswish:
      return {1.37149787L, 0.500000596L};
    case ActivationKind::kSoftsign:
      return {2047.37488L, 0.0030978322L};
    case ActivationKind::kTanhshrink:
      return {1.37591684L, 1.48556185L};
    default:
      return {};
  }
}

// Special inputs (+-Inf): results must be exactly the limits. Then the sweep, whose
// kinks are exact through the 0.5 ULP (correctly rounded) bound of the piecewise kinds.
void MakeInputs(DType dtype, const ActivationSpec& spec, std::vector<LD>* special,
                std::vector<LD>* sweep) {
  const LD inf = std::numeric_limits<LD>::infinity();
  const Format f = FormatOf(dtype);
  const LD min_sub = std::ldexp(1.0L, f.min_exponent - f.precision + 1);
  const LD min_normal = std::ldexp(1.0L, f.min_exponent);
  const LD max_finite = dtype == DType::kFloat64   ? std::numeric_limits<double>::max()
                        : dtype == DType::kFloat16 ? 65504.0L
                        : dtype == DType::kBFloat16 ? 3.3895313892515355e38L
                                                    : std::numeric_limits<float>::max();
  *special = {inf, -inf};
  sweep->clear();
  for (LD k : Kinks(spec)) sweep->push_back(RoundTo(dtype, k));
  for (LD m : SweepMaxima(spec)) sweep->push_back(RoundTo(dtype, m));
  sweep->push_back(0.0L);
  sweep->push_back(-0.0L);
  for (LD v : {min_sub, 3 * min_sub, min_normal, max_finite, 1.0L}) {
    sweep->push_back(v);
    sweep->push_back(-v);
  }
  // Neighbours of the kinks.
  for (LD k : Kinks(spec)) {
    const LD kr = RoundTo(dtype, k);
    for (int i = 1; i <= 3; ++i) {
      sweep->push_back(RoundTo(dtype, kr + i * UlpOf(dtype, kr)));
      sweep->push_back(RoundTo(dtype, kr - i * UlpOf(dtype, kr)));
    }
  }
  // Dense sweep of [-20, 20] and [-40, 40] by steps the dtype can hold.
  for (int i = -1280; i <= 1280; ++i) sweep->push_back(RoundTo(dtype, i / 64.0L));
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> uniform(-40, 40);
  std::uniform_real_distribution<double> exponent(f.min_exponent - f.precision,
                                                  dtype == DType::kFloat16 ? 15.9 : 127.9);
  for (int i = 0; i < 6000; ++i) sweep->push_back(RoundTo(dtype, uniform(rng)));
  for (int i = 0; i < 6000; ++i) {
    const LD magnitude = std::exp2(static_cast<LD>(exponent(rng)));
    sweep->push_back(RoundTo(dtype, (i % 2 ? -1 : 1) * magnitude));
  }
  sweep->push_back(std::numeric_limits<LD>::quiet_NaN());
  if (sweep->size() % 2 == 0) sweep->push_back(RoundTo(dtype, 0.3L));  // odd length
}

// ---- the test ---------------------------------------------------------------------------

struct Stats {
  double forward = 0, backward = 0, forward_abs = 0, backward_abs = 0;
};

struct Case {
  const char* spec_text;
};

const char* const kSpecs[] = {
    "relu",          "relu6",       "leaky_relu",      "leaky_relu(negative_slope=0.2)",
    "prelu(weight=0.25)", "prelu(weight=0)", "elu", "elu(alpha=0.5)",
    "celu",          "celu(alpha=2)", "celu(alpha=-0.5)", "selu",
    "gelu",          "gelu(approximate=tanh)", "silu", "mish",
    "softplus",      "softplus(beta=2, threshold=10)", "softplus(beta=0.5, threshold=3)",
    "hardtanh",      "hardtanh(min_val=-2, max_val=3)", "hardsigmoid", "hardswish",
    "sigmoid",       "tanh",        "logsigmoid",      "softsign",
    "tanhshrink",    "softshrink",  "softshrink(lambd=0)", "hardshrink",
    "threshold(threshold=0.5, value=-1)",
};

const DType kDTypes[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};

class KernelAccuracyTest : public ::testing::TestWithParam<const char*> {};

// Checks one value; returns false (and records a failure, at most 5 per case) when out
// of bounds.
void Check(const std::string& what, DType dtype, bool special, LD x, LD g, LD ref, LD got,
           double ulp_bound, double abs_eps, LD scale, double* max_ulp, double* max_abs,
           int* failures) {
  bool ok = true;
  double err = 0;
  if (std::isnan(ref) || std::isnan(got)) {
    ok = std::isnan(ref) && std::isnan(got);
  } else {
    const LD want = RoundTo(dtype, ref);
    if (std::isinf(want) || std::isinf(got)) ok = got == want;
    if (ok && !std::isinf(want)) {
      err = static_cast<double>(fabsl(got - ref) / UlpOf(dtype, ref));
      // +-Inf inputs get no absolute slack: their limits are exact.
      const bool tiny = !special && scale > 0 && fabsl(ref) < scale / 8;
      if (tiny) {
        const double abs_err =
            static_cast<double>(fabsl(got - ref) / (FormatOf(dtype).epsilon * scale));
        *max_abs = std::max(*max_abs, abs_err);
        ok = err <= ulp_bound || abs_err <= abs_eps;
      } else {
        *max_ulp = std::max(*max_ulp, err);
        ok = err <= ulp_bound;
      }
    }
  }
  if (!ok && ++*failures <= 5) {
    ADD_FAILURE() << what << " " << DTypeName(dtype) << " at x = "
                  << absl::StrFormat("%.21Lg", x) << ", dy = " << absl::StrFormat("%.9Lg", g)
                  << ": want " << absl::StrFormat("%.21Lg", ref) << ", got "
                  << absl::StrFormat("%.17Lg", got) << absl::StrFormat(" (%.2f ULP)", err);
  }
}

TEST_P(KernelAccuracyTest, EveryTargetEveryDTypeEveryMode) {
  absl::StatusOr<ActivationSpec> spec = ParseActivationSpec(GetParam());
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<int64_t> targets = kernels::CompiledTargets();
  ASSERT_FALSE(targets.empty());
  hwy::SetSupportedTargetsForTest(0);
  const int64_t supported = hwy::SupportedTargets();
  std::mt19937_64 rng(99);
  for (DType dtype : kDTypes) {
    std::vector<LD> special, sweep;
    MakeInputs(dtype, *spec, &special, &sweep);
    std::vector<LD> x = special;
    x.insert(x.end(), sweep.begin(), sweep.end());
    const size_t n = x.size();
    std::vector<LD> dy(n);
    std::uniform_real_distribution<double> g_dist(-4, 4);
    for (LD& g : dy) g = RoundTo(dtype, g_dist(rng));
    const std::vector<char> x_bytes = Pack(dtype, x);
    const std::vector<char> dy_bytes = Pack(dtype, dy);
    // The oracle, once per input.
    std::vector<LD> ref_y(n), ref_dx(n), ref_dx1(n);
    for (size_t i = 0; i < n; ++i) {
      ref_y[i] = math::Forward<LD>(*spec, x[i]);
      ref_dx[i] = math::Backward<LD>(*spec, x[i], dy[i]);
      ref_dx1[i] = math::Backward<LD>(*spec, x[i], 1.0L);
    }
    const kernels::AccuracyBound bound = kernels::AccuracyBoundFor(*spec, dtype);
    for (int64_t target : targets) {
      if ((supported & target) == 0) continue;
      hwy::SetSupportedTargetsForTest(target);
      const std::string what =
          absl::StrFormat("%s [%s]", GetParam(), hwy::TargetName(target));
      const size_t bytes = x_bytes.size();
      std::vector<char> y_forward(bytes), y_fused(bytes), dx_fused(bytes), dx_backward(bytes),
          dx_no_dy(bytes);
      kernels::ElementwiseCall call;
      call.kind = spec->kind;
      call.params[0] = spec->params[0];
      call.params[1] = spec->params[1];
      call.dtype = dtype;
      call.x = x_bytes.data();
      call.n = n;
      call.y = y_forward.data();
      kernels::RunElementwise(call);  // forward
      call.y = y_fused.data();
      call.dy = dy_bytes.data();
      call.dx = dx_fused.data();
      kernels::RunElementwise(call);  // fused, with dy
      call.y = nullptr;
      call.dx = dx_backward.data();
      kernels::RunElementwise(call);  // backward only
      call.dy = nullptr;
      call.dx = dx_no_dy.data();
      kernels::RunElementwise(call);  // backward, dy = 1
      EXPECT_EQ(0, std::memcmp(y_forward.data(), y_fused.data(), bytes))
          << what << " " << DTypeName(dtype) << ": the fused pass's y differs from forward's";
      EXPECT_EQ(0, std::memcmp(dx_fused.data(), dx_backward.data(), bytes))
          << what << " " << DTypeName(dtype) << ": backward-only dx differs from the fused";
      Stats stats;
      int failures = 0;
      for (size_t i = 0; i < n; ++i) {
        const bool is_special = i < special.size();
        Check(what + " y", dtype, is_special, x[i], 1, ref_y[i], Unpack(dtype, y_forward, i),
              bound.forward_ulp, bound.abs_eps, ForwardScale(spec->kind, x[i]), &stats.forward,
              &stats.forward_abs, &failures);
        Check(what + " dx", dtype, is_special, x[i], dy[i], ref_dx[i],
              Unpack(dtype, dx_fused, i), bound.backward_ulp, bound.abs_eps,
              BackwardScale(spec->kind, dy[i]), &stats.backward, &stats.backward_abs,
              &failures);
        Check(what + " dx(dy=1)", dtype, is_special, x[i], 1, ref_dx1[i],
              Unpack(dtype, dx_no_dy, i), bound.backward_ulp, bound.abs_eps,
              BackwardScale(spec->kind, 1), &stats.backward, &stats.backward_abs, &failures);
      }
      if (PrintErrors()) {
        std::printf("ERR %-36s %-8s %-8s forward %6.2f ulp (tiny %5.2f eps) backward %6.2f ulp "
                    "(tiny %5.2f eps)\n",
                    GetParam(), std::string(DTypeName(dtype)).c_str(), hwy::TargetName(target),
                    stats.forward, stats.forward_abs, stats.backward, stats.backward_abs);
      }
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllActivations, KernelAccuracyTest, ::testing::ValuesIn(kSpecs),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name;
                           for (const char* c = info.param; *c != '\0'; ++c) {
                             name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
                           }
                           return absl::StrFormat("%02d_%s", info.index, name);
                         });

// PReLU's fused weight gradient: the sum over x <= 0 of x * dy, against a long-double sum.
TEST(PreluWeightGradient, MatchesLongDoubleSumOnEveryTarget) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> dist(-3, 3);
  hwy::SetSupportedTargetsForTest(0);
  const int64_t supported = hwy::SupportedTargets();
  for (DType dtype : kDTypes) {
    const size_t n = 10007;
    std::vector<LD> x(n), dy(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = RoundTo(dtype, dist(rng));
      dy[i] = RoundTo(dtype, dist(rng));
    }
    LD want = 0, magnitude = 0;
    for (size_t i = 0; i < n; ++i) {
      want += math::PreluWeightGradient(static_cast<double>(x[i]), static_cast<double>(dy[i]));
      magnitude += fabsl(x[i] * dy[i]);
    }
    const std::vector<char> x_bytes = Pack(dtype, x), dy_bytes = Pack(dtype, dy);
    for (int64_t target : kernels::CompiledTargets()) {
      if ((supported & target) == 0) continue;
      hwy::SetSupportedTargetsForTest(target);
      std::vector<char> dx(x_bytes.size());
      double sum = 0;
      kernels::ElementwiseCall call;
      call.kind = ActivationKind::kPrelu;
      call.params[0] = 0.25;
      call.dtype = dtype;
      call.x = x_bytes.data();
      call.dy = dy_bytes.data();
      call.dx = dx.data();
      call.n = n;
      call.weight_gradient = &sum;
      kernels::RunElementwise(call);
      // Double accumulation: n roundings of at most 2^-53 of the running magnitude.
      EXPECT_LE(fabsl(sum - want), magnitude * n * std::ldexp(1.0L, -53))
          << DTypeName(dtype) << " " << hwy::TargetName(target);
      // A NaN x makes the sum NaN.
      std::vector<LD> x_nan = x;
      x_nan[n / 2] = std::numeric_limits<LD>::quiet_NaN();
      const std::vector<char> x_nan_bytes = Pack(dtype, x_nan);
      call.x = x_nan_bytes.data();
      kernels::RunElementwise(call);
      EXPECT_TRUE(std::isnan(sum)) << DTypeName(dtype) << " " << hwy::TargetName(target);
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

// Outputs may alias inputs (y over x, dx over dy): each vector is read before written.
TEST(KernelAliasing, InPlaceMatchesOutOfPlace) {
  std::vector<float> x(1001), dy(1001);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = -8.0f + 0.016f * static_cast<float>(i);
    dy[i] = 0.5f + 0.001f * static_cast<float>(i);
  }
  std::vector<float> y(x.size()), dx(x.size());
  kernels::ElementwiseCall call;
  call.kind = ActivationKind::kGelu;
  call.x = x.data();
  call.dy = dy.data();
  call.y = y.data();
  call.dx = dx.data();
  call.n = x.size();
  kernels::RunElementwise(call);
  call.y = const_cast<void*>(call.x);
  call.dx = const_cast<void*>(call.dy);
  kernels::RunElementwise(call);
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * 4));
  EXPECT_EQ(0, std::memcmp(dy.data(), dx.data(), x.size() * 4));
}

TEST(KernelTargets, CompiledForEveryX86TargetAndEmulation) {
  int64_t all = 0;
  for (int64_t t : kernels::CompiledTargets()) all |= t;
  EXPECT_NE(0, all & HWY_AVX3);
  EXPECT_NE(0, all & HWY_AVX2);
  EXPECT_NE(0, all & HWY_SSE4);
  EXPECT_NE(0, all & (HWY_EMU128 | HWY_SCALAR));
  EXPECT_NE(nullptr, kernels::ActiveTargetName());
}

}  // namespace
}  // namespace actserve
