// Central finite differences in float64: the engine's backward agrees with the slope of
// the engine's own forward, (f(x + h) - f(x - h)) / 2h, away from the kinks. Independent
// of the reference: a gradient formula that does not match its forward fails here.
//
// h = 1e-6 max(1, |x|): the truncation error (h^2 f''' / 6 ~ 1e-12) and the rounding
// error (eps |f| / h ~ 1e-9 for |f| <= 10) are both well below the tolerance,
// 1e-6 max(1, |f'|).
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "src/catalogue.h"
#include "src/engine.h"
#include "tests/src/engine_test_util.h"

namespace actserve {
namespace {

using LD = long double;
using testing_util::RunBatch;
using testing_util::TestItem;
using testing_util::TestResult;

constexpr double kTolerance = 1e-6;

// Every elementwise activation with its defaults, plus other parameters.
std::vector<ActivationSpec> Specs() {
  std::vector<ActivationSpec> specs;
  for (const ActivationInfo& info : Catalogue()) {
    bool required = false;
    for (const ParamInfo& p : info.params) required |= p.required;
    if (info.elementwise && !required) specs.push_back(*ParseActivationSpec(info.name));
  }
  for (const char* text :
       {"leaky_relu(negative_slope=0.2)", "prelu(weight=-0.375)", "elu(alpha=0.5)",
        "celu(alpha=2)", "gelu(approximate=tanh)", "softplus(beta=2, threshold=10)",
        "hardtanh(min_val=-2, max_val=3)", "softshrink(lambd=1)", "hardshrink(lambd=1)",
        "threshold(threshold=0.5, value=-1)"}) {
    specs.push_back(*ParseActivationSpec(text));
  }
  return specs;
}

// Points where some activation is not differentiable (kinks, branch switches).
bool NearKink(double x) {
  for (double k : {0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 5.0, 6.0, 20.0}) {
    if (std::fabs(x - k) < 1e-3) return true;
  }
  return false;
}

TEST(GradientCheckTest, ElementwiseBackwardIsTheSlopeOfForward) {
  Engine engine(EngineOptions{});
  std::vector<LD> x;
  for (double v = -9.95; v < 25; v += 0.173) {
    if (!NearKink(v)) x.push_back(v);
  }
  for (double v : {1e-3 + 0.5, 1e-2, -1e-2, 0.75, -0.7518, -1.2785, -1.19}) x.push_back(v);
  std::vector<LD> xp, xm, h2, g;
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> uniform(-3, 3);
  for (LD v : x) {
    const double h = 1e-6 * std::max(1.0, std::fabs(static_cast<double>(v)));
    const double p = static_cast<double>(v) + h, m = static_cast<double>(v) - h;
    xp.push_back(p);
    xm.push_back(m);
    h2.push_back(static_cast<LD>(p) - static_cast<LD>(m));  // exact 2h after rounding
    g.push_back(uniform(rng));
  }
  const int64_t n = static_cast<int64_t>(x.size());
  for (const ActivationSpec& spec : Specs()) {
    const std::string name = FormatActivationSpec(spec);
    std::vector<TestItem> items(4);
    for (TestItem& t : items) {
      t.dtype = DType::kFloat64;
      t.shape = {n};
      t.spec = spec;
    }
    items[0].x = xp;
    items[0].mode = Mode::kForward;
    items[1].x = xm;
    items[1].mode = Mode::kForward;
    items[2].x = x;
    items[2].mode = Mode::kBackward;
    items[3].x = x;
    items[3].mode = Mode::kBackward;
    items[3].g = g;
    absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, items);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status();
    int failures = 0;
    for (int64_t i = 0; i < n && failures < 5; ++i) {
      const double fd = static_cast<double>(((*r)[0].y[i] - (*r)[1].y[i]) / h2[i]);
      const double d = static_cast<double>((*r)[2].dx[i]);
      const double dg = static_cast<double>((*r)[3].dx[i]);
      const double gi = static_cast<double>(g[i]);
      const double xi = static_cast<double>(x[i]);
      if (std::fabs(fd - d) > kTolerance * std::max(1.0, std::fabs(d))) {
        ++failures;
        ADD_FAILURE() << name << " at x = " << xi << ": backward " << d
                      << ", finite difference " << fd;
      }
      // With dy: the vector-Jacobian product g * f'(x).
      if (std::fabs(gi * fd - dg) > kTolerance * std::max(1.0, std::fabs(dg))) {
        ++failures;
        ADD_FAILURE() << name << " at x = " << xi << ", dy = " << gi << ": backward " << dg
                      << ", dy * finite difference " << gi * fd;
      }
    }
  }
}

// Softmax / log_softmax: with a random dy, dx_i = d/dx_i sum_j dy_j y_j(x), by perturbing
// each input element in turn.
TEST(GradientCheckTest, SoftmaxVectorJacobianProduct) {
  Engine engine(EngineOptions{});
  const std::vector<int64_t> shape = {3, 4, 5};
  const int64_t n = 60;
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> uniform(-3, 3);
  std::vector<LD> x(n), g(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = uniform(rng);
    g[i] = uniform(rng);
  }
  for (const char* kind : {"softmax", "log_softmax"}) {
    for (int dim : {0, 1, 2, -1}) {
      const ActivationSpec spec = *ParseActivationSpec(absl::StrCat(kind, "(dim=", dim, ")"));
      std::vector<TestItem> items;
      TestItem base;
      base.dtype = DType::kFloat64;
      base.shape = shape;
      base.spec = spec;
      base.x = x;
      base.g = g;
      base.mode = Mode::kBackward;
      items.push_back(base);
      base.g.reset();
      base.mode = Mode::kForward;
      std::vector<LD> h2(n);
      for (int64_t i = 0; i < n; ++i) {
        const double h = 1e-6 * std::max(1.0, std::fabs(static_cast<double>(x[i])));
        TestItem plus = base, minus = base;
        plus.x[i] = static_cast<double>(x[i]) + h;
        minus.x[i] = static_cast<double>(x[i]) - h;
        h2[i] = plus.x[i] - minus.x[i];
        items.push_back(std::move(plus));
        items.push_back(std::move(minus));
      }
      absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, items);
      ASSERT_TRUE(r.ok()) << r.status();
      for (int64_t i = 0; i < n; ++i) {
        LD lp = 0, lm = 0;
        for (int64_t j = 0; j < n; ++j) {
          lp += g[j] * (*r)[1 + 2 * i].y[j];
          lm += g[j] * (*r)[2 + 2 * i].y[j];
        }
        const double fd = static_cast<double>((lp - lm) / h2[i]);
        const double dx = static_cast<double>((*r)[0].dx[i]);
        EXPECT_NEAR(dx, fd, kTolerance * std::max(1.0, std::fabs(dx)))
            << FormatActivationSpec(spec) << " element " << i;
      }
    }
  }
}

