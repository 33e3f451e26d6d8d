// The engine against the long-double reference (tests/oracle/reference.h): every activation
// of the catalogue x every dtype x every mode, with and without grad_output, over inputs
// that reach every branch (a dense sweep, every binade of the dtype from the smallest
// subnormal to the largest finite, +-0, +-Inf, NaN, and each kink and its neighbours).
//
// Error metric. `want` is the reference rounded once to the output dtype; the error is the
// number of representable steps between the engine's value and `want` (ULP of the output
// dtype). Where the reference is small against the terms that cancel to make it (e.g.
// gelu'(x) near its zero at x = -0.75, tanhshrink(x) = x - tanh(x) near 0, sigmoid'(x) =
// y(1 - y) for large |x|), the ULP bound gives way to an absolute bound,
// |got - ref| <= abs_eps * eps * scale, with eps the epsilon of the precision the engine
// computes in (float32 for float32/float16/bfloat16, float64 for float64) and `scale` the
// size of those terms. The bounds are the kernels' (src/kernels/accuracy_bounds.h), in
// whole steps (run with ACTSERVE_PRINT_ERRORS=1 to print the measured maxima); float16 /
// bfloat16 are computed in float32 and rounded once, so within 1 ULP of the correctly
// rounded result. Special values are exact: NaN where NaN, +-Inf inputs give
// exactly the limits, and the kinks give exactly the table's values.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "src/kernels/accuracy_bounds.h"
#include "src/catalogue.h"
#include "src/engine.h"
#include "tests/src/engine_test_util.h"
#include "tests/oracle/reference.h"

