// README.md's activation table is generated from the catalogue: this test regenerates it
// and fails, printing the table to paste, when the README has drifted.
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "src/catalogue.h"

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

TEST(ReadmeTest, ActivationTableMatchesCatalogue) {
  std::ifstream file(ACTSERVE_README_PATH);
  ASSERT_TRUE(file) << "cannot read " << ACTSERVE_README_PATH;
  std::stringstream contents;
  contents << file.rdbuf();
  const std::string expected = ExpectedTable();
  EXPECT_NE(contents.str().find(expected), std::string::npos)
      << "README.md's activation table differs from the catalogue. Paste this:\n"
      << expected;
}

}  // namespace
}  // namespace actserve
