// The real `actserve` binary, started as a separate process on a free port, driven by the
// real `actctl` binary (its stdout, stderr and exit code) and by the C++ SDK.
//
// Reference values come from PyTorch 1.13 and numpy 1.24 (Debian's python3-torch and
// python3-numpy), printed by:
//
//   /usr/bin/python3 -c '
//   import torch, numpy as np
//   x = torch.tensor([-2., -1., -0.5, 0., 0.5, 1., 2.], dtype=torch.float64,
//                    requires_grad=True)
//   y = torch.nn.functional.gelu(x); y.sum().backward()
//   print([f"{v:.17g}" for v in y.tolist()], [f"{v:.17g}" for v in x.grad.tolist()])
//   print([hex(v) for v in np.array(y.tolist()).astype(np.float16).view(np.uint16)])
//   print([hex(v & 0xffff) for v in y.detach().to(torch.bfloat16).view(torch.int16)])'
//
// (the float16 and bfloat16 references are the float64 results rounded to nearest-even by
// numpy and torch, and likewise for x.grad).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actserve/batch.h"
#include "actserve/client.h"
#include "actserve/tensor.h"
#include "client/sdk/channel.h"
#include "client/actctl/npy.h"
#include "gmock/gmock.h"
#include "grpcpp/channel.h"
#include "gtest/gtest.h"
#include "tests/client/actctl/svg_reader.h"
#include "tests/integration/subprocess.h"

namespace actserve {
namespace {

using ::actserve::integration::MakeWorkDir;
using ::actserve::integration::ProcessResult;
using ::actserve::integration::ReadWholeFile;
using ::actserve::integration::RunProcess;
using ::actserve::integration::ServerProcess;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

ProcessResult Actctl(const std::string& target, std::vector<std::string> args,
                     const std::string& dir) {
  args.insert(args.begin(), {ACTCTL_BINARY, "--target=" + target});
  return RunProcess(args, dir);
}

class ClientIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeWorkDir();
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(ACTSERVE_BINARY, dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  ProcessResult Actctl(std::vector<std::string> args) {
    return actserve::Actctl(server_->target(), std::move(args), dir_);
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
};

// The rows of actctl's compute table (the lines under the dashed rule), as numbers.
std::vector<std::vector<double>> TableRows(const std::string& out) {
  std::vector<std::vector<double>> rows;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!line.empty() && line.find_first_not_of("-+") == absl::string_view::npos) {
      in_table = true;
      continue;
    }
    if (!in_table || line.empty() || line.find('|') == absl::string_view::npos) continue;
    std::vector<double> row;
    for (absl::string_view cell : absl::StrSplit(line, '|')) {
      row.push_back(std::strtod(std::string(absl::StripAsciiWhitespace(cell)).c_str(), nullptr));
    }
    rows.push_back(row);
  }
  return rows;
}

std::vector<double> Column(const std::vector<std::vector<double>>& rows, size_t column) {
  std::vector<double> values;
  for (const std::vector<double>& row : rows) values.push_back(row.at(column));
  return values;
}

// Within `ulps` units in the last place of a `float` (or `double`) of |want|'s size.
template <typename T>
void ExpectClose(const std::vector<double>& got, const std::vector<double>& want, int ulps) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double tolerance =
        ulps * std::numeric_limits<T>::epsilon() * std::max(std::abs(want[i]), 1e-30);
    EXPECT_NEAR(got[i], want[i], tolerance) << "element " << i;
  }
}

const std::vector<double> kGeluX = {-2, -1, -0.5, 0, 0.5, 1, 2};
// PyTorch, float64 (see the top of this file).
const std::vector<double> kGeluY = {
    -0.045500263896358417, -0.15865525393145702, -0.15426876936299344, 0,
    0.34573123063700656,   0.84134474606854304,  1.9544997361036416};
const std::vector<double> kGeluDx = {
    -0.085231801078196917, -0.083315470587686347, 0.13250487534383712, 0.5,
    0.86749512465616285,   1.0833154705876864,    1.0852318010781969};
// float32 results are checked against PyTorch's float64 values, in float32 ULPs: PyTorch's
// own float32 CPU gelu is itself off by about 3.6e-6 relative at x = -2 (it prints
// -0.0455000997 where the exact value is -0.0455002639), from cancellation in
// 1 + erf(x / sqrt(2)), so its float32 output is no oracle there.
const std::vector<double> kGeluY32 = {kGeluY[0], kGeluY[1], kGeluY[3], kGeluY[5], kGeluY[6]};
const std::vector<double> kGeluDx32 = {kGeluDx[0], kGeluDx[1], kGeluDx[3], kGeluDx[5], kGeluDx[6]};
// The float64 results rounded to float16 (numpy) and bfloat16 (torch), as bit patterns.
const std::vector<uint16_t> kGeluYF16 = {0xa9d3, 0xb114, 0xb0f0, 0x0, 0x3588, 0x3abb, 0x3fd1};
const std::vector<uint16_t> kGeluDxF16 = {0xad74, 0xad55, 0x303d, 0x3800, 0x3af1, 0x3c55, 0x3c57};
const std::vector<uint16_t> kGeluYBF16 = {0xbd3a, 0xbe22, 0xbe1e, 0x0, 0x3eb1, 0x3f57, 0x3ffa};
const std::vector<uint16_t> kGeluDxBF16 = {0xbdaf, 0xbdab, 0x3e08, 0x3f00, 0x3f5e, 0x3f8b, 0x3f8b};
// x in float16 and bfloat16 (exact in both).
const std::vector<uint16_t> kGeluXF16 = {0xc000, 0xbc00, 0xb800, 0x0, 0x3800, 0x3c00, 0x4000};
const std::vector<uint16_t> kGeluXBF16 = {0xc000, 0xbf80, 0xbf00, 0x0, 0x3f00, 0x3f80, 0x4000};

