// Hand-checkable cases of the engine: values a reader can verify on paper, or that were
// pasted from PyTorch (the command is given beside each).
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "src/activation_spec.h"
#include "src/engine.h"
#include "tests/src/engine_test_util.h"

namespace actserve {
namespace {

using LD = long double;
using testing_util::RunBatch;
using testing_util::TestItem;
using testing_util::TestResult;

TestResult Compute1(DType dtype, const char* spec, std::vector<LD> x,
               std::optional<std::vector<LD>> g = std::nullopt,
               Mode mode = Mode::kForwardBackward) {
  TestItem t;
  t.dtype = dtype;
  t.shape = {static_cast<int64_t>(x.size())};
  t.x = std::move(x);
  absl::StatusOr<ActivationSpec> parsed = ParseActivationSpec(spec);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  t.spec = *parsed;
  t.mode = mode;
  t.g = std::move(g);
  Engine engine(EngineOptions{});
  absl::StatusOr<std::vector<TestResult>> r = RunBatch(engine, {t});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? (*r)[0] : TestResult{};
}

std::vector<double> D(const std::vector<LD>& v) { return {v.begin(), v.end()}; }

TEST(EngineExamplesTest, Relu) {
  for (DType dtype : AllDTypes()) {
    const TestResult r = Compute1(dtype, "relu", {-2, -1, 0, 1, 2});
    EXPECT_EQ(D(r.y), (std::vector<double>{0, 0, 0, 1, 2})) << DTypeName(dtype);
    // dy absent = 1, and relu'(0) = 0.
    EXPECT_EQ(D(r.dx), (std::vector<double>{0, 0, 0, 1, 1})) << DTypeName(dtype);
  }
}

TEST(EngineExamplesTest, ModesGiveOnlyWhatTheyAskFor) {
  const TestResult fwd = Compute1(DType::kFloat32, "relu", {-1, 2}, std::vector<LD>{3, 4},
                             Mode::kForward);
  EXPECT_EQ(D(fwd.y), (std::vector<double>{0, 2}));
  EXPECT_EQ(fwd.dx_bytes, 0u);  // grad_output sent with forward is ignored
  const TestResult bwd = Compute1(DType::kFloat32, "relu", {-1, 2}, std::vector<LD>{3, 4},
                             Mode::kBackward);
  EXPECT_EQ(bwd.y_bytes, 0u);
  EXPECT_EQ(D(bwd.dx), (std::vector<double>{0, 4}));
}

TEST(EngineExamplesTest, LeakyRelu) {
  // 0.2 * -5 = -1 after rounding in float64; the slope is the gradient at 0 and below.
  const TestResult r = Compute1(DType::kFloat64, "leaky_relu(negative_slope=0.2)", {-5, 0, 5},
                           std::vector<LD>{1, 1, 1});
  EXPECT_EQ(D(r.y), (std::vector<double>{-1, 0, 5}));
  EXPECT_EQ(D(r.dx), (std::vector<double>{0.2, 0.2, 1}));
  const TestResult g = Compute1(DType::kFloat64, "leaky_relu(negative_slope=0.2)", {-5, 0, 5},
                           std::vector<LD>{2, -10, 3});
  EXPECT_EQ(D(g.dx), (std::vector<double>{0.4, -2, 3}));
}

TEST(EngineExamplesTest, HardswishAtItsKinks) {
  for (DType dtype : AllDTypes()) {
    const TestResult r = Compute1(dtype, "hardswish", {-3, 3, -4, 4, 0, 1.5L});
    // y: 0, 3, 0, 4, 0, 1.5 * 4.5 / 6 = 1.125.
    EXPECT_EQ(D(r.y), (std::vector<double>{0, 3, 0, 4, 0, 1.125})) << DTypeName(dtype);
    // dx: -1/2 at -3 and 3/2 at 3 (DESIGN.md's convention), 0 below, 1 above, x/3 + 1/2.
    EXPECT_EQ(D(r.dx), (std::vector<double>{-0.5, 1.5, 0, 1, 0.5, 1})) << DTypeName(dtype);
  }
}

// y_i = e^i / (e + e^2 + e^3); with g = [1, -1, 0.5], dx_i = y_i (g_i - sum g y).
// torch: x = torch.tensor([1., 2., 3.], dtype=torch.float64, requires_grad=True);
//   y = torch.softmax(x, -1); (y * torch.tensor([1., -1., .5], dtype=torch.float64))
//   .sum().backward(); print(y.tolist(), x.grad.tolist())
TEST(EngineExamplesTest, Softmax) {
  const TestResult r = Compute1(DType::kFloat64, "softmax", {1, 2, 3}, std::vector<LD>{1, -1, 0.5});
  const double y[] = {0.09003057317038045, 0.2447284710547976, 0.6652409557748218};
  const double dx[] = {0.07401210131275805, -0.2882711920250552, 0.21425909071229715};
  const double e = std::exp(1.0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(static_cast<double>(r.y[i]), y[i]) << i;
    EXPECT_DOUBLE_EQ(static_cast<double>(r.dx[i]), dx[i]) << i;
    EXPECT_NEAR(static_cast<double>(r.y[i]), std::pow(e, i + 1) / (e + e * e + e * e * e),
                1e-15);
  }
  // The same through float32: within float32 rounding.
  const TestResult f = Compute1(DType::kFloat32, "softmax", {1, 2, 3});
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(static_cast<float>(f.y[i]), y[i]) << i;
}

// torch: as above with torch.log_softmax.
TEST(EngineExamplesTest, LogSoftmax) {
  const TestResult r =
      Compute1(DType::kFloat64, "log_softmax", {1, 2, 3}, std::vector<LD>{1, -1, 0.5});
  const double y[] = {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804};
  const double dx[] = {0.9549847134148097, -1.1223642355273988, 0.1673795221125891};
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(static_cast<double>(r.y[i]), y[i]) << i;
    EXPECT_DOUBLE_EQ(static_cast<double>(r.dx[i]), dx[i]) << i;
  }
}

// log_softmax([60, -50]) at 60 is -log1p(exp(-110)) = -exp(-110) (1 - ...): a tiny value
// that a plain log(1 + exp(-110)) rounds to 0. Exact value, by hand:
//   python3 -c "import math; print(repr(-math.log1p(math.exp(-110))))"
TEST(EngineExamplesTest, LogSoftmaxKeepsTheLargestEntrysTinyResult) {
  const TestResult r = Compute1(DType::kFloat64, "log_softmax", {60, -50});
  EXPECT_DOUBLE_EQ(static_cast<double>(r.y[0]), -1.6889118802245324e-48);
  EXPECT_DOUBLE_EQ(static_cast<double>(r.y[1]), -110.0);
}

// torch: x = torch.tensor([-2., -1., 0., 1., 2.], dtype=torch.float64, requires_grad=True);
//   y = torch.nn.functional.gelu(x); y.sum().backward(); print(y.tolist(), x.grad.tolist())
// and the same with approximate='tanh'.
TEST(EngineExamplesTest, Gelu) {
  const double y[] = {-0.04550026389635842, -0.15865525393145702, 0.0, 0.841344746068543,
                      1.9544997361036416};
  const double dx[] = {-0.08523180107819692, -0.08331547058768635, 0.5, 1.0833154705876864,
                       1.085231801078197};
  const TestResult r = Compute1(DType::kFloat64, "gelu", {-2, -1, 0, 1, 2});
  for (int i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(static_cast<double>(r.y[i]), y[i]) << i;
    EXPECT_DOUBLE_EQ(static_cast<double>(r.dx[i]), dx[i]) << i;
  }
  // float32 against torch's float64 values: within float32 rounding. (torch's own float32
  // gelu(-2) is -0.0455001, 40 float32 ULP off; the engine does better.)
  const TestResult f = Compute1(DType::kFloat32, "gelu", {-2, -1, 0, 1, 2});
  for (int i = 0; i < 5; ++i) {
    EXPECT_FLOAT_EQ(static_cast<float>(f.y[i]), static_cast<float>(y[i])) << i;
    EXPECT_FLOAT_EQ(static_cast<float>(f.dx[i]), static_cast<float>(dx[i])) << i;
  }
  // torch computes the tanh form as 0.5 x (1 + tanh(u)), which cancels for x < 0 and
  // loses ~4 bits at x = -2 (it is 10 float64 ULP from the long-double value there), so
  // this comparison allows 1e-14 relative.
  const double ty[] = {-0.04540230591222494, -0.15880800939172324, 0.0, 0.8411919906082768,
                       1.954597694087775};
  const double tdx[] = {-0.0860992566236183, -0.08296408384578252, 0.5, 1.0829640838457826,
                        1.0860992566236183};
  const TestResult t = Compute1(DType::kFloat64, "gelu(approximate=tanh)", {-2, -1, 0, 1, 2});
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(static_cast<double>(t.y[i]), ty[i], 1e-14 * std::fabs(ty[i])) << i;
    EXPECT_NEAR(static_cast<double>(t.dx[i]), tdx[i], 1e-14 * std::fabs(tdx[i])) << i;
  }
}

// NaN in, NaN out and NaN gradient, including the selection-type activations where
// PyTorch returns 0 or g (DESIGN.md section 3).
TEST(EngineExamplesTest, NaNPropagatesThroughSelectionActivations) {
  const LD nan = std::numeric_limits<LD>::quiet_NaN();
  for (const char* spec : {"relu", "relu6", "hardtanh", "softshrink", "hardshrink",
                           "threshold(threshold=0.5, value=-1)", "hardsigmoid", "hardswish",
                           "leaky_relu", "prelu"}) {
    for (DType dtype : AllDTypes()) {
      const TestResult r = Compute1(dtype, spec, {nan, 1}, std::vector<LD>{2, 2});
      EXPECT_TRUE(std::isnan(r.y[0])) << spec << " " << DTypeName(dtype);
      EXPECT_TRUE(std::isnan(r.dx[0])) << spec << " " << DTypeName(dtype);
      EXPECT_FALSE(std::isnan(r.y[1])) << spec << " " << DTypeName(dtype);
    }
  }
}

}  // namespace
}  // namespace actserve
