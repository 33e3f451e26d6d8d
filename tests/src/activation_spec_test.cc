// src/activation_spec.h: the text form parses and formats back for every activation, with
// defaults and with other values; every malformed or out-of-range spec is InvalidArgument
// with a message naming the activation and the parameter.
#include "src/activation_spec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/catalogue.h"

namespace actserve {
namespace {

using ::testing::HasSubstr;

TEST(ActivationSpecTest, DefaultsRoundTripForEveryActivation) {
  for (const ActivationInfo& info : Catalogue()) {
    bool required = false;
    for (const ParamInfo& p : info.params) required |= p.required;
    if (required) continue;
    absl::StatusOr<ActivationSpec> spec = ParseActivationSpec(info.name);
    ASSERT_TRUE(spec.ok()) << info.name << ": " << spec.status();
    EXPECT_EQ(spec->kind, info.kind);
    for (size_t i = 0; i < info.params.size(); ++i) {
      EXPECT_EQ(spec->params[i], info.params[i].default_value) << info.name;
      EXPECT_EQ(spec->Param(info.params[i].name), info.params[i].default_value) << info.name;
    }
    // Defaults are left out of the canonical form.
    EXPECT_EQ(FormatActivationSpec(*spec), info.name);
    // The catalogue's example parses.
    EXPECT_TRUE(ParseActivationSpec(info.example).ok()) << info.example;
  }
}

TEST(ActivationSpecTest, NonDefaultValuesRoundTrip) {
  const char* const kCanonical[] = {
      "leaky_relu(negative_slope=0.2)",
      "prelu(weight=0.1)",
      "elu(alpha=0.5)",
      "celu(alpha=2)",
      "celu(alpha=-1.5)",
      "gelu(approximate=tanh)",
      "softplus(beta=2, threshold=10)",
      "softplus(beta=-0.5)",
      "softplus(threshold=1e+30)",
      "hardtanh(min_val=-2, max_val=3)",
      "hardtanh(min_val=0.5, max_val=0.5)",
      "softshrink(lambd=1)",
      "softshrink(lambd=0)",
      "hardshrink(lambd=0.25)",
      "threshold(threshold=0.5, value=-1)",
      "threshold(threshold=0, value=0)",
      "softmax(dim=1)",
      "log_softmax(dim=0)",
      "softmax(dim=-3)",
  };
  for (const char* text : kCanonical) {
    absl::StatusOr<ActivationSpec> spec = ParseActivationSpec(text);
    ASSERT_TRUE(spec.ok()) << text << ": " << spec.status();
    const std::string formatted = FormatActivationSpec(*spec);
    absl::StatusOr<ActivationSpec> again = ParseActivationSpec(formatted);
    ASSERT_TRUE(again.ok()) << formatted;
    EXPECT_EQ(*again, *spec) << text << " -> " << formatted;
  }
  // Exact canonical strings for the header's examples.
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("elu(alpha=0.5)")), "elu(alpha=0.5)");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("gelu(approximate=tanh)")),
            "gelu(approximate=tanh)");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("softplus(beta=2, threshold=10)")),
            "softplus(beta=2, threshold=10)");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("leaky_relu(negative_slope=0.2)")),
            "leaky_relu(negative_slope=0.2)");
  // Shortest round-trip numbers: 0.1 stays 0.1, a value needing 17 digits keeps them.
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("elu(alpha=0.1)")), "elu(alpha=0.1)");
  const ActivationSpec precise = *ParseActivationSpec("elu(alpha=0.30000000000000004)");
  EXPECT_EQ(precise.Param("alpha"), 0.30000000000000004);
  EXPECT_EQ(*ParseActivationSpec(FormatActivationSpec(precise)), precise);
  // Defaults given explicitly are dropped; required ones are always written.
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("elu(alpha=1)")), "elu");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("softplus(beta=1, threshold=10)")),
            "softplus(threshold=10)");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("threshold(threshold=0, value=0)")),
            "threshold(threshold=0, value=0)");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("gelu(approximate=none)")), "gelu");
  EXPECT_EQ(FormatActivationSpec(*ParseActivationSpec("softmax(dim=-1)")), "softmax");
}