// ---------------------------------------------------------------------------------------
// actctl

TEST_F(ClientIntegrationTest, ListShowsEveryActivationAndTheServer) {
  const ProcessResult list = Actctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  // The 24 names of DESIGN.md section 3.
  for (const char* name :
       {"relu",        "relu6",      "leaky_relu", "prelu",     "elu",        "celu",
        "selu",        "gelu",       "silu",       "mish",      "softplus",   "hardtanh",
        "hardsigmoid", "hardswish",  "sigmoid",    "tanh",      "logsigmoid", "softsign",
        "tanhshrink",  "softshrink", "hardshrink", "threshold", "softmax",    "log_softmax"}) {
    EXPECT_THAT(list.out, HasSubstr(absl::StrCat("\n", name, " "))) << name;
  }
  EXPECT_THAT(list.out, HasSubstr("24 activations"));
  EXPECT_THAT(list.out, HasSubstr("server:  actserve "));
  EXPECT_THAT(list.out, HasSubstr("dtypes:  float32, float64, float16, bfloat16"));
  EXPECT_THAT(list.out, HasSubstr("threads: 2"));
  EXPECT_THAT(list.out, HasSubstr("negative_slope=0.01"));
}

TEST_F(ClientIntegrationTest, ComputeReluPrintsOutputsAndGradients) {
  const ProcessResult relu = Actctl({"compute", "--activation=relu", "--values=-2,-1,0,1,2"});
  ASSERT_EQ(relu.exit_code, 0) << relu.err;
  EXPECT_THAT(relu.out, HasSubstr("x | y | dx"));
  const std::vector<std::vector<double>> rows = TableRows(relu.out);
  ASSERT_EQ(rows.size(), 5u) << relu.out;
  EXPECT_THAT(Column(rows, 0), ElementsAre(-2, -1, 0, 1, 2));
  EXPECT_THAT(Column(rows, 1), ElementsAre(0, 0, 0, 1, 2));
  EXPECT_THAT(Column(rows, 2), ElementsAre(0, 0, 0, 1, 1));  // ReLU'(0) = 0

  const ProcessResult forward =
      Actctl({"compute", "--activation=relu", "--values=-1,3", "--mode=forward"});
  ASSERT_EQ(forward.exit_code, 0) << forward.err;
  EXPECT_THAT(forward.out, Not(HasSubstr("dx")));
  EXPECT_THAT(Column(TableRows(forward.out), 1), ElementsAre(0, 3));
}

TEST_F(ClientIntegrationTest, ComputeGeluAgreesWithPyTorch) {
  const ProcessResult f32 = Actctl({"compute", "--activation=gelu", "--values=-2,-1,0,1,2"});
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  const std::vector<std::vector<double>> rows32 = TableRows(f32.out);
  ExpectClose<float>(Column(rows32, 1), kGeluY32, 2);
  ExpectClose<float>(Column(rows32, 2), kGeluDx32, 2);

  const ProcessResult f64 =
      Actctl({"compute", "--activation=gelu", "--dtype=float64", "--values=-2,-1,-0.5,0,0.5,1,2"});
  ASSERT_EQ(f64.exit_code, 0) << f64.err;
  const std::vector<std::vector<double>> rows64 = TableRows(f64.out);
  ExpectClose<double>(Column(rows64, 1), kGeluY, 4);
  ExpectClose<double>(Column(rows64, 2), kGeluDx, 4);
}