namespace actserve {
namespace {

using LD = long double;
using testing_util::MakeSpec;
using testing_util::RunBatch;
using testing_util::TestItem;
using testing_util::TestResult;

constexpr LD kInf = std::numeric_limits<LD>::infinity();
constexpr LD kNaN = std::numeric_limits<LD>::quiet_NaN();

bool PrintErrors() { return std::getenv("ACTSERVE_PRINT_ERRORS") != nullptr; }

// Non-default parameter sets per activation, besides the defaults (used when the
// activation has no required parameter). An activation added to the catalogue is tested
// with its defaults automatically; one with required parameters must be listed here.
std::vector<std::vector<NamedParam>> ExtraVariants(absl::string_view name) {
  static const auto* const kExtra = new std::map<std::string,
                                                 std::vector<std::vector<NamedParam>>>{
      {"leaky_relu", {{{"negative_slope", 0.2}}, {{"negative_slope", -0.5}}}},
      {"prelu", {{{"weight", -0.375}}}},
      {"elu", {{{"alpha", 0.5}}}},
      {"celu", {{{"alpha", 2}}}},
      {"gelu", {{{"approximate", 1}}}},
      {"softplus", {{{"beta", 2}, {"threshold", 10}}, {{"beta", 0.5}, {"threshold", 3}}}},
      {"hardtanh", {{{"min_val", -2}, {"max_val", 3}}}},
      {"softshrink", {{{"lambd", 1}}, {{"lambd", 0}}}},
      {"hardshrink", {{{"lambd", 1}}}},
      {"threshold", {{{"threshold", 0.5}, {"value", -1}}, {{"threshold", -2}, {"value", 4}}}},
  };
  auto it = kExtra->find(std::string(name));
  return it == kExtra->end() ? std::vector<std::vector<NamedParam>>{} : it->second;
}

std::vector<ActivationSpec> Variants(const ActivationInfo& info) {
  std::vector<ActivationSpec> specs;
  bool has_required = false;
  for (const ParamInfo& p : info.params) has_required |= p.required;
  if (!has_required) specs.push_back(MakeSpec(info.kind));
  for (const auto& params : ExtraVariants(info.name)) specs.push_back(MakeSpec(info.kind, params));
  return specs;
}

// Points where the function or its derivative changes branch or crosses zero.
std::vector<LD> Kinks(const ActivationSpec& spec) {
  std::vector<LD> k = {0};
  switch (spec.kind) {
    case ActivationKind::kRelu6:
      k.push_back(6);
      break;
    case ActivationKind::kHardtanh:
      k.push_back(spec.Param("min_val"));
      k.push_back(spec.Param("max_val"));
      break;
    case ActivationKind::kHardsigmoid:
    case ActivationKind::kHardswish:
      k.insert(k.end(), {-3, 3, -1.5L});
      break;
    case ActivationKind::kSoftshrink:
    case ActivationKind::kHardshrink:
      k.push_back(spec.Param("lambd"));
      k.push_back(-spec.Param("lambd"));
      break;
    case ActivationKind::kThreshold:
      k.push_back(spec.Param("threshold"));
      break;
    case ActivationKind::kSoftplus:
      k.push_back(static_cast<LD>(spec.Param("threshold")) / spec.Param("beta"));
      break;
    case ActivationKind::kGelu:
      k.push_back(spec.Param("approximate") == 1 ? -0.7524614220710163L
                                                : -0.7517915246935645L);  // zero of gelu'
      break;
    case ActivationKind::kSilu:
      k.push_back(-1.278464542761074L);  // zero of silu'
      break;
    case ActivationKind::kMish:
      k.push_back(-1.1924312145154952L);  // zero of mish'
      break;
    default:
      break;
  }
  return k;
}


// Inputs for `dtype` that reach every branch of `spec`, each representable in `dtype`.
std::vector<LD> Inputs(DType dtype, const ActivationSpec& spec) {
  const ref::Format f = ref::FormatOf(dtype);
  std::vector<LD> v;
  for (int i = -768; i <= 768; ++i) v.push_back(i / 64.0L);  // [-12, 12], step 1/64
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(-12, 12);
  for (int i = 0; i < 1001; ++i) v.push_back(uniform(rng));
  // Every binade from the smallest subnormal to the largest finite, both signs.
  std::uniform_real_distribution<double> mantissa(1, 2);
  for (int e = f.min_exp - f.precision + 1; e <= f.max_exp; ++e) {
    v.push_back(ldexpl(mantissa(rng), e));
    v.push_back(-ldexpl(mantissa(rng), e));
  }
  const LD max = ldexpl(2 - ldexpl(1, 1 - f.precision), f.max_exp);
  const LD min_normal = ldexpl(1, f.min_exp);
  const LD min_sub = ldexpl(1, f.min_exp - f.precision + 1);
  for (LD s : {1.0L, -1.0L}) {
    for (LD m : {0.0L, kInf, max, max / 2, min_normal, min_sub, 3 * min_sub, 30.0L, 100.0L,
                 1e4L, 1e30L, 20.0L, 40.0L, 88.0L, 89.0L, 710.0L, 1e-30L, 1e-5L}) {
      v.push_back(s * m);
    }
  }
  v.push_back(kNaN);
  for (LD k : Kinks(spec)) {
    const LD kr = ref::RoundTo(dtype, k);
    v.push_back(kr);
    for (int i = 1; i <= 2; ++i) {
      v.push_back(kr + i * ref::Ulp(f, kr));
      v.push_back(kr - i * ref::Ulp(f, kr));
    }
  }
  return testing_util::RoundAll(dtype, v);
}

// dy: values in [-4, 4], never 0, representable in `dtype`.
std::vector<LD> GradOutputs(DType dtype, size_t n) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(-4, 4);
  std::vector<LD> g(n);
  for (LD& e : g) {
    e = ref::RoundTo(dtype, uniform(rng));
    if (e == 0) e = 1;
  }
  return g;
}

// Precision the engine computes in (DESIGN.md section 4).
LD ComputeEpsilon(DType dtype) {
  return dtype == DType::kFloat64 ? ldexpl(1, -52) : ldexpl(1, -23);
}

// Where f (or f') is small against the terms that cancel to make it, the absolute bound
// applies: |ref| < kTinyFraction * scale.
constexpr LD kTinyFraction = 0.125L;

// The size of the terms that cancel in the forward formula, or 0 where none do (then
// only the ULP bound applies).
LD ForwardScale(ActivationKind kind, LD x) {
  switch (kind) {
    case ActivationKind::kGelu:        // 0.5 x (1 + erf): cancels for x << 0
    case ActivationKind::kTanhshrink:  // x - tanh(x): cancels near 0
      return fabsl(x);
    case ActivationKind::kHardsigmoid:  // x/6 + 1/2: cancels near -3
      return 1;
    default:
      return 0;
  }
}

// The same for the backward formula (dx = g * f'(x)).
LD BackwardScale(ActivationKind kind, LD g) {
  switch (kind) {
    case ActivationKind::kGelu:       // Phi(x) + x phi(x) = 0 at x = -0.75
    case ActivationKind::kSilu:       // s (1 + x (1 - s)) = 0 at x = -1.28
    case ActivationKind::kMish:       // zero at x = -1.19
    case ActivationKind::kHardswish:  // x/3 + 1/2 = 0 at x = -1.5
    case ActivationKind::kSigmoid:    // y (1 - y): 1 - y cancels for large x
    case ActivationKind::kTanh:       // 1 - y^2: cancels for large |x|
      return fabsl(g);
    default:
      return 0;
  }
}

struct Bound {
  int64_t ulp;     // ULP of the output dtype, against the correctly rounded reference
  double abs_eps;  // absolute bound in the tiny region, in eps * scale
};

// The kernels' bounds (src/kernels/accuracy_bounds.h, the table every accuracy test and
// README take from) in whole steps against the rounded reference: the engine runs the
// best target here, the kernel tests every target.
Bound BoundFor(const ActivationSpec& spec, DType dtype, bool backward) {
  const kernels::AccuracyBound bound = kernels::AccuracyBoundFor(spec, dtype);
  return {kernels::StepBound(backward ? bound.backward_ulp : bound.forward_ulp), bound.abs_eps};
}

struct ErrStats {
  int64_t max_ulp = 0;  // over points that are not tiny
  LD max_ulp_x = 0;
  int64_t max_ulp_tiny = 0;
  LD max_abs = 0;  // over tiny points, in eps * scale
  LD max_abs_x = 0;
  int failures = 0;
};

// Checks one value; on failure adds a gtest failure (the first few per configuration).
void CheckValue(DType dtype, const std::string& what, LD x, LD g, LD ref, LD got, LD scale,
                bool exact, Bound bound, ErrStats* st) {
  const ref::Format f = ref::FormatOf(dtype);
  bool ok;
  std::string detail;
  if (std::isnan(ref) || std::isnan(got)) {
    ok = std::isnan(ref) && std::isnan(got);
  } else {
    const LD want = ref::RoundTo(dtype, ref);
    const int64_t ulp = ref::UlpDistance(f, got, want);
    const bool tiny = scale > 0 && fabsl(ref) < kTinyFraction * scale;
    if (exact) {
      ok = ulp == 0;
    } else if (!tiny) {
      ok = ulp <= bound.ulp;
      if (ulp > st->max_ulp) {
        st->max_ulp = ulp;
        st->max_ulp_x = x;
      }
    } else {
      const LD abs_err = fabsl(got - ref) / (ComputeEpsilon(dtype) * scale);
      st->max_ulp_tiny = std::max(st->max_ulp_tiny, ulp);
      if (abs_err > st->max_abs) {
        st->max_abs = abs_err;
        st->max_abs_x = x;
      }
      ok = ulp <= bound.ulp || abs_err <= bound.abs_eps;
    }
    detail = absl::StrFormat(" (%d ULP%s)", ulp, exact ? ", must be exact" : "");
  }
  if (!ok && ++st->failures <= 5) {
    ADD_FAILURE() << what << " " << DTypeName(dtype) << " at x = "
                  << absl::StrFormat("%.21Lg", x) << ", g = " << absl::StrFormat("%.9Lg", g)
                  << ": want " << absl::StrFormat("%.21Lg", ref) << " (rounded "
                  << absl::StrFormat("%.17Lg", ref::RoundTo(dtype, ref)) << "), got "
                  << absl::StrFormat("%.17Lg", got) << detail;
  }
}

void PrintStats(const std::string& what, DType dtype, const ErrStats& st) {
  if (!PrintErrors()) return;
  std::printf("ERR %-48s %-8s maxulp %6lld at %-14.7Lg tiny: maxulp %6lld maxabs %8.3Lf at %.7Lg\n",
              what.c_str(), std::string(DTypeName(dtype)).c_str(),
              static_cast<long long>(st.max_ulp), st.max_ulp_x,
              static_cast<long long>(st.max_ulp_tiny), st.max_abs, st.max_abs_x);
}

const Mode kModes[] = {Mode::kForward, Mode::kBackward, Mode::kForwardBackward};

// Splits `n` values into items of odd lengths 1, 7, 1023 and the rest, so that the
// kernels' tails run.
std::vector<std::pair<size_t, size_t>> Chunks(size_t n) {
  std::vector<std::pair<size_t, size_t>> c;
  size_t begin = 0;
  for (size_t len : {size_t{1}, size_t{7}, size_t{1023}}) {
    if (begin + len > n) break;
    c.push_back({begin, len});
    begin += len;
  }
  if (begin < n) c.push_back({begin, n - begin});
  return c;
}

using KindAndDType = std::tuple<int, DType>;

std::vector<int> ElementwiseKinds() {
  std::vector<int> kinds;
  for (const ActivationInfo& info : Catalogue()) {
    if (info.elementwise) kinds.push_back(static_cast<int>(info.kind));
  }
  return kinds;
}

std::vector<int> SoftmaxKinds() {
  std::vector<int> kinds;
  for (const ActivationInfo& info : Catalogue()) {
    if (!info.elementwise) kinds.push_back(static_cast<int>(info.kind));
  }
  return kinds;
}

std::string ParamName(const ::testing::TestParamInfo<KindAndDType>& info) {
  return absl::StrCat(GetActivationInfo(static_cast<ActivationKind>(std::get<0>(info.param))).name,
                      "_", DTypeName(std::get<1>(info.param)));
}

class ElementwiseAccuracyTest : public ::testing::TestWithParam<KindAndDType> {};

TEST_P(ElementwiseAccuracyTest, MatchesReferenceEverywhere) {
  const auto kind = static_cast<ActivationKind>(std::get<0>(GetParam()));
  const DType dtype = std::get<1>(GetParam());
  const ActivationInfo& info = GetActivationInfo(kind);
  const std::vector<ActivationSpec> variants = Variants(info);
  ASSERT_FALSE(variants.empty()) << info.name << " has required parameters: list a variant";
  Engine engine(EngineOptions{});
  for (const ActivationSpec& spec : variants) {
    const std::string label = FormatActivationSpec(spec);
    const std::vector<LD> x = Inputs(dtype, spec);
    const std::vector<LD> g_values = GradOutputs(dtype, x.size());
    const Bound fwd_bound = BoundFor(spec, dtype, false);
    const Bound bwd_bound = BoundFor(spec, dtype, true);
    ErrStats fwd_stats, bwd_stats;
    for (Mode mode : kModes) {
      for (bool with_g : {false, true}) {
        std::vector<TestItem> items;
        for (auto [begin, len] : Chunks(x.size())) {
          TestItem t;
          t.dtype = dtype;
          t.shape = {static_cast<int64_t>(len)};
          t.x.assign(x.begin() + begin, x.begin() + begin + len);
          t.spec = spec;
          t.mode = mode;
          if (with_g) t.g.emplace(g_values.begin() + begin, g_values.begin() + begin + len);
          items.push_back(std::move(t));
        }
        absl::StatusOr<std::vector<TestResult>> results = RunBatch(engine, items);
        ASSERT_TRUE(results.ok()) << label << ": " << results.status();
        const std::string what =
            absl::StrCat(label, " ", ModeName(mode), with_g ? " dy" : " no-dy");
        for (size_t i = 0; i < items.size(); ++i) {
          const TestItem& t = items[i];
          const TestResult& r = (*results)[i];
          const size_t bytes = t.x.size() * DTypeSize(dtype);
          ASSERT_EQ(r.y_bytes, ComputesOutput(mode) ? bytes : 0) << what;
          ASSERT_EQ(r.dx_bytes, ComputesGradient(mode) ? bytes : 0) << what;
          // PReLU with a gradient also gives grad_weight: here its one weight (from the
          // spec), dw = sum over x <= 0 of x * g; checked in PreluTest.
          const bool dw = kind == ActivationKind::kPrelu && ComputesGradient(mode);
          ASSERT_EQ(r.dw_bytes, dw ? DTypeSize(dtype) : 0) << what;
          for (size_t j = 0; j < t.x.size(); ++j) {
            const LD xj = t.x[j];
            const LD gj = with_g ? (*t.g)[j] : 1;
            // +-Inf inputs give exactly the limits (selu's limit is a product of two
            // constants, which float32 cannot give exactly).
            const bool exact = std::isinf(xj) && kind != ActivationKind::kSelu;
            if (ComputesOutput(mode)) {
              CheckValue(dtype, what + " y", xj, gj, ref::Forward(spec, xj), r.y[j],
                         ForwardScale(kind, xj), exact, fwd_bound, &fwd_stats);
            }
            if (ComputesGradient(mode)) {
              CheckValue(dtype, what + " dx", xj, gj, ref::Backward(spec, xj, gj), r.dx[j],
                         BackwardScale(kind, gj), exact, bwd_bound, &bwd_stats);
            }
          }
        }
      }
    }
    PrintStats(label + " forward", dtype, fwd_stats);
    PrintStats(label + " backward", dtype, bwd_stats);
  }
}

INSTANTIATE_TEST_SUITE_P(AllActivations, ElementwiseAccuracyTest,
                         ::testing::Combine(::testing::ValuesIn(ElementwiseKinds()),
                                            ::testing::ValuesIn(AllDTypes())),
                         ParamName);

// The gradient at each kink is exactly the table's value (DESIGN.md section 3, "at the
// kink"), in every dtype, with dy absent (= 1) and with dy = 2.5.
TEST(KinkTest, GradientsAtKinksAreTheTablesValues) {
  struct Case {
    ActivationKind kind;
    std::vector<NamedParam> params;
    LD x;
    LD dydx;  // f' at x by the table's convention
  };
  const Case cases[] = {
      {ActivationKind::kRelu, {}, 0, 0},
      {ActivationKind::kRelu6, {}, 0, 0},
      {ActivationKind::kRelu6, {}, 6, 0},
      {ActivationKind::kLeakyRelu, {{"negative_slope", 0.25}}, 0, 0.25L},
      {ActivationKind::kPrelu, {}, 0, 0.25L},
      {ActivationKind::kElu, {}, 0, 1},
      {ActivationKind::kElu, {{"alpha", 0.5}}, 0, 0.5L},
      {ActivationKind::kCelu, {{"alpha", 2}}, 0, 1},
      {ActivationKind::kGelu, {}, 0, 0.5L},
      {ActivationKind::kGelu, {{"approximate", 1}}, 0, 0.5L},
      {ActivationKind::kSilu, {}, 0, 0.5L},
      {ActivationKind::kSoftplus, {}, 0, 0.5L},
      {ActivationKind::kHardtanh, {}, -1, 0},
      {ActivationKind::kHardtanh, {}, 1, 0},
      {ActivationKind::kHardtanh, {{"min_val", -2}, {"max_val", 3}}, -2, 0},
      {ActivationKind::kHardtanh, {{"min_val", -2}, {"max_val", 3}}, 3, 0},
      {ActivationKind::kHardsigmoid, {}, -3, 0},
      {ActivationKind::kHardsigmoid, {}, 3, 0},
      {ActivationKind::kHardswish, {}, -3, -0.5L},
      {ActivationKind::kHardswish, {}, 3, 1.5L},
      {ActivationKind::kLogsigmoid, {}, 0, 0.5L},
      {ActivationKind::kSoftsign, {}, 0, 1},
      {ActivationKind::kSoftshrink, {}, 0.5L, 0},
      {ActivationKind::kSoftshrink, {}, -0.5L, 0},
      {ActivationKind::kSoftshrink, {{"lambd", 1}}, 1, 0},
      {ActivationKind::kHardshrink, {}, 0.5L, 0},
      {ActivationKind::kHardshrink, {}, -0.5L, 0},
      {ActivationKind::kThreshold, {{"threshold", 0.5}, {"value", -1}}, 0.5L, 0},
      {ActivationKind::kSigmoid, {}, 0, 0.25L},
      {ActivationKind::kTanh, {}, 0, 1},
      {ActivationKind::kTanhshrink, {}, 0, 0},
  };
  Engine engine(EngineOptions{});
  for (const Case& c : cases) {
    const ActivationSpec spec = MakeSpec(c.kind, c.params);
    ASSERT_EQ(ref::Backward(spec, c.x, 1), c.dydx) << FormatActivationSpec(spec);  // oracle
    for (DType dtype : AllDTypes()) {
      for (bool with_g : {false, true}) {
        TestItem t;
        t.dtype = dtype;
        t.shape = {1};
        t.x = {c.x};
        t.spec = spec;
        if (with_g) t.g = std::vector<LD>{2.5L};
        absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, {t});
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ((*r)[0].dx[0], c.dydx * (with_g ? 2.5L : 1))
            << FormatActivationSpec(spec) << " at x = " << static_cast<double>(c.x) << " "
            << DTypeName(dtype) << (with_g ? " dy=2.5" : "");
      }
    }
  }
}