// PReLU: grad_weight is the slope of sum(dy * y) in each channel's weight, and
// grad_input the slope in x.
TEST(GradientCheckTest, PreluWeightAndInput) {
  Engine engine(EngineOptions{});
  const std::vector<int64_t> shape = {3, 4, 5};
  const int64_t n = 60, channels = 4;
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> uniform(-3, 3);
  TestItem base;
  base.dtype = DType::kFloat64;
  base.shape = shape;
  base.spec = *ParseActivationSpec("prelu");
  base.weight = std::vector<LD>{0.25L, -0.5L, 1.5L, 0.1L};
  base.weight_shape = {channels};
  for (int64_t i = 0; i < n; ++i) {
    double v = uniform(rng);
    if (std::fabs(v) < 1e-3) v = 0.5;
    base.x.push_back(v);
  }
  std::vector<LD> g(n);
  for (LD& e : g) e = uniform(rng);
  std::vector<TestItem> items;
  TestItem grad = base;
  grad.g = g;
  grad.mode = Mode::kBackward;
  items.push_back(grad);
  base.mode = Mode::kForward;
  const double h = 1e-6;
  for (int64_t c = 0; c < channels; ++c) {
    TestItem plus = base, minus = base;
    (*plus.weight)[c] += h;
    (*minus.weight)[c] -= h;
    items.push_back(plus);
    items.push_back(minus);
  }
  absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, items);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)[0].dw.size(), static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    LD lp = 0, lm = 0;
    for (int64_t j = 0; j < n; ++j) {
      lp += g[j] * (*r)[1 + 2 * c].y[j];
      lm += g[j] * (*r)[2 + 2 * c].y[j];
    }
    const double two_h = static_cast<double>((*items[1 + 2 * c].weight)[c] -
                                             (*items[2 + 2 * c].weight)[c]);
    const double fd = static_cast<double>(lp - lm) / two_h;
    const double dw = static_cast<double>((*r)[0].dw[c]);
    EXPECT_NEAR(dw, fd, kTolerance * std::max(1.0, std::fabs(dw))) << "channel " << c;
  }
}

}  // namespace
}  // namespace actserve
