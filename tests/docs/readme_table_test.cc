// README.md's generated tables: the activation table and the Open Inference Protocol's
// model table from the catalogue (the latter through the protocol's own metadata), and the
// accuracy table from the bounds (src/kernels/accuracy_bounds.h) and the measured maxima
// (bench/results/accuracy.md). Each test regenerates its table and fails, printing the
// table to paste, when the README has drifted.
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "src/activation_spec.h"
#include "src/catalogue.h"
#include "src/kernels/accuracy_bounds.h"
#include "server/inference/model.h"

namespace actserve {
namespace {

// A '|' inside a table cell must be escaped, even inside a code span.
std::string Cell(absl::string_view text) { return absl::StrReplaceAll(text, {{"|", "\\|"}}); }

std::string ParamsCell(const ActivationInfo& info) {
  std::string cell;
  for (const ParamInfo& param : info.params) {
    std::string value;
    if (param.required) {
      value = "required";
    } else if (param.type == ParamType::kChoice) {
      value = std::string(param.choices[static_cast<size_t>(param.default_value)]);
    } else {
      std::ostringstream number;
      number << param.default_value;
      value = number.str();
    }
    absl::StrAppend(&cell, cell.empty() ? "" : ", ", "`", param.name, "` = ", value);
    if (param.valid_range != "finite") absl::StrAppend(&cell, " (", param.valid_range, ")");
  }
  return cell.empty() ? "" : cell;
}

std::string ExpectedTable() {
  std::string table =
      "| name | parameters (default) | forward y | backward dx (g = dy) |\n"
      "|---|---|---|---|\n";
  for (const ActivationInfo& info : Catalogue()) {
    absl::StrAppend(&table, "| `", info.name, "` | ", ParamsCell(info), " | `", Cell(info.formula),
                    "` | `", Cell(info.gradient), "` |\n");
  }
  return table;
}

// The protocol's type of a parameter in the request's `parameters` map.
std::string OipParamType(const ParamInfo& param) {
  switch (param.type) {
    case ParamType::kReal: return "double or int64";
    case ParamType::kInteger: return "int64";
    case ParamType::kChoice: return absl::StrCat("string: ", absl::StrJoin(param.choices, " or "));
    case ParamType::kTensor: return "double (or the `weight` input)";
  }
  return "";
}

std::string ExpectedOipTable() {
  std::string table =
      "| model | inputs | outputs | parameters |\n"
      "|---|---|---|---|\n";
  for (const ActivationInfo& info : Catalogue()) {
    absl::StatusOr<server::inference::ModelMetadata> metadata =
        server::inference::GetModelMetadata(info.name, "");
    EXPECT_TRUE(metadata.ok()) << metadata.status();
    if (!metadata.ok()) continue;
    std::vector<std::string> inputs, outputs, params;
    for (const auto& input : metadata->inputs) {
      inputs.push_back(input.name == "x" ? "`x`" : absl::StrCat("`", input.name, "` (optional)"));
    }
    for (const auto& output : metadata->outputs) outputs.push_back(absl::StrCat("`", output.name, "`"));
    for (const ParamInfo& param : info.params) {
      params.push_back(absl::StrCat("`", param.name, "`: ", OipParamType(param)));
    }
    absl::StrAppend(&table, "| `", info.name, "` | ", absl::StrJoin(inputs, ", "), " | ",
                    absl::StrJoin(outputs, ", "), " | ", absl::StrJoin(params, "; "), " |\n");
  }
  return table;
}

std::string ReadFile(const char* path) {
  std::ifstream file(path);
  EXPECT_TRUE(file) << "cannot read " << path;
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// A row of bench/results/accuracy.md's table: the measured maxima of one activation.
struct Measured {
  std::string forward, backward, backward_tiny;
};

// The rows of accuracy.md's table, in its order: (activation text form, maxima).
std::vector<std::pair<std::string, Measured>> MeasuredRows(const std::string& markdown) {
  std::vector<std::pair<std::string, Measured>> rows;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    if (!absl::ConsumePrefix(&line, "| ")) continue;
    const std::vector<std::string> cells = absl::StrSplit(line, " | ");
    // activation, forward, at x, backward, at x, backward tiny region, ...
    double value;
    if (cells.size() < 6 || !absl::SimpleAtod(cells[1], &value)) continue;
    rows.push_back({cells[0], {cells[1], cells[3], cells[5]}});
  }
  return rows;
}

// The region where a gradient is small against the terms that cancel to make it, for the
// activations whose backward has one (the absolute bound applies there).
std::string NearZeroRegion(const ActivationSpec& spec) {
  switch (spec.kind) {
    case ActivationKind::kGelu:
      return spec.params[0] == static_cast<double>(GeluApproximate::kTanh)
                 ? "f': near x = -0.75"
                 : "f': near its zero at x = -0.75";
    case ActivationKind::kSilu:
      return "f': near x = -1.28";
    case ActivationKind::kMish:
      return "f': near x = -1.19";
    case ActivationKind::kHardswish:
      return "f': near x = -1.5";
    case ActivationKind::kSigmoid:
      return "f' = y(1 - y) for large x";
    case ActivationKind::kTanh:
      return "f' = 1 - y^2 for large \\|x\\|";
    default:
      return "";
  }
}

std::string ExpectedAccuracyTable(const std::string& accuracy_md) {
  std::string table =
      "| activation | forward, measured | forward, bound | backward (dy = 1), measured | "
      "backward, bound | near-zero region (absolute bound, eps * scale) |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& [name, measured] : MeasuredRows(accuracy_md)) {
    absl::StatusOr<ActivationSpec> spec = ParseActivationSpec(name);
    EXPECT_TRUE(spec.ok()) << name << ": " << spec.status();
    if (!spec.ok()) continue;
    const kernels::AccuracyBound bound = kernels::AccuracyBoundFor(*spec, DType::kFloat32);
    std::string near_zero = NearZeroRegion(*spec);
    if (!near_zero.empty()) {
      absl::StrAppend(&near_zero, ": ", measured.backward_tiny,
                      absl::StrFormat(" (<= %g)", bound.abs_eps));
    }
    absl::StrAppend(&table, "| `", name, "` | ", measured.forward, " | ",
                    absl::StrFormat("%g", bound.forward_ulp), " | ", measured.backward, " | ",
                    absl::StrFormat("%g", bound.backward_ulp), " | ", near_zero, " |\n");
  }
  return table;
}

TEST(ReadmeTest, ActivationTableMatchesCatalogue) {
  const std::string readme = ReadFile(ACTSERVE_README_PATH);
  const std::string expected = ExpectedTable();
  EXPECT_NE(readme.find(expected), std::string::npos)
      << "README.md's activation table differs from the catalogue. Paste this:\n"
      << expected;
}

TEST(ReadmeTest, OipModelTableMatchesCatalogue) {
  const std::string readme = ReadFile(ACTSERVE_README_PATH);
  const std::string expected = ExpectedOipTable();
  EXPECT_NE(readme.find(expected), std::string::npos)
      << "README.md's Open Inference Protocol model table differs from the catalogue. "
         "Paste this:\n"
      << expected;
}

// The accuracy table shows the bounds the tests assert and the maxima the sweep measured.
TEST(ReadmeTest, AccuracyTableMatchesBoundsAndSweep) {
  const std::string readme = ReadFile(ACTSERVE_README_PATH);
  const std::string expected = ExpectedAccuracyTable(ReadFile(ACTSERVE_ACCURACY_PATH));
  EXPECT_NE(readme.find(expected), std::string::npos)
      << "README.md's accuracy table differs from src/kernels/accuracy_bounds.h and "
         "bench/results/accuracy.md. Paste this:\n"
      << expected;
}

}  // namespace
}  // namespace actserve
