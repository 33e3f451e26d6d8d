#include "src/activation_spec.h"

#include <cassert>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/container/inlined_vector.h"

namespace actserve {
namespace {

// The shortest decimal that reads back as exactly `value` (std::to_chars picks plain or
// scientific notation, whichever is shorter).
std::string FormatNumber(double value) {
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// Error messages repeat user text: keep them bounded.
std::string Quote(absl::string_view text) {
  constexpr size_t kMaxQuoted = 64;
  if (text.size() > kMaxQuoted) return absl::StrCat("'", text.substr(0, kMaxQuoted), "...'");
  return absl::StrCat("'", text, "'");
}

std::string KnownActivationNames() {
  std::string names;
  for (const ActivationInfo& info : Catalogue()) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", info.name);
  }
  return names;
}

std::string ParamNames(const ActivationInfo& info) {
  if (info.params.empty()) return "it takes no parameters";
  std::string names;
  for (const ParamInfo& param : info.params) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", param.name);
  }
  return absl::StrCat("its parameters: ", names);
}

absl::Status ValidateParam(const ActivationInfo& info, const ParamInfo& param, double value) {
  auto invalid = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": ", param.name, " must be ",
                                                   what, ", got ", FormatNumber(value)));
  };
  if (!std::isfinite(value)) return invalid("finite");
  switch (param.type) {
    case ParamType::kInteger:
      if (value != std::trunc(value) || value < std::numeric_limits<int32_t>::min() ||
          value > std::numeric_limits<int32_t>::max()) {
        return invalid("an int32");
      }
      break;
    case ParamType::kChoice:
      if (value != std::trunc(value) || value < 0 ||
          value >= static_cast<double>(param.choices.size())) {
        return invalid(absl::StrCat("one of ", absl::StrJoin(param.choices, ", ")));
      }
      break;
    case ParamType::kReal:
    case ParamType::kTensor:
      break;
  }
  switch (param.constraint) {
    case ParamConstraint::kNonZero:
      if (value == 0) return invalid("nonzero");
      break;
    case ParamConstraint::kNonNegative:
      if (value < 0) return invalid(">= 0");
      break;
    case ParamConstraint::kAny:
      break;
  }
  return absl::OkStatus();
}

// Parses a number the way strtod does, requiring the whole token to be used.
bool ParseNumber(absl::string_view token, double* value) {
  if (token.empty() || token.size() > 64) return false;
  std::string text(token);
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

absl::string_view StripQuotes(absl::string_view token) {
  if (token.size() >= 2 && (token.front() == '\'' || token.front() == '"') &&
      token.back() == token.front()) {
    return token.substr(1, token.size() - 2);
  }
  return token;
}

}  // namespace

double ActivationSpec::Param(absl::string_view name) const {
  const int index = FindParam(GetActivationInfo(kind), name);
  assert(index >= 0);
  return params[index];
}

absl::Status ValidateActivationSpec(const ActivationSpec& spec) {
  const int kind = static_cast<int>(spec.kind);
  if (kind < 0 || kind >= kNumActivations) {
    return absl::InvalidArgumentError(absl::StrCat("unknown activation kind ", kind));
  }
  const ActivationInfo& info = GetActivationInfo(spec.kind);
  for (size_t i = 0; i < info.params.size(); ++i) {
    absl::Status status = ValidateParam(info, info.params[i], spec.params[i]);
    if (!status.ok()) return status;
  }
  if (spec.kind == ActivationKind::kHardtanh &&
      spec.Param("min_val") > spec.Param("max_val")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hardtanh: min_val (", FormatNumber(spec.Param("min_val")),
        ") must be <= max_val (", FormatNumber(spec.Param("max_val")), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ActivationSpec> MakeActivationSpec(ActivationKind kind,
                                                  absl::Span<const NamedParam> given) {
  ActivationSpec spec;
  spec.kind = kind;
  const ActivationInfo& info = GetActivationInfo(kind);
  bool seen[kMaxParams] = {};
  for (const NamedParam& param : given) {
    const int index = FindParam(info, param.name);
    if (index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(info.name, ": unknown parameter ",
                                                     Quote(param.name), "; ",
                                                     ParamNames(info)));
    }
    if (seen[index]) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.name, ": parameter ", param.name, " given twice"));
    }
    seen[index] = true;
    spec.params[index] = param.value;
  }
  for (size_t i = 0; i < info.params.size(); ++i) {
    if (seen[i]) continue;
    if (info.params[i].required) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.name, ": parameter ", info.params[i].name, " is required"));
    }
    spec.params[i] = info.params[i].default_value;
  }
  absl::Status status = ValidateActivationSpec(spec);
  if (!status.ok()) return status;
  return spec;
}