// PReLU with one weight and with one weight per channel (dim 1), including grad_weight:
// dw_c = sum over x <= 0 of x * g, against a long-double sum.
class PreluTest : public ::testing::TestWithParam<DType> {};

TEST_P(PreluTest, PerChannelAndSingleWeight) {
  const DType dtype = GetParam();
  const ActivationSpec spec = MakeSpec(ActivationKind::kPrelu);
  Engine engine(EngineOptions{});
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> uniform(-6, 6);
  struct Shape {
    std::vector<int64_t> input;
    std::vector<int64_t> weight;
  };
  const Shape shapes[] = {
      {{3, 5, 67}, {5}}, {{3, 5, 67}, {1}}, {{7, 3}, {3}}, {{1023}, {1}}, {{2, 5, 3, 3}, {5}},
      {{4, 3, 5}, {}},  // no weight tensor: the spec's weight, 0.25
  };
  const std::vector<LD> weight_pool = {0.25L, -0.5L, 0, 1.5L, 0.125L};
  for (const Shape& s : shapes) {
    int64_t n = 1;
    for (int64_t d : s.input) n *= d;
    const bool has_tensor = !s.weight.empty();
    const int64_t channels = has_tensor ? s.weight[0] : 1;
    const int64_t inner = s.input.size() > 2 ? n / (s.input[0] * s.input[1]) : 1;
    TestItem t;
    t.dtype = dtype;
    t.shape = s.input;
    t.spec = spec;
    for (int64_t i = 0; i < n; ++i) t.x.push_back(ref::RoundTo(dtype, uniform(rng)));
    t.x[0] = 0;  // the kink
    t.g = GradOutputs(dtype, n);
    std::vector<LD> weights;
    for (int64_t c = 0; c < channels; ++c) weights.push_back(weight_pool[c % 5]);
    if (has_tensor) {
      t.weight = weights;
      t.weight_shape = s.weight;
    }
    absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, {t});
    ASSERT_TRUE(r.ok()) << r.status();
    const TestResult& res = (*r)[0];
    ASSERT_EQ(res.dw.size(), static_cast<size_t>(channels));
    std::vector<LD> dw(channels, 0), dw_abs(channels, 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = channels == 1 ? 0 : (i / inner) % channels;
      const LD w = weights[c];
      const LD x = t.x[i], g = (*t.g)[i];
      // x > 0 ? x : w x — one product, rounded once: exact to the rounding.
      EXPECT_EQ(res.y[i], ref::RoundTo(dtype, ref::Forward(spec, x, w)))
          << DTypeName(dtype) << " " << ShapeToString(s.input) << " i=" << i;
      EXPECT_EQ(res.dx[i], ref::RoundTo(dtype, ref::Backward(spec, x, g, w)))
          << DTypeName(dtype) << " " << ShapeToString(s.input) << " i=" << i;
      if (x <= 0) {
        dw[c] += x * g;
        dw_abs[c] += fabsl(x * g);
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      // The sum of n products accumulated in the compute precision: within 1 ULP of the
      // output dtype plus 8 eps per element of the sum of |x g| (a loose bound; a wrong
      // channel or a sign error is off by whole terms).
      const LD tol = ref::Ulp(ref::FormatOf(dtype), dw[c]) +
                     8 * ComputeEpsilon(dtype) * dw_abs[c];
      EXPECT_NEAR(static_cast<double>(res.dw[c]), static_cast<double>(dw[c]),
                  static_cast<double>(tol))
          << DTypeName(dtype) << " " << ShapeToString(s.input) << " channel " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, PreluTest, ::testing::ValuesIn(AllDTypes()),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(DTypeName(info.param));
                         });

// Softmax / log_softmax along several dims of 3-D tensors (and a long 1-D one), against
// the long-double reference. Softmax outputs lie in [0, 1] and its errors come from exp(x -
// max), whose argument is itself rounded, so the absolute bound there is in eps * 1;
// log_softmax's terms are x - max and log(sum), its scale their size.
class SoftmaxAccuracyTest : public ::testing::TestWithParam<KindAndDType> {};

TEST_P(SoftmaxAccuracyTest, MatchesReferenceAlongEveryDim) {
  const auto kind = static_cast<ActivationKind>(std::get<0>(GetParam()));
  const DType dtype = std::get<1>(GetParam());
  const bool log_form = kind == ActivationKind::kLogSoftmax;
  Engine engine(EngineOptions{});
  std::mt19937_64 rng(11);
  struct Case {
    std::vector<int64_t> shape;
    int dim;
    double range;
  };
  const Case cases[] = {
      {{3, 5, 7}, 0, 10},  {{3, 5, 7}, 1, 10},  {{3, 5, 7}, 2, 10}, {{3, 5, 7}, -1, 10},
      {{3, 5, 7}, -3, 10}, {{3, 5, 7}, -2, 30}, {{1023}, 0, 5},     {{1}, -1, 1},
      {{}, 0, 3},          {{2, 1, 9}, 1, 3},
  };
  const Bound y_bound = BoundFor(MakeSpec(kind), dtype, false);
  const Bound dx_bound = BoundFor(MakeSpec(kind), dtype, true);
  ErrStats fwd_stats, bwd_stats;
  for (const Case& c : cases) {
    int64_t n = 1;
    for (int64_t d : c.shape) n *= d;
    const int rank = static_cast<int>(c.shape.size());
    const int dim = rank == 0 ? 0 : (c.dim < 0 ? c.dim + rank : c.dim);
    std::uniform_real_distribution<double> uniform(-c.range, c.range);
    TestItem t;
    t.dtype = dtype;
    t.shape = c.shape;
    for (int64_t i = 0; i < n; ++i) t.x.push_back(ref::RoundTo(dtype, uniform(rng)));
    t.spec = MakeSpec(kind, {{"dim", static_cast<double>(c.dim)}});
    for (bool with_g : {false, true}) {
      if (with_g) t.g = GradOutputs(dtype, n);
      absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, {t});
      ASSERT_TRUE(r.ok()) << r.status();
      const ref::SoftmaxResult want =
          ref::Softmax(t.spec, c.shape, dim, t.x, with_g ? *t.g : std::vector<LD>{});
      const std::string what = absl::StrCat(FormatActivationSpec(t.spec), " ",
                                            ShapeToString(c.shape), with_g ? " dy" : "");
      // Terms of each slice, for the scale of the absolute bound.
      for (int64_t i = 0; i < n; ++i) {
        const LD gi = with_g ? (*t.g)[i] : 1;
        const LD y_scale = log_form ? 1 + fabsl(t.x[i]) + c.range : 1;
        CheckValue(dtype, what + " y", t.x[i], gi, want.y[i], (*r)[0].y[i], y_scale, false,
                   y_bound, &fwd_stats);
        // dx = y (g - sum(g y)) or g - exp(y) sum(g): terms of size |g| + sum|g|.
        const LD dx_scale = 4 * (c.shape.empty() ? 1 : c.shape[dim]) + 4;
        CheckValue(dtype, what + " dx", t.x[i], gi, want.dx[i], (*r)[0].dx[i],
                   log_form ? dx_scale : fabsl(want.y[i]) * dx_scale, false, dx_bound,
                   &bwd_stats);
      }
    }
  }
  PrintStats(std::string(GetActivationInfo(kind).name) + " forward", dtype, fwd_stats);
  PrintStats(std::string(GetActivationInfo(kind).name) + " backward", dtype, bwd_stats);
}