TEST_F(ClientIntegrationTest, ComputeReadsAndWritesNpyFiles) {
  // leaky_relu(0.2) on x = [[-2, -0.5], [0, 3]] with dy = [[1, 2], [3, 4]]:
  // y = [[-0.4, -0.1], [0, 3]]; dx = dy * (x > 0 ? 1 : 0.2) = [[0.2, 0.4], [0.6, 4]].
  const std::string x_path = dir_ + "/x.npy", dy_path = dir_ + "/dy.npy", y_path = dir_ + "/y.npy",
                    dx_path = dir_ + "/dx.npy";
  absl::StatusOr<Tensor> x = Tensor::FromDoubles(DType::kFloat64, {2, 2}, {-2, -0.5, 0, 3});
  absl::StatusOr<Tensor> dy = Tensor::FromDoubles(DType::kFloat64, {2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(x.ok() && dy.ok());
  ASSERT_TRUE(npy::WriteFile(x_path, *x).ok());
  ASSERT_TRUE(npy::WriteFile(dy_path, *dy).ok());

  const ProcessResult run =
      Actctl({"compute", "--activation=leaky_relu(negative_slope=0.2)", "--input=" + x_path,
              "--grad_output=" + dy_path, "--output=" + y_path, "--grad_input=" + dx_path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("wrote " + y_path));
  absl::StatusOr<Tensor> y = npy::ReadFile(y_path, {});
  absl::StatusOr<Tensor> dx = npy::ReadFile(dx_path, {});
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_EQ(y->dtype(), DType::kFloat64);
  EXPECT_THAT(y->shape(), ElementsAre(2, 2));
  ExpectClose<double>(y->ToDoubles(), {-0.4, -0.1, 0, 3}, 1);
  ExpectClose<double>(dx->ToDoubles(), {0.2, 0.4, 0.6, 4}, 1);

  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0) {
    const std::string check =
        absl::StrCat("/usr/bin/python3 -c 'import numpy as np; y = np.load(\"", y_path,
                     "\"); dx = np.load(\"", dx_path, "\"); ",
                     "assert y.dtype == np.float64 and y.shape == (2, 2), (y.dtype, y.shape); ",
                     "assert np.allclose(y, [[-0.4, -0.1], [0, 3]], rtol=1e-15, atol=0), y; ",
                     "assert np.allclose(dx, [[0.2, 0.4], [0.6, 4]], rtol=1e-15, atol=0), dx'");
    EXPECT_EQ(std::system(check.c_str()), 0) << check;
  }
}

TEST_F(ClientIntegrationTest, ComputeBfloat16NpyAndLargeInputSummary) {
  // '<u2' holds bfloat16 bits when asked for with --dtype=bfloat16.
  const std::string x_path = dir_ + "/x_bf16.npy", y_path = dir_ + "/y_bf16.npy";
  absl::StatusOr<Tensor> x = Tensor::FromDoubles(DType::kBFloat16, {7}, kGeluX);
  ASSERT_TRUE(x.ok());
  ASSERT_TRUE(npy::WriteFile(x_path, *x).ok());
  const ProcessResult refused = Actctl({"compute", "--activation=gelu", "--input=" + x_path});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("bfloat16"));
  const ProcessResult run = Actctl({"compute", "--activation=gelu", "--input=" + x_path,
                                    "--dtype=bfloat16", "--output=" + y_path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  absl::StatusOr<Tensor> y = npy::ReadFile(y_path, {/*uint16_as_bfloat16=*/true});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(y->Values<uint16_t>(), ElementsAreArray(kGeluYBF16));

  // A big input prints a summary instead of a table.
  std::vector<double> ramp(1000);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<double>(i) - 500;
  absl::StatusOr<Tensor> big = Tensor::FromDoubles(DType::kFloat32, {10, 100}, ramp);
  ASSERT_TRUE(big.ok());
  ASSERT_TRUE(npy::WriteFile(dir_ + "/big.npy", *big).ok());
  const ProcessResult summary =
      Actctl({"compute", "--activation=relu", "--input=" + dir_ + "/big.npy"});
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_THAT(summary.out, HasSubstr("x: shape [10,100] float32, 1000 elements, min -500, "
                                     "max 499"));
  EXPECT_THAT(summary.out, HasSubstr("y: shape [10,100] float32, 1000 elements, min 0, "
                                     "max 499"));
  EXPECT_THAT(summary.out, HasSubstr("dx: shape [10,100] float32, 1000 elements, min 0, "
                                     "max 1"));
}

TEST_F(ClientIntegrationTest, BadRequestsFailWithTheirMessage) {
  const ProcessResult unknown = Actctl({"compute", "--activation=gelux", "--values=1"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, HasSubstr("unknown activation 'gelux'"));

  const ProcessResult bad_parameter =
      Actctl({"compute", "--activation=softplus(beta=0)", "--values=1"});
  EXPECT_NE(bad_parameter.exit_code, 0);
  EXPECT_THAT(bad_parameter.err, HasSubstr("beta"));

  // Valid text, but the server finds dim out of range for a 1-D input.
  const ProcessResult server_error =
      Actctl({"compute", "--activation=softmax(dim=3)", "--values=1,2"});
  EXPECT_EQ(server_error.exit_code, 1);
  EXPECT_THAT(server_error.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(server_error.err, HasSubstr("dim"));

  const ProcessResult bad_values = Actctl({"compute", "--activation=relu", "--values=1,x"});
  EXPECT_EQ(bad_values.exit_code, 2);
  EXPECT_THAT(bad_values.err, HasSubstr("'x' is not a number"));

  const ProcessResult no_command = Actctl({});
  EXPECT_EQ(no_command.exit_code, 2);
  const ProcessResult bad_command = Actctl({"frobnicate"});
  EXPECT_EQ(bad_command.exit_code, 2);
  EXPECT_THAT(bad_command.err, HasSubstr("unknown command 'frobnicate'"));
}

TEST_F(ClientIntegrationTest, HealthUntilTheServerStopsOnSigterm) {
  const ProcessResult serving = Actctl({"health"});
  EXPECT_EQ(serving.exit_code, 0) << serving.err;
  EXPECT_EQ(serving.out, "SERVING\n");

  const std::string target = server_->target();
  EXPECT_EQ(server_->Stop(), 0) << ReadWholeFile(server_->log_path());

  const ProcessResult stopped = actserve::Actctl(target, {"health"}, dir_);
  EXPECT_NE(stopped.exit_code, 0);
  EXPECT_THAT(stopped.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(stopped.err, HasSubstr(target));
  const ProcessResult list = actserve::Actctl(target, {"list"}, dir_);
  EXPECT_NE(list.exit_code, 0);
}

// A curve of an SVG written by `actctl plot`, mapped back from pixels to data through
// the plot area's box and data ranges.
std::vector<std::pair<double, double>> PlotPoints(const std::string& svg,
                                                  const std::string& label) {
  using ::actserve::testing::SvgAttribute;
  using ::actserve::testing::SvgNumbers;
  const std::string area = "class=\"plot-area\"";
  const std::vector<double> x_range = SvgNumbers(SvgAttribute(svg, area, "data-x-range"));
  const std::vector<double> y_range = SvgNumbers(SvgAttribute(svg, area, "data-y-range"));
  const std::vector<double> box = SvgNumbers(
      absl::StrCat(SvgAttribute(svg, area, "x"), " ", SvgAttribute(svg, area, "y"), " ",
                   SvgAttribute(svg, area, "width"), " ", SvgAttribute(svg, area, "height")));
  std::vector<std::pair<double, double>> points;
  if (x_range.size() != 2 || y_range.size() != 2 || box.size() != 4) return points;
  for (const auto& [px, py] : actserve::testing::SvgPathPoints(svg, label)) {
    points.emplace_back(x_range[0] + (px - box[0]) / box[2] * (x_range[1] - x_range[0]),
                        y_range[0] + (box[1] + box[3] - py) / box[3] * (y_range[1] - y_range[0]));
  }
  return points;
}

TEST_F(ClientIntegrationTest, PlotWritesReluAgainstSoftplus) {
  const std::string svg_path = dir_ + "/relu-softplus.svg";
  const ProcessResult plot =
      Actctl({"plot", "--activation=relu", "--activation=softplus", "--range=-4,4",
              "--points=401", "--svg=" + svg_path});
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  EXPECT_EQ(plot.out, "wrote " + svg_path + ": relu, softplus on [-4, 4], 401 points\n");
  const std::string svg = ReadWholeFile(svg_path);
  EXPECT_TRUE(actserve::testing::IsWellFormedSvg(svg_path)) << svg;

  // x = -4 + 0.02 i. Pixels have two decimals: on a ~700 x ~420 pixel area over 8 x ~4.5
  // units, a point is within 1e-4 of its value.
  constexpr double kTolerance = 1e-4;
  const auto relu = PlotPoints(svg, "relu");
  const auto relu_slope = PlotPoints(svg, "relu\u2032");
  const auto softplus = PlotPoints(svg, "softplus");
  const auto softplus_slope = PlotPoints(svg, "softplus\u2032");
  for (const auto* curve : {&relu, &relu_slope, &softplus, &softplus_slope}) {
    ASSERT_EQ(curve->size(), 401u);
  }
  EXPECT_NEAR(relu[200].first, 0, kTolerance);
  EXPECT_NEAR(relu[200].second, 0, kTolerance);
  EXPECT_NEAR(relu[300].first, 2, kTolerance);
  EXPECT_NEAR(relu[300].second, 2, kTolerance);
  EXPECT_NEAR(relu[0].second, 0, kTolerance);
  EXPECT_NEAR(relu_slope[200].second, 0, kTolerance);  // ReLU'(0) = 0
  EXPECT_NEAR(relu_slope[201].second, 1, kTolerance);
  EXPECT_NEAR(softplus[200].second, std::log(2.0), kTolerance);
  EXPECT_NEAR(softplus_slope[200].second, 0.5, kTolerance);  // sigmoid(0)
  EXPECT_NEAR(softplus[400].second, std::log1p(std::exp(4.0)), kTolerance);
  // f solid, f' dashed; one colour per activation.
  using ::actserve::testing::SvgAttribute;
  EXPECT_EQ(SvgAttribute(svg, "data-label=\"softplus\u2032\"", "stroke-dasharray"), "7 5");
  EXPECT_EQ(SvgAttribute(svg, "data-label=\"softplus\"", "stroke-dasharray"), "");
  EXPECT_NE(SvgAttribute(svg, "data-label=\"relu\"", "stroke"),
            SvgAttribute(svg, "data-label=\"softplus\"", "stroke"));
}

TEST_F(ClientIntegrationTest, PlotTakesSpecsWithParametersSeparatedByCommas) {
  const std::string svg_path = dir_ + "/family.svg";
  const ProcessResult plot = Actctl(
      {"plot", "--activation=leaky_relu(negative_slope=0.2), elu(alpha=2);gelu(approximate=tanh)",
       "--range=-3,3", "--points=7", "--dtype=float32", "--title=ReLU's family",
       "--svg=" + svg_path});
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  const std::string svg = ReadWholeFile(svg_path);
  EXPECT_TRUE(actserve::testing::IsWellFormedSvg(svg_path));
  EXPECT_THAT(svg, HasSubstr(">ReLU's family</text>"));
  // x = -3, -2, ..., 3: leaky_relu(-3) = -0.6, elu(-1) = 2 (e^-1 - 1).
  const auto leaky = PlotPoints(svg, "leaky_relu(negative_slope=0.2)");
  const auto elu = PlotPoints(svg, "elu(alpha=2)");
  ASSERT_EQ(leaky.size(), 7u);
  ASSERT_EQ(elu.size(), 7u);
  EXPECT_NEAR(leaky[0].second, -0.6, 1e-4);
  EXPECT_NEAR(elu[2].second, 2 * std::expm1(-1.0), 1e-4);
  EXPECT_EQ(PlotPoints(svg, "gelu(approximate=tanh)\u2032").size(), 7u);
}

TEST_F(ClientIntegrationTest, PlotRefusesWhatItCannotDraw) {
  const ProcessResult softmax =
      Actctl({"plot", "--activation=relu;softmax", "--svg=" + dir_ + "/s.svg"});
  EXPECT_EQ(softmax.exit_code, 2);
  EXPECT_THAT(softmax.err, HasSubstr("elementwise"));
  const ProcessResult range = Actctl({"plot", "--activation=relu", "--range=4,-4"});
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_THAT(range.err, HasSubstr("--range"));
  const ProcessResult points = Actctl({"plot", "--activation=relu", "--points=1"});
  EXPECT_EQ(points.exit_code, 2);
  const ProcessResult unbalanced = Actctl({"plot", "--activation=elu(alpha=2,relu"});
  EXPECT_EQ(unbalanced.exit_code, 2);
  EXPECT_THAT(unbalanced.err, HasSubstr("unbalanced"));
  const ProcessResult unwritable =
      Actctl({"plot", "--activation=relu", "--svg=" + dir_ + "/no/such/dir/p.svg"});
  EXPECT_EQ(unwritable.exit_code, 1);
  EXPECT_THAT(unwritable.err, HasSubstr("cannot write"));
}

// ---------------------------------------------------------------------------------------
// The SDK over the real process.

TEST_F(ClientIntegrationTest, SdkTypedCallsForEveryDtype) {
  const Client client(server_->target());
  const int64_t shape[] = {7};

  const std::vector<double> x64 = kGeluX;
  absl::StatusOr<TypedResult<double>> f64 = client.Compute(x64, shape, "gelu");
  ASSERT_TRUE(f64.ok()) << f64.status();
  ExpectClose<double>(f64->output, kGeluY, 4);
  ExpectClose<double>(f64->grad_input, kGeluDx, 4);
  EXPECT_TRUE(f64->grad_weight.empty());

  const std::vector<float> x32 = {-2, -1, 0, 1, 2};
  const int64_t shape5[] = {5};
  absl::StatusOr<TypedResult<float>> f32 = client.Compute(x32, shape5, "gelu");
  ASSERT_TRUE(f32.ok()) << f32.status();
  ExpectClose<float>(std::vector<double>(f32->output.begin(), f32->output.end()), kGeluY32, 2);
  ExpectClose<float>(std::vector<double>(f32->grad_input.begin(), f32->grad_input.end()), kGeluDx32,
                     2);

  // dy scales the gradient: relu with dy = 3 gives dx = 3 where x > 0.
  const std::vector<float> dy = {3, 3, 3, 3, 3};
  absl::StatusOr<TypedResult<float>> backward =
      client.Compute(x32, shape5, "relu", Mode::kBackward, dy);
  ASSERT_TRUE(backward.ok()) << backward.status();
  EXPECT_TRUE(backward->output.empty());
  EXPECT_THAT(backward->grad_input, ElementsAre(0, 0, 0, 3, 3));

  absl::StatusOr<TypedResult<uint16_t>> f16 =
      client.Compute(DType::kFloat16, kGeluXF16, shape, "gelu");
  ASSERT_TRUE(f16.ok()) << f16.status();
  EXPECT_THAT(f16->output, ElementsAreArray(kGeluYF16));
  EXPECT_THAT(f16->grad_input, ElementsAreArray(kGeluDxF16));

  absl::StatusOr<TypedResult<uint16_t>> bf16 =
      client.Compute(DType::kBFloat16, kGeluXBF16, shape, "gelu", Mode::kForward);
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_THAT(bf16->output, ElementsAreArray(kGeluYBF16));
  EXPECT_TRUE(bf16->grad_input.empty());
  absl::StatusOr<TypedResult<uint16_t>> bf16_grad =
      client.Compute(DType::kBFloat16, kGeluXBF16, shape, "gelu", Mode::kBackward);
  ASSERT_TRUE(bf16_grad.ok()) << bf16_grad.status();
  EXPECT_THAT(bf16_grad->grad_input, ElementsAreArray(kGeluDxBF16));

  // The server's own validation comes back as its status and message.
  const int64_t matrix[] = {2, 2};
  absl::StatusOr<TypedResult<float>> bad_dim =
      client.Compute(std::vector<float>{1, 2, 3, 4}, matrix, "softmax(dim=2)");
  EXPECT_EQ(bad_dim.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_dim.status().message(), HasSubstr("items[0]"));
}

TEST_F(ClientIntegrationTest, SdkBatchWithPerChannelPrelu) {
  const Client client(server_->target());
  // x has shape [N=1, C=2, L=2]; channel 0 has weight 0.1, channel 1 weight 0.5.
  // y = x > 0 ? x : w_c * x; dx = x > 0 ? g : w_c * g (g = 1 here);
  // dw_c = sum over x <= 0 in channel c of x * g.
  const std::vector<float> x = {-1, 2, -4, -2};
  const std::vector<float> w = {0.1f, 0.5f};
  const int64_t shape[] = {1, 2, 2};
  const int64_t channels[] = {2};
  const std::vector<double> z = {-1, 0.5};
  const int64_t two[] = {2};
  Batch batch;
  batch
      .Add(MakeTensorView(x, shape), "prelu", Mode::kForwardBackward, std::nullopt,
           MakeTensorView(w, channels))
      .Add(MakeTensorView(z, two), "elu(alpha=2)", Mode::kForward);
  absl::StatusOr<std::vector<ItemOutput>> outputs = client.Compute(batch);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  ASSERT_EQ(outputs->size(), 2u);
  const ItemOutput& prelu = (*outputs)[0];
  ASSERT_TRUE(prelu.output.has_value() && prelu.grad_input.has_value() &&
              prelu.grad_weight.has_value());
  EXPECT_THAT(prelu.output->shape(), ElementsAre(1, 2, 2));
  EXPECT_THAT(prelu.output->Values<float>(), ElementsAre(-0.1f, 2.0f, -2.0f, -1.0f));
  EXPECT_THAT(prelu.grad_input->Values<float>(), ElementsAre(0.1f, 1.0f, 0.5f, 0.5f));
  EXPECT_THAT(prelu.grad_weight->shape(), ElementsAre(2));
  EXPECT_THAT(prelu.grad_weight->Values<float>(), ElementsAre(-1.0f, -6.0f));
  const ItemOutput& elu = (*outputs)[1];
  ASSERT_TRUE(elu.output.has_value());
  EXPECT_FALSE(elu.grad_input.has_value());
  ExpectClose<double>(elu.output->ToDoubles(), {2 * std::expm1(-1.0), 0.5}, 4);

  // An empty batch is valid and has no results.
  absl::StatusOr<std::vector<ItemOutput>> none = client.Compute(Batch());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_F(ClientIntegrationTest, SdkListActivationsAndHealth) {
  const Client client(server_->target());
  absl::StatusOr<ServiceDescription> description = client.ListActivations();
  ASSERT_TRUE(description.ok()) << description.status();
  EXPECT_EQ(description->activations.size(), 24u);
  EXPECT_FALSE(description->server.version.empty());
  EXPECT_THAT(description->server.dtypes,
              ElementsAre(DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16));
  EXPECT_EQ(description->server.threads, 2);
  const ActivationDescription* gelu = nullptr;
  for (const ActivationDescription& a : description->activations) {
    if (a.name == "gelu") gelu = &a;
  }
  ASSERT_NE(gelu, nullptr);
  ASSERT_EQ(gelu->parameters.size(), 1u);
  EXPECT_EQ(gelu->parameters[0].name, "approximate");
  EXPECT_EQ(gelu->parameters[0].default_text, "none");
  EXPECT_THAT(gelu->parameters[0].choices, ElementsAre("none", "tanh"));

  absl::StatusOr<HealthStatus> health = client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);
  absl::StatusOr<HealthStatus> service = client.Health("actserve.v1.ActivationService");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(*service, HealthStatus::kServing);
  EXPECT_EQ(client.Health("no.such.Service").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientIntegrationTest, SdkComputeStreamKeepsOrder) {
  const Client client(server_->target());
  // Batch i holds x = i - 10 (and, every fifth batch, a 256 Ki-element item too, so that
  // the stream carries more than the flow-control windows hold while both directions are
  // busy). relu(i - 10) and its gradient identify the batch.
  constexpr int kBatches = 30;
  constexpr int64_t kBig = 256 * 1024;
  std::vector<float> big(kBig);
  for (int64_t i = 0; i < kBig; ++i) big[i] = static_cast<float>(i % 7) - 3;
  const int64_t big_shape[] = {kBig};
  const int64_t one[] = {1};
  std::vector<std::vector<float>> xs(kBatches);
  std::vector<Batch> batches(kBatches);
  for (int i = 0; i < kBatches; ++i) {
    xs[i] = {static_cast<float>(i - 10)};
    batches[i].Add(MakeTensorView(xs[i], one), "relu");
    if (i % 5 == 0) batches[i].Add(MakeTensorView(big, big_shape), "relu", Mode::kForward);
  }
  absl::StatusOr<std::vector<std::vector<ItemOutput>>> outputs = client.ComputeStream(batches);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  ASSERT_EQ(outputs->size(), static_cast<size_t>(kBatches));
  for (int i = 0; i < kBatches; ++i) {
    const std::vector<ItemOutput>& items = (*outputs)[i];
    ASSERT_EQ(items.size(), i % 5 == 0 ? 2u : 1u) << "batch " << i;
    EXPECT_THAT(items[0].output->Values<float>(), ElementsAre(std::max(i - 10, 0)))
        << "batch " << i;
    EXPECT_THAT(items[0].grad_input->Values<float>(), ElementsAre(i > 10 ? 1 : 0)) << "batch " << i;
    if (i % 5 == 0) {
      const std::vector<float> y = items[1].output->Values<float>();
      ASSERT_EQ(y.size(), static_cast<size_t>(kBig));
      for (int64_t k = 0; k < kBig; k += 4099) EXPECT_EQ(y[k], std::max(big[k], 0.0f));
    }
  }

  // One bad batch fails the whole stream with the server's status.
  std::vector<Batch> with_bad(3);
  for (int i = 0; i < 3; ++i) {
    with_bad[i].Add(MakeTensorView(xs[i], one), i == 1 ? "softmax(dim=4)" : "relu");
  }
  absl::StatusOr<std::vector<std::vector<ItemOutput>>> failed = client.ComputeStream(with_bad);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
}

// Streams whose deadline passes mid-way, several at once on shared channels, must all
// return, with their results or DEADLINE_EXCEEDED. gRPC 1.51 loses a pending read now
// and then when a synchronous client's deadline passes while its reader thread waits
// and the call went through gRPC's retry filter (tests/server/test_server.h); the SDK's
// stream engine, on gRPC's callback API, has not shown it here. A watchdog fails the
// test instead of letting a hang stall the suite.
TEST_F(ClientIntegrationTest, SdkStreamsEndedByTheirDeadlineAlwaysReturn) {
  constexpr int64_t kElements = 256 * 1024;  // 1 MiB of float32 per batch or chunk
  std::vector<float> x(8 * kElements);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) - 6;
  const int64_t batch_shape[] = {kElements};
  const int64_t whole_shape[] = {8 * kElements};
  std::vector<Batch> batches(8);
  for (int i = 0; i < 8; ++i) {
    batches[i].Add(MakeTensorView(absl::MakeConstSpan(x).subspan(i * kElements, kElements),
                                  batch_shape),
                   "gelu");
  }
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 25;
  std::atomic<int> returned{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One client (one channel) per thread, as a program would keep it.
      ClientOptions options;
      options.deadline = absl::Milliseconds(3 + 5 * t);
      const Client client(server_->target(), options);
      for (int c = 0; c < kCallsPerThread; ++c) {
        absl::Status status;
        if (c % 2 == 0) {
          status = client.ComputeStream(batches).status();
        } else {
          status = client.ComputeChunked(MakeTensorView(x, whole_shape), "gelu",
                                         Mode::kForwardBackward, std::nullopt, std::nullopt,
                                         /*chunk_bytes=*/1 << 20)
                       .status();
        }
        EXPECT_TRUE(status.ok() || status.code() == absl::StatusCode::kDeadlineExceeded)
            << status;
        returned.fetch_add(1);
      }
    });
  }
  // Each call lasts at most its deadline plus the server's answer; minutes mean a hang.
  const absl::Time give_up = absl::Now() + absl::Minutes(2);
  while (returned.load() < kThreads * kCallsPerThread && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (returned.load() < kThreads * kCallsPerThread) {
    std::fprintf(stderr, "FAILED: %d of %d streams never returned after their deadline\n",
                 kThreads * kCallsPerThread - returned.load(), kThreads * kCallsPerThread);
    std::abort();  // the stuck threads cannot be joined
  }
  for (std::thread& thread : threads) thread.join();
}

TEST_F(ClientIntegrationTest, SdkComputeChunkedEqualsOneRequest) {
  const Client client(server_->target());
  // Reference: the whole tensor in one Compute. Chunks of 10000 bytes are 67 rows of 37
  // float32, so 1000 rows go as 15 pipelined requests.
  constexpr int64_t kRows = 1000, kCols = 37;
  std::vector<float> x(kRows * kCols), dy(kRows * kCols);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(static_cast<int64_t>(i % 101) - 50) / 8;
    dy[i] = static_cast<float>(i % 3) - 1;
  }
  const int64_t shape[] = {kRows, kCols};
  const TensorView x_view = MakeTensorView(x, shape), dy_view = MakeTensorView(dy, shape);
  for (const char* activation : {"gelu", "softmax(dim=1)", "softmax(dim=0)", "log_softmax"}) {
    Batch whole;
    whole.Add(x_view, activation, Mode::kForwardBackward, dy_view);
    absl::StatusOr<std::vector<ItemOutput>> expected = client.Compute(whole);
    ASSERT_TRUE(expected.ok()) << expected.status();
    absl::StatusOr<ItemOutput> chunked = client.ComputeChunked(
        x_view, activation, Mode::kForwardBackward, dy_view, std::nullopt, 10000);
    ASSERT_TRUE(chunked.ok()) << activation << ": " << chunked.status();
    ASSERT_TRUE(chunked->output.has_value() && chunked->grad_input.has_value());
    EXPECT_EQ(*chunked->output, *(*expected)[0].output) << activation;
    EXPECT_EQ(*chunked->grad_input, *(*expected)[0].grad_input) << activation;
    EXPECT_FALSE(chunked->grad_weight.has_value());
  }

  // Softmax along dimension 0 of a 3-dimensional tensor, named from the end: the chunks
  // are [rows, columns] blocks, which must be sent with dim 0, not the caller's -3.
  const int64_t shape3[] = {kRows, kCols / 37, kCols};
  const TensorView x3 = MakeTensorView(x, shape3), dy3 = MakeTensorView(dy, shape3);
  for (const char* activation : {"softmax(dim=-3)", "log_softmax(dim=-3)"}) {
    Batch whole;
    whole.Add(x3, activation, Mode::kForwardBackward, dy3);
    absl::StatusOr<std::vector<ItemOutput>> expected = client.Compute(whole);
    ASSERT_TRUE(expected.ok()) << expected.status();
    absl::StatusOr<ItemOutput> chunked =
        client.ComputeChunked(x3, activation, Mode::kForwardBackward, dy3, std::nullopt, 10000);
    ASSERT_TRUE(chunked.ok()) << activation << ": " << chunked.status();
    EXPECT_EQ(*chunked->output, *(*expected)[0].output) << activation;
    EXPECT_EQ(*chunked->grad_input, *(*expected)[0].grad_input) << activation;
  }

  // PReLU with one weight per channel (dim 1): the weight gradient is summed over chunks.
  const std::vector<float> w = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f,
                                1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f, 1.8f, 1.9f, 2.0f,
                                2.1f, 2.2f, 2.3f, 2.4f, 2.5f, 2.6f, 2.7f, 2.8f, 2.9f, 3.0f,
                                3.1f, 3.2f, 3.3f, 3.4f, 3.5f, 3.6f, 3.7f};
  const int64_t channels[] = {kCols};
  Batch whole;
  whole.Add(x_view, "prelu", Mode::kBackward, dy_view, MakeTensorView(w, channels));
  absl::StatusOr<std::vector<ItemOutput>> expected = client.Compute(whole);
  ASSERT_TRUE(expected.ok()) << expected.status();
  absl::StatusOr<ItemOutput> chunked = client.ComputeChunked(
      x_view, "prelu", Mode::kBackward, dy_view, MakeTensorView(w, channels), 10000);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_FALSE(chunked->output.has_value());
  EXPECT_EQ(*chunked->grad_input, *(*expected)[0].grad_input);
  ASSERT_TRUE(chunked->grad_weight.has_value());
  EXPECT_THAT(chunked->grad_weight->shape(), ElementsAre(kCols));
  ExpectClose<float>(chunked->grad_weight->ToDoubles(), (*expected)[0].grad_weight->ToDoubles(), 4);

  // A grad_output that does not match is refused before anything is sent.
  const int64_t other_shape[] = {kCols, kRows};
  EXPECT_EQ(client.ComputeChunked(x_view, "relu", Mode::kBackward, MakeTensorView(dy, other_shape))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// PReLU rows larger than a chunk: cut into runs of channel planes, or within a plane, each
// sent with its channels' weights. Outputs and gradients equal one Compute bit for bit;
// grad_weight equals a float64 sum computed here (dy > 0 and x <= 0 make every term the
// same sign, so the chunks' float32 partial sums cannot cancel).
TEST_F(ClientIntegrationTest, SdkComputeChunkedCutsPreluRowsLargerThanAChunk) {
  const Client client(server_->target());
  struct Case {
    std::vector<int64_t> shape;
    int64_t weights;  // 1: one weight of shape [1]
  };
  // Chunks of 10000 bytes hold 2500 float32: [2, 37, 300] goes as runs of 8 planes,
  // [1, 3, 5000] as half planes, [1, 30000] (one weight) as flat runs.
  for (const Case& c : {Case{{2, 37, 300}, 37}, Case{{1, 3, 5000}, 3}, Case{{1, 30000}, 1}}) {
    int64_t n = 1;
    for (int64_t d : c.shape) n *= d;
    std::vector<float> x(n), dy(n), w(c.weights);
    for (int64_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(i % 203 - 101) / 16;
      dy[i] = 0.5f + static_cast<float>(i % 3) / 4;
    }
    for (int64_t k = 0; k < c.weights; ++k) w[k] = 0.05f * static_cast<float>(k + 1);
    const int64_t weight_shape[] = {c.weights};
    const TensorView x_view = MakeTensorView(x, c.shape), dy_view = MakeTensorView(dy, c.shape);
    const TensorView w_view = MakeTensorView(w, weight_shape);
    const std::string label = ShapeToString(c.shape);

    Batch whole;
    whole.Add(x_view, "prelu", Mode::kForwardBackward, dy_view, w_view);
    absl::StatusOr<std::vector<ItemOutput>> expected = client.Compute(whole);
    ASSERT_TRUE(expected.ok()) << label << ": " << expected.status();
    absl::StatusOr<ItemOutput> chunked = client.ComputeChunked(
        x_view, "prelu", Mode::kForwardBackward, dy_view, w_view, 10000);
    ASSERT_TRUE(chunked.ok()) << label << ": " << chunked.status();
    EXPECT_EQ(*chunked->output, *(*expected)[0].output) << label;
    EXPECT_EQ(*chunked->grad_input, *(*expected)[0].grad_input) << label;

    const int64_t channels = c.weights > 1 ? c.shape[1] : 1;
    const int64_t plane = c.weights > 1 ? n / (c.shape[0] * channels) : n;
    std::vector<double> want(c.weights, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      if (x[i] <= 0) want[(i / plane) % channels] += static_cast<double>(x[i]) * dy[i];
    }
    ASSERT_TRUE(chunked->grad_weight.has_value()) << label;
    EXPECT_THAT(chunked->grad_weight->shape(), ElementsAre(c.weights)) << label;
    ExpectClose<float>(chunked->grad_weight->ToDoubles(), want, 4);
  }

  // Per-channel weights whose count is not dimension 1 are refused before anything is
  // sent (a chunk of planes would otherwise pick the wrong weights).
  std::vector<float> x(2 * 37 * 300, -1.0f);
  const std::vector<float> five(5, 0.25f);
  const int64_t shape[] = {2, 37, 300}, five_shape[] = {5};
  absl::StatusOr<ItemOutput> refused =
      client.ComputeChunked(MakeTensorView(x, shape), "prelu", Mode::kForward, std::nullopt,
                            MakeTensorView(five, five_shape), 10000);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("has 37 channels (dimension 1)"));
  // The server keeps serving.
  absl::StatusOr<ItemOutput> after = client.ComputeChunked(
      MakeTensorView(x, shape), "prelu", Mode::kForward, std::nullopt, std::nullopt, 10000);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->output->Values<float>()[0], -0.25f);
}

TEST_F(ClientIntegrationTest, SdkBalancesRoundRobinOverSeveralAddresses) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> second =
      ServerProcess::Start(ACTSERVE_BINARY, dir_);
  ASSERT_TRUE(second.ok()) << second.status();
  const std::string target = absl::StrCat("ipv4:", server_->target(), ",", (*second)->target());
  const ClientOptions options;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> made =
      client_internal::MakeChannel(target, options);
  ASSERT_TRUE(made.ok()) << made.status();
  const std::shared_ptr<grpc::Channel> channel = *std::move(made);
  const Client client(channel, options);
  const std::vector<float> x = {-1, 1};
  const int64_t shape[] = {2};
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<TypedResult<float>> r = client.Compute(x, shape, "relu");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(r->output, ElementsAre(0, 1));
  }
  EXPECT_EQ(channel->GetLoadBalancingPolicyName(), "round_robin");

  // With one server gone, calls go to the other (a call that still picked the stopped one
  // is retried on UNAVAILABLE).
  EXPECT_EQ((*second)->Stop(), 0);
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<TypedResult<float>> r = client.Compute(x, shape, "relu");
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // The DNS resolver's syntax works too.
  const Client dns(absl::StrCat("dns:///", server_->target()));
  absl::StatusOr<HealthStatus> health = dns.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);
}

}  // namespace
}  // namespace actserve