absl::StatusOr<ActivationSpec> ParseActivationSpec(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  const size_t open = rest.find('(');
  const absl::string_view name = absl::StripAsciiWhitespace(rest.substr(0, open));
  const ActivationInfo* info = FindActivation(name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown activation ", Quote(name), "; known: ", KnownActivationNames()));
  }
  if (open == absl::string_view::npos) return MakeActivationSpec(info->kind, {});

  absl::string_view inside = rest.substr(open + 1);
  if (inside.empty() || inside.back() != ')') {
    return absl::InvalidArgumentError(
        absl::StrCat(info->name, ": expected ')' at the end of ", Quote(text)));
  }
  inside = absl::StripAsciiWhitespace(inside.substr(0, inside.size() - 1));

  absl::InlinedVector<NamedParam, kMaxParams> given;
  while (!inside.empty()) {
    const size_t comma = inside.find(',');
    absl::string_view assignment = inside.substr(0, comma);
    inside = comma == absl::string_view::npos ? absl::string_view() : inside.substr(comma + 1);
    // A comma with nothing after it is refused before the assignment in front of it.
    if ((comma != absl::string_view::npos && absl::StripAsciiWhitespace(inside).empty()) ||
        absl::StripAsciiWhitespace(assignment).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(info->name, ": empty parameter in ", Quote(text)));
    }
    const size_t equals = assignment.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          info->name, ": expected name=value, got ", Quote(absl::StripAsciiWhitespace(assignment))));
    }
    const absl::string_view param_name =
        absl::StripAsciiWhitespace(assignment.substr(0, equals));
    const absl::string_view value_text =
        StripQuotes(absl::StripAsciiWhitespace(assignment.substr(equals + 1)));
    const int index = FindParam(*info, param_name);
    if (index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(info->name, ": unknown parameter ",
                                                     Quote(param_name), "; ",
                                                     ParamNames(*info)));
    }
    const ParamInfo& param = info->params[index];
    double value = 0;
    if (param.type == ParamType::kChoice) {
      int choice = -1;
      for (size_t c = 0; c < param.choices.size(); ++c) {
        if (param.choices[c] == value_text) choice = static_cast<int>(c);
      }
      if (choice < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(info->name, ": ", param.name, " must be one of ",
                         absl::StrJoin(param.choices, ", "), ", got ", Quote(value_text)));
      }
      value = choice;
    } else if (!ParseNumber(value_text, &value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          info->name, ": ", param.name, " must be a number, got ", Quote(value_text)));
    }
    given.push_back({param.name, value});
  }
  return MakeActivationSpec(info->kind, given);
}

std::string FormatParamValue(const ParamInfo& param, double value) {
  if (param.type == ParamType::kChoice && value >= 0 &&
      value < static_cast<double>(param.choices.size())) {
    return std::string(param.choices[static_cast<size_t>(value)]);
  }
  return FormatNumber(value);
}

std::string FormatActivationSpec(const ActivationSpec& spec) {
  const ActivationInfo& info = GetActivationInfo(spec.kind);
  std::string params;
  for (size_t i = 0; i < info.params.size(); ++i) {
    const ParamInfo& param = info.params[i];
    const double value = spec.params[i];
    if (!param.required && value == param.default_value) continue;
    absl::StrAppend(&params, params.empty() ? "" : ", ", param.name, "=",
                    FormatParamValue(param, value));
  }
  if (params.empty()) return std::string(info.name);
  return absl::StrCat(info.name, "(", params, ")");
}

}  // namespace actserve