TEST(ActivationSpecTest, ParsedValues) {
  const ActivationSpec s = *ParseActivationSpec("softplus(beta=2, threshold=10)");
  EXPECT_EQ(s.kind, ActivationKind::kSoftplus);
  EXPECT_EQ(s.Param("beta"), 2);
  EXPECT_EQ(s.Param("threshold"), 10);
  const ActivationSpec t = *ParseActivationSpec("threshold(value=-1, threshold=0.5)");
  EXPECT_EQ(t.Param("threshold"), 0.5);  // any order in the text
  EXPECT_EQ(t.Param("value"), -1);
  EXPECT_EQ(t.params[0], 0.5);  // stored in catalogue order
  EXPECT_EQ(ParseActivationSpec("gelu(approximate=tanh)")->Param("approximate"),
            static_cast<double>(GeluApproximate::kTanh));
  EXPECT_EQ(ParseActivationSpec("softmax(dim=2)")->Param("dim"), 2);
  EXPECT_EQ(ParseActivationSpec("relu()")->kind, ActivationKind::kRelu);
}

TEST(ActivationSpecTest, WhitespaceAndQuotedChoices) {
  const ActivationSpec want = *ParseActivationSpec("softplus(beta=2, threshold=10)");
  for (const char* text : {"  softplus ( beta = 2 , threshold = 10 )  ",
                           "softplus(beta=2,threshold=10)", "\tsoftplus(beta=2,\tthreshold=10)"}) {
    absl::StatusOr<ActivationSpec> s = ParseActivationSpec(text);
    ASSERT_TRUE(s.ok()) << "'" << text << "': " << s.status();
    EXPECT_EQ(*s, want) << text;
  }
  const ActivationSpec tanh_form = *ParseActivationSpec("gelu(approximate=tanh)");
  EXPECT_EQ(*ParseActivationSpec("gelu(approximate='tanh')"), tanh_form);
  EXPECT_EQ(*ParseActivationSpec("gelu(approximate=\"tanh\")"), tanh_form);
  EXPECT_EQ(*ParseActivationSpec("gelu( approximate = 'tanh' )"), tanh_form);
  EXPECT_EQ(*ParseActivationSpec(" relu "), *ParseActivationSpec("relu"));
}

void ExpectError(const char* text, const std::vector<std::string>& parts) {
  absl::StatusOr<ActivationSpec> s = ParseActivationSpec(text);
  ASSERT_FALSE(s.ok()) << "'" << text << "' parsed";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << text;
  for (const std::string& p : parts) {
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(p)) << "'" << text << "'";
  }
}