// -Inf entries (masking) give exactly 0 (log_softmax: -Inf) and a zero gradient (log_softmax:
// g); a NaN entry makes its whole slice NaN (the sum is NaN), output and gradient, and
// leaves the other slices alone.
TEST_P(SoftmaxAccuracyTest, InfinityAndNaNEntries) {
  const auto kind = static_cast<ActivationKind>(std::get<0>(GetParam()));
  const DType dtype = std::get<1>(GetParam());
  const bool log_form = kind == ActivationKind::kLogSoftmax;
  Engine engine(EngineOptions{});
  // Shape [4, 5], dim 1: row 0 masked at 0 and 3, row 1 has a NaN, row 2 normal, row 3
  // masked at 4.
  TestItem t;
  t.dtype = dtype;
  t.shape = {4, 5};
  t.x = {-kInf, 1, 2, -kInf, 0.5L,  //
         1, kNaN, 2, 3, 0,          //
         0.25L, -1, 2, 0, 1,        //
         3, 3, -2, 1, -kInf};
  t.spec = MakeSpec(kind, {{"dim", 1}});
  t.g = GradOutputs(dtype, 20);
  absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, {t});
  ASSERT_TRUE(r.ok()) << r.status();
  const ref::SoftmaxResult want = ref::Softmax(t.spec, t.shape, 1, t.x, *t.g);
  const Bound y_bound = BoundFor(t.spec, dtype, false);
  const Bound dx_bound = BoundFor(t.spec, dtype, true);
  ErrStats stats;
  for (int i = 0; i < 20; ++i) {
    const LD y = (*r)[0].y[i], dx = (*r)[0].dx[i];
    if (i / 5 == 1) {
      EXPECT_TRUE(std::isnan(y)) << "NaN slice, element " << i << ": got " << (double)y;
      EXPECT_TRUE(std::isnan(dx)) << "NaN slice, element " << i << ": got " << (double)dx;
      continue;
    }
    if (std::isinf(t.x[i])) {
      EXPECT_EQ(y, log_form ? -kInf : 0) << "masked element " << i;
      EXPECT_EQ(dx, log_form ? (*t.g)[i] : 0) << "masked element " << i;
      continue;
    }
    CheckValue(dtype, "y", t.x[i], (*t.g)[i], want.y[i], y, 1 + 4 * log_form, false, y_bound,
               &stats);
    CheckValue(dtype, "dx", t.x[i], (*t.g)[i], want.dx[i], dx, 24, false, dx_bound, &stats);
  }
}

