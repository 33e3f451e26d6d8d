// src/catalogue.h: the catalogue lists the 24 activations in wire order with PyTorch's
// parameter names and defaults.
#include "src/catalogue.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace actserve {
namespace {

TEST(CatalogueTest, TwentyFourEntriesInKindOrderWithUniqueNames) {
  const char* const kNames[] = {
      "relu",     "relu6",      "leaky_relu",  "prelu",     "elu",        "celu",
      "selu",     "gelu",       "silu",        "mish",      "softplus",   "hardtanh",
      "hardsigmoid", "hardswish", "sigmoid",   "tanh",      "logsigmoid", "softsign",
      "tanhshrink", "softshrink", "hardshrink", "threshold", "softmax",   "log_softmax"};
  ASSERT_EQ(Catalogue().size(), static_cast<size_t>(kNumActivations));
  ASSERT_EQ(kNumActivations, 24);
  std::set<std::string> names;
  for (int i = 0; i < kNumActivations; ++i) {
    const ActivationInfo& info = Catalogue()[i];
    EXPECT_EQ(static_cast<int>(info.kind), i);
    EXPECT_EQ(info.name, kNames[i]);
    EXPECT_TRUE(names.insert(std::string(info.name)).second) << info.name;
    EXPECT_EQ(&GetActivationInfo(info.kind), &info);
    EXPECT_EQ(FindActivation(info.name), &info);
    EXPECT_LE(info.params.size(), static_cast<size_t>(kMaxParams));
    EXPECT_FALSE(info.description.empty()) << info.name;
    EXPECT_FALSE(info.formula.empty()) << info.name;
    EXPECT_FALSE(info.gradient.empty()) << info.name;
    EXPECT_FALSE(info.example.empty()) << info.name;
    EXPECT_EQ(info.elementwise, info.kind != ActivationKind::kSoftmax &&
                                    info.kind != ActivationKind::kLogSoftmax)
        << info.name;
    for (const ParamInfo& p : info.params) {
      EXPECT_EQ(FindParam(info, p.name), &p - info.params.data());
      EXPECT_EQ(p.type == ParamType::kChoice, !p.choices.empty()) << p.name;
    }
    EXPECT_EQ(FindParam(info, "no_such_param"), -1);
  }
  EXPECT_EQ(FindActivation("Relu"), nullptr);
  EXPECT_EQ(FindActivation("swish"), nullptr);
  EXPECT_EQ(FindActivation(""), nullptr);
}

struct ExpectedParam {
  const char* activation;
  const char* name;
  ParamType type;
  bool required;
  double default_value;
  ParamConstraint constraint;
};

// torch.nn.functional's defaults; prelu's is torch.nn.PReLU's initial weight.
TEST(CatalogueTest, ParametersAndDefaultsArePyTorchs) {
  const ExpectedParam kParams[] = {
      {"leaky_relu", "negative_slope", ParamType::kReal, false, 0.01, ParamConstraint::kAny},
      {"prelu", "weight", ParamType::kTensor, false, 0.25, ParamConstraint::kAny},
      {"elu", "alpha", ParamType::kReal, false, 1.0, ParamConstraint::kAny},
      {"celu", "alpha", ParamType::kReal, false, 1.0, ParamConstraint::kNonZero},
      {"gelu", "approximate", ParamType::kChoice, false, 0, ParamConstraint::kAny},
      {"softplus", "beta", ParamType::kReal, false, 1.0, ParamConstraint::kNonZero},
      {"softplus", "threshold", ParamType::kReal, false, 20.0, ParamConstraint::kAny},
      {"hardtanh", "min_val", ParamType::kReal, false, -1.0, ParamConstraint::kAny},
      {"hardtanh", "max_val", ParamType::kReal, false, 1.0, ParamConstraint::kAny},
      {"softshrink", "lambd", ParamType::kReal, false, 0.5, ParamConstraint::kNonNegative},
      {"hardshrink", "lambd", ParamType::kReal, false, 0.5, ParamConstraint::kNonNegative},
      {"threshold", "threshold", ParamType::kReal, true, 0, ParamConstraint::kAny},
      {"threshold", "value", ParamType::kReal, true, 0, ParamConstraint::kAny},
      {"softmax", "dim", ParamType::kInteger, false, -1, ParamConstraint::kAny},
      {"log_softmax", "dim", ParamType::kInteger, false, -1, ParamConstraint::kAny},
  };
  size_t total = 0;
  for (const ActivationInfo& info : Catalogue()) total += info.params.size();
  EXPECT_EQ(total, std::size(kParams)) << "a parameter is missing from this test or extra";
  for (const ExpectedParam& e : kParams) {
    const ActivationInfo* info = FindActivation(e.activation);
    ASSERT_NE(info, nullptr) << e.activation;
    const int i = FindParam(*info, e.name);
    ASSERT_GE(i, 0) << e.activation << "." << e.name;
    const ParamInfo& p = info->params[i];
    EXPECT_EQ(p.type, e.type) << e.activation << "." << e.name;
    EXPECT_EQ(p.required, e.required) << e.activation << "." << e.name;
    if (!e.required) EXPECT_EQ(p.default_value, e.default_value) << e.activation << "." << e.name;
    EXPECT_EQ(p.constraint, e.constraint) << e.activation << "." << e.name;
  }
  // Parameter order is the spec order: softplus(beta, threshold), hardtanh(min_val, max_val),
  // threshold(threshold, value).
  EXPECT_EQ(FindParam(*FindActivation("softplus"), "beta"), 0);
  EXPECT_EQ(FindParam(*FindActivation("hardtanh"), "min_val"), 0);
  EXPECT_EQ(FindParam(*FindActivation("threshold"), "threshold"), 0);
  const ParamInfo& approx = FindActivation("gelu")->params[0];
  ASSERT_EQ(approx.choices.size(), 2u);
  EXPECT_EQ(approx.choices[0], "none");
  EXPECT_EQ(approx.choices[1], "tanh");
  // selu's alpha and scale are constants, not parameters, as in PyTorch.
  EXPECT_TRUE(FindActivation("selu")->params.empty());
  EXPECT_TRUE(FindActivation("relu")->params.empty());
}

}  // namespace
}  // namespace actserve
