#include "client/actctl/cli_format.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace actserve {
namespace cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseValueListTest, ParsesNumbers) {
  absl::StatusOr<std::vector<double>> values = ParseValueList("-2,-1,0, 1 ,2.5,1e-3");
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_THAT(*values, ElementsAre(-2, -1, 0, 1, 2.5, 1e-3));
  absl::StatusOr<std::vector<double>> special = ParseValueList("nan,inf,-inf");
  ASSERT_TRUE(special.ok()) << special.status();
  EXPECT_TRUE(std::isnan((*special)[0]));
  EXPECT_EQ((*special)[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ((*special)[2], -std::numeric_limits<double>::infinity());
}

TEST(ParseValueListTest, NamesTheBadEntry) {
  absl::StatusOr<std::vector<double>> values = ParseValueList("1,2,x3");
  EXPECT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("entry 2 'x3'"));
  EXPECT_FALSE(ParseValueList("").ok());
  EXPECT_FALSE(ParseValueList("1,,2").ok());
}

TEST(ParseFlagsTest, ModesAndDtypes) {
  EXPECT_EQ(*ParseMode("forward"), Mode::kForward);
  EXPECT_EQ(*ParseMode("backward"), Mode::kBackward);
  EXPECT_EQ(*ParseMode("forward_backward"), Mode::kForwardBackward);
  EXPECT_THAT(ParseMode("both").status().message(), HasSubstr("forward_backward"));
  EXPECT_EQ(*ParseDTypeFlag("bfloat16"), DType::kBFloat16);
  EXPECT_EQ(*ParseDTypeFlag("float64"), DType::kFloat64);
  EXPECT_EQ(ParseDTypeFlag("int8").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormatNumberTest, ShortestTextThatReadsBackExactly) {
  EXPECT_EQ(FormatNumber(0.1f, DType::kFloat32), "0.1");
  EXPECT_EQ(FormatNumber(0.1, DType::kFloat64), "0.1");
  EXPECT_EQ(FormatNumber(1.0 / 3.0, DType::kFloat64), "0.3333333333333333");
  EXPECT_EQ(FormatNumber(1.0f / 3.0f, DType::kFloat32), "0.33333334");
  EXPECT_EQ(FormatNumber(0.0999755859375, DType::kFloat16), "0.1");  // 0x2E66
  EXPECT_EQ(FormatNumber(-2, DType::kFloat32), "-2");
  EXPECT_EQ(FormatNumber(-500, DType::kFloat32), "-500");
  EXPECT_EQ(FormatNumber(1e20, DType::kFloat64), "1e+20");
  EXPECT_EQ(FormatNumber(1.5e-7, DType::kFloat64), "1.5e-07");
  EXPECT_EQ(FormatNumber(std::nan(""), DType::kFloat32), "nan");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity(), DType::kFloat64), "-inf");
}

TEST(FormatTableTest, RightAlignsColumns) {
  EXPECT_EQ(FormatTable({"x", "y"}, {{"-2", "0"}, {"10", "1.5"}}),
            " x |   y\n"
            "---+----\n"
            "-2 |   0\n"
            "10 | 1.5\n");
}

TEST(FormatComputeTableTest, OneRowPerElement) {
  absl::StatusOr<Tensor> x = Tensor::FromDoubles(DType::kFloat32, {2}, {-1, 2});
  absl::StatusOr<Tensor> y = Tensor::FromDoubles(DType::kFloat32, {2}, {0, 2});
  absl::StatusOr<Tensor> dx = Tensor::FromDoubles(DType::kFloat32, {2}, {0, 1});
  ASSERT_TRUE(x.ok() && y.ok() && dx.ok());
  EXPECT_EQ(FormatComputeTable(*x, *y, *dx),
            " x | y | dx\n"
            "---+---+---\n"
            "-1 | 0 |  0\n"
            " 2 | 2 |  1\n");
  EXPECT_EQ(FormatComputeTable(*x, std::nullopt, *dx),
            " x | dx\n"
            "---+---\n"
            "-1 |  0\n"
            " 2 |  1\n");
}

TEST(FormatComputeSummaryTest, StatisticsOfFiniteElements) {
  absl::StatusOr<Tensor> x = Tensor::FromDoubles(
      DType::kFloat64, {2, 2}, {-1, 3, std::nan(""), std::numeric_limits<double>::infinity()});
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(FormatComputeSummary(*x, std::nullopt, std::nullopt),
            "x: shape [2,2] float64, 4 elements, min -1, max 3, mean 1, 1 NaN, 1 infinite\n");
}