INSTANTIATE_TEST_SUITE_P(SoftmaxKinds, SoftmaxAccuracyTest,
                         ::testing::Combine(::testing::ValuesIn(SoftmaxKinds()),
                                            ::testing::ValuesIn(AllDTypes())),
                         ParamName);

// Results must not depend on how the engine splits the work (threads, chunks): one large
// tensor gives bit-identical results to the same values in small items.
TEST(DeterminismTest, LargeTensorEqualsSmallPieces) {
  ThreadPoolOptions pool_options;
  pool_options.threads = 2;
  ThreadPool pool(pool_options);
  EngineOptions options;
  options.pool = &pool;
  options.chunk_elements = 10007;  // odd chunks: tails inside one item
  Engine pooled(options);
  Engine engine(EngineOptions{});
  const int64_t n = (int64_t{1} << 20) + 13;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> uniform(-8, 8);
  for (const char* text : {"gelu", "silu", "softplus(beta=2, threshold=10)"}) {
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      TestItem big;
      big.dtype = dtype;
      big.shape = {n};
      big.spec = *ParseActivationSpec(text);
      for (int64_t i = 0; i < n; ++i) big.x.push_back(ref::RoundTo(dtype, uniform(rng)));
      big.g = GradOutputs(dtype, n);
      std::vector<TestItem> pieces;
      const int64_t piece = 4099;
      for (int64_t b = 0; b < n; b += piece) {
        const int64_t len = std::min(piece, n - b);
        TestItem t;
        t.dtype = dtype;
        t.spec = big.spec;
        t.shape = {len};
        t.x.assign(big.x.begin() + b, big.x.begin() + b + len);
        t.g.emplace(big.g->begin() + b, big.g->begin() + b + len);
        pieces.push_back(std::move(t));
      }
      absl::StatusOr<std::vector<TestResult>> whole = RunBatch(pooled, {big});
      absl::StatusOr<std::vector<TestResult>> parts = RunBatch(engine, pieces);
      ASSERT_TRUE(whole.ok() && parts.ok());
      int64_t mismatches = 0;
      for (size_t p = 0; p < parts->size(); ++p) {
        for (size_t j = 0; j < (*parts)[p].y.size(); ++j) {
          const size_t i = p * piece + j;
          mismatches += (*parts)[p].y[j] != (*whole)[0].y[i];
          mismatches += (*parts)[p].dx[j] != (*whole)[0].dx[i];
        }
      }
      EXPECT_EQ(mismatches, 0) << text << " " << DTypeName(dtype);
    }
  }
}

}  // namespace
}  // namespace actserve