TEST(ActivationSpecTest, Errors) {
  ExpectError("foo", {"foo"});
  ExpectError("", {});
  ExpectError("Relu", {"Relu"});
  ExpectError("relu(alpha=1)", {"relu", "alpha"});
  ExpectError("elu(alpha=1, alpha=2)", {"elu", "alpha"});
  ExpectError("threshold(threshold=1)", {"threshold", "value"});
  ExpectError("threshold(value=1)", {"threshold"});
  ExpectError("threshold", {"threshold"});
  ExpectError("softplus(beta=0)", {"softplus", "beta"});
  ExpectError("celu(alpha=0)", {"celu", "alpha"});
  ExpectError("hardtanh(min_val=2, max_val=1)", {"hardtanh", "min_val"});
  ExpectError("hardtanh(min_val=2)", {"hardtanh", "min_val"});  // > default max_val 1
  ExpectError("softshrink(lambd=-1)", {"softshrink", "lambd"});
  ExpectError("hardshrink(lambd=-0.5)", {"hardshrink", "lambd"});
  ExpectError("elu(alpha=abc)", {"elu", "alpha"});
  ExpectError("elu(alpha=)", {"elu", "alpha"});
  ExpectError("elu(alpha=1x)", {"elu", "alpha"});
  ExpectError("elu(alpha=nan)", {"elu", "alpha"});
  ExpectError("elu(alpha=inf)", {"elu", "alpha"});
  ExpectError("elu(alpha=-inf)", {"elu", "alpha"});
  ExpectError("elu(alpha=1e999)", {"elu", "alpha"});
  ExpectError("softmax(dim=1.5)", {"softmax", "dim"});
  ExpectError("softmax(dim=3000000000)", {"softmax", "dim"});
  ExpectError("gelu(approximate=foo)", {"gelu", "approximate"});
  ExpectError("gelu(approximate='tanh)", {"gelu"});
  ExpectError("relu)", {});
  ExpectError("relu(", {});
  ExpectError("elu(alpha=1", {});
  ExpectError("elu(alpha=1)x", {});
  ExpectError("elu(alpha=1) elu", {});
  ExpectError("elu(alpha 1)", {});
  ExpectError("elu(alpha=1,)", {});
  ExpectError("elu(=1)", {});
  ExpectError("relu relu", {});
}

TEST(ActivationSpecTest, MakeAndValidate) {
  absl::StatusOr<ActivationSpec> s =
      MakeActivationSpec(ActivationKind::kHardtanh, {{"max_val", 3}, {"min_val", -2}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->Param("min_val"), -2);
  EXPECT_EQ(s->Param("max_val"), 3);
  EXPECT_TRUE(ValidateActivationSpec(*s).ok());

  absl::Status e = MakeActivationSpec(ActivationKind::kSoftplus, {{"beta", 0}}).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.message()), HasSubstr("softplus: beta"));  // starts with the name
  e = MakeActivationSpec(ActivationKind::kRelu, {{"negative_slope", 1}}).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.message()), HasSubstr("negative_slope"));
  e = MakeActivationSpec(ActivationKind::kElu, {{"alpha", 1}, {"alpha", 1}}).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument);
  e = MakeActivationSpec(ActivationKind::kThreshold, {{"threshold", 1}}).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.message()), HasSubstr("value"));
  e = MakeActivationSpec(ActivationKind::kGelu, {{"approximate", 2}}).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument);
  e = MakeActivationSpec(ActivationKind::kSoftmax, {{"dim", 0.5}}).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument);

  // Specs built by hand, past the constructors.
  struct Bad {
    ActivationKind kind;
    double p0, p1;
    const char* param;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Bad bad[] = {
      {ActivationKind::kSoftplus, 0, 20, "beta"},
      {ActivationKind::kSoftplus, 1, nan, "threshold"},
      {ActivationKind::kCelu, 0, 0, "alpha"},
      {ActivationKind::kElu, inf, 0, "alpha"},
      {ActivationKind::kHardtanh, 2, 1, "min_val"},
      {ActivationKind::kSoftshrink, -1, 0, "lambd"},
      {ActivationKind::kSoftmax, 1.5, 0, "dim"},
      {ActivationKind::kSoftmax, 3e9, 0, "dim"},
      {ActivationKind::kGelu, 2, 0, "approximate"},
      {ActivationKind::kGelu, -1, 0, "approximate"},
      {ActivationKind::kLeakyRelu, nan, 0, "negative_slope"},
  };
  for (const Bad& b : bad) {
    ActivationSpec spec;
    spec.kind = b.kind;
    spec.params = {b.p0, b.p1};
    const absl::Status st = ValidateActivationSpec(spec);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << b.param;
    EXPECT_THAT(std::string(st.message()), HasSubstr(b.param));
    EXPECT_THAT(std::string(st.message()), HasSubstr(GetActivationInfo(b.kind).name));
  }
}

}  // namespace
}  // namespace actserve