TEST(FormatServiceDescriptionTest, ServerBlockAndActivationRows) {
  ServiceDescription description;
  description.server.version = "0.1.0";
  description.server.dtypes = {DType::kFloat32, DType::kBFloat16};
  description.server.simd_target = "AVX2";
  description.server.threads = 4;
  description.server.max_message_bytes = 1024;
  ActivationDescription leaky;
  leaky.name = "leaky_relu";
  leaky.formula = "x > 0 ? x : negative_slope * x";
  leaky.parameters.push_back({"negative_slope", "real", false, "0.01", "", {}});
  ActivationDescription threshold;
  threshold.name = "threshold";
  threshold.formula = "x <= threshold ? value : x";
  threshold.parameters.push_back({"threshold", "real", true, "", "finite", {}});
  threshold.parameters.push_back({"value", "real", true, "", "", {}});
  ActivationDescription gelu;
  gelu.name = "gelu";
  gelu.parameters.push_back({"approximate", "choice", false, "none", "", {"none", "tanh"}});
  description.activations = {leaky, threshold, gelu};

  EXPECT_EQ(FormatParameters(leaky), "negative_slope=0.01");
  EXPECT_EQ(FormatParameters(threshold), "threshold (required; finite), value (required)");
  EXPECT_EQ(FormatParameters(gelu), "approximate=none (none or tanh)");
  EXPECT_EQ(FormatParameters(ActivationDescription()), "-");

  const std::string text = FormatServiceDescription(description);
  EXPECT_THAT(text, HasSubstr("server:  actserve 0.1.0\n"));
  EXPECT_THAT(text, HasSubstr("dtypes:  float32, bfloat16\n"));
  EXPECT_THAT(text, HasSubstr("simd:    AVX2\n"));
  EXPECT_THAT(text, HasSubstr("threads: 4\n"));
  EXPECT_THAT(text, HasSubstr("max_message_bytes 1024, max_elements unlimited, "
                              "max_inflight unlimited"));
  EXPECT_THAT(text, HasSubstr("leaky_relu | negative_slope=0.01"));
  EXPECT_THAT(text, HasSubstr("| x > 0 ? x : negative_slope * x\n"));
  EXPECT_THAT(text, HasSubstr("3 activations\n"));
}

TEST(SplitActivationListTest, SplitsAtTopLevelCommasAndSemicolons) {
  EXPECT_THAT(*SplitActivationList("relu"), ElementsAre("relu"));
  EXPECT_THAT(*SplitActivationList("relu,softplus"), ElementsAre("relu", "softplus"));
  EXPECT_THAT(*SplitActivationList(" relu , softplus(beta=2, threshold=10); elu(alpha=0.5) "),
              ElementsAre("relu", "softplus(beta=2, threshold=10)", "elu(alpha=0.5)"));
  EXPECT_THAT(*SplitActivationList("threshold(threshold=0.1,value=20);gelu(approximate=tanh)"),
              ElementsAre("threshold(threshold=0.1,value=20)", "gelu(approximate=tanh)"));
}

TEST(SplitActivationListTest, RefusesEmptyEntriesAndUnbalancedParentheses) {
  EXPECT_EQ(SplitActivationList("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(SplitActivationList("relu,,elu").status().message(),
              HasSubstr("empty activation at character 6"));
  EXPECT_EQ(SplitActivationList("relu,").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(SplitActivationList("elu(alpha=1").status().message(), HasSubstr("unbalanced '('"));
  EXPECT_THAT(SplitActivationList("elu),relu").status().message(),
              HasSubstr("unbalanced ')' at character 4"));
}

TEST(ParseRangeTest, TwoIncreasingFiniteNumbers) {
  absl::StatusOr<std::pair<double, double>> range = ParseRange("-4,4");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->first, -4);
  EXPECT_EQ(range->second, 4);
  EXPECT_EQ(ParseRange(" -0.5 , 1e1 ")->second, 10);
  for (const char* bad : {"", "4", "4,-4", "1,1", "0,inf", "nan,1", "1,2,3", "a,b"}) {
    EXPECT_EQ(ParseRange(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace cli
}  // namespace actserve
