// Writes the activation catalogue (src/catalogue.h) as JSON to stdout, for the Python SDK.
//
// The Python package checks a spec's ranges and writes its canonical form exactly as the
// core's parser does (src/activation_spec.cc), so it needs the catalogue's defaults,
// required flags and constraints. They are generated from the one C++ table at build time
// (actserve/v1/catalogue.json, next to the generated wire code) instead of being copied
// into Python, so that the two cannot disagree.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "src/catalogue.h"

namespace actserve {
namespace {

// Catalogue strings are plain ASCII identifiers and choice names; quotes and backslashes
// are escaped anyway so that the output is JSON whatever the table holds.
std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

absl::string_view TypeName(ParamType type) {
  switch (type) {
    case ParamType::kReal:
      return "real";
    case ParamType::kInteger:
      return "integer";
    case ParamType::kChoice:
      return "choice";
    case ParamType::kTensor:
      return "tensor";
  }
  return "real";
}

absl::string_view ConstraintName(ParamConstraint constraint) {
  switch (constraint) {
    case ParamConstraint::kAny:
      return "any";
    case ParamConstraint::kNonZero:
      return "nonzero";
    case ParamConstraint::kNonNegative:
      return "nonnegative";
  }
  return "any";
}

std::string CatalogueJson() {
  std::string json = "{\"activations\": [";
  bool first_activation = true;
  for (const ActivationInfo& info : Catalogue()) {
    absl::StrAppend(&json, first_activation ? "\n" : ",\n", "  {\"name\": ",
                    JsonString(info.name), ", \"elementwise\": ",
                    info.elementwise ? "true" : "false", ", \"params\": [");
    first_activation = false;
    bool first_param = true;
    for (const ParamInfo& param : info.params) {
      // Defaults are small decimals and integers (0.01, -1, 20): %.17g reads back exactly.
      char default_value[32];
      std::snprintf(default_value, sizeof(default_value), "%.17g", param.default_value);
      absl::StrAppend(&json, first_param ? "" : ", ", "{\"name\": ", JsonString(param.name),
                      ", \"type\": ", JsonString(TypeName(param.type)),
                      ", \"required\": ", param.required ? "true" : "false",
                      ", \"default\": ", default_value,
                      ", \"constraint\": ", JsonString(ConstraintName(param.constraint)),
                      ", \"choices\": [");
      first_param = false;
      for (size_t i = 0; i < param.choices.size(); ++i) {
        absl::StrAppend(&json, i == 0 ? "" : ", ", JsonString(param.choices[i]));
      }
      json += "]}";
    }
    json += "]}";
  }
  json += "\n]}\n";
  return json;
}

}  // namespace
}  // namespace actserve

int main() {
  const std::string json = actserve::CatalogueJson();
  return std::fwrite(json.data(), 1, json.size(), stdout) == json.size() ? 0 : 1;
}
