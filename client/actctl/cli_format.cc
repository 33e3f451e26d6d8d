// See cli_format.h.
#include "client/actctl/cli_format.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace actserve {
namespace cli {

std::vector<std::string> RepeatedFlagValues(int argc, char** argv, absl::string_view name) {
  std::vector<std::string> values;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) {
      if (!absl::ConsumePrefix(&arg, "-")) continue;
    }
    if (!absl::ConsumePrefix(&arg, name)) continue;
    if (absl::ConsumePrefix(&arg, "=")) {
      values.emplace_back(arg);
    } else if (arg.empty() && i + 1 < argc) {
      values.emplace_back(argv[++i]);
    }
  }
  return values;
}

namespace {

// `value` rounded to the nearest element of `dtype`.
double RoundTo(double value, DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return static_cast<float>(value);
    case DType::kFloat16:
      return Float16ToDouble(RoundToFloat16(value));
    case DType::kBFloat16:
      return BFloat16ToDouble(RoundToBFloat16(value));
    case DType::kFloat64:
    case DType::kUnspecified:
      break;
  }
  return value;
}

std::string LimitText(int64_t limit) {
  return limit == 0 ? std::string("unlimited") : absl::StrCat(limit);
}

struct Stats {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  int64_t finite = 0;
  int64_t nan = 0;
  int64_t inf = 0;
};

std::string SummaryLine(absl::string_view name, const Tensor& tensor) {
  Stats stats;
  for (double value : tensor.ToDoubles()) {
    if (std::isnan(value)) {
      ++stats.nan;
    } else if (std::isinf(value)) {
      ++stats.inf;
    } else {
      stats.min = std::min(stats.min, value);
      stats.max = std::max(stats.max, value);
      stats.sum += value;
      ++stats.finite;
    }
  }
  std::string line =
      absl::StrCat(name, ": shape ", ShapeToString(tensor.shape()), " ", DTypeName(tensor.dtype()),
                   ", ", tensor.num_elements(), " elements");
  if (stats.finite > 0) {
    absl::StrAppend(&line, ", min ", FormatNumber(stats.min, tensor.dtype()), ", max ",
                    FormatNumber(stats.max, tensor.dtype()), ", mean ",
                    absl::StrFormat("%.9g", stats.sum / static_cast<double>(stats.finite)));
  }
  if (stats.nan > 0) absl::StrAppend(&line, ", ", stats.nan, " NaN");
  if (stats.inf > 0) absl::StrAppend(&line, ", ", stats.inf, " infinite");
  return line + "\n";
}

}  // namespace

absl::StatusOr<std::vector<double>> ParseValueList(absl::string_view text) {
  std::vector<double> values;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("--values is empty; give numbers like -2,-1,0,1,2");
  }
  int index = 0;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    const absl::string_view entry = absl::StripAsciiWhitespace(piece);
    double value;
    if (!absl::SimpleAtod(entry, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--values: entry ", index, " '", entry, "' is not a number"));
    }
    values.push_back(value);
    ++index;
  }
  return values;
}

absl::StatusOr<std::vector<std::string>> SplitActivationList(absl::string_view text) {
  std::vector<std::string> specs;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ',';
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unbalanced ')' at character ", i + 1, " of '", text, "'"));
    }
    if (depth > 0 || (c != ',' && c != ';')) continue;
    const absl::string_view spec = absl::StripAsciiWhitespace(text.substr(start, i - start));
    if (spec.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty activation at character ", start + 1, " of '", text, "'"));
    }
    specs.emplace_back(spec);
    start = i + 1;
  }
  if (depth != 0) {
    return absl::InvalidArgumentError(absl::StrCat("unbalanced '(' in '", text, "'"));
  }
  return specs;
}

absl::StatusOr<std::pair<double, double>> ParseRange(absl::string_view text) {
  absl::StatusOr<std::vector<double>> values = ParseValueList(text);
  if (!values.ok() || values->size() != 2 || !std::isfinite((*values)[0]) ||
      !std::isfinite((*values)[1]) || !((*values)[0] < (*values)[1])) {
    return absl::InvalidArgumentError(
        absl::StrCat("a range is two finite numbers lo,hi with lo < hi, e.g. -4,4; got '", text,
                     "'"));
  }
  return std::make_pair((*values)[0], (*values)[1]);
}

absl::StatusOr<Mode> ParseMode(absl::string_view text) {
  for (Mode mode : {Mode::kForward, Mode::kBackward, Mode::kForwardBackward}) {
    if (text == ModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode '", text, "'; expected forward, backward or forward_backward"));
}

absl::StatusOr<DType> ParseDTypeFlag(absl::string_view text) {
  DType dtype;
  if (ParseDType(text, &dtype) && dtype != DType::kUnspecified) return dtype;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", text, "'; expected float32, float64, float16 or bfloat16"));
}

std::string FormatNumber(double value, DType dtype) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // %g switches to an exponent when the exponent reaches the precision, so that 500
  // with one digit is "5e+02"; plain notation reads better for moderate magnitudes.
  const double magnitude = std::abs(value);
  const bool plain = magnitude == 0 || (magnitude >= 1e-5 && magnitude < 1e15);
  for (int digits = 1; digits < 17; ++digits) {
    std::string text = absl::StrFormat("%.*g", digits, value);
    if (plain && text.find('e') != std::string::npos) continue;
    if (RoundTo(std::strtod(text.c_str(), nullptr), dtype) == value) return text;
  }
  return absl::StrFormat("%.17g", value);
}

std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const std::string& header : headers) widths.push_back(header.size());
  for (const std::vector<std::string>& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto format_row = [&widths](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : std::string();
      if (i > 0) line += " | ";
      line.append(widths[i] - std::min(widths[i], cell.size()), ' ');
      line += cell;
    }
    return line + "\n";
  };
  std::string out = format_row(headers);
  for (size_t i = 0; i < widths.size(); ++i) {
    if (i > 0) out += "-+-";
    out.append(widths[i], '-');
  }
  out += "\n";
  for (const std::vector<std::string>& row : rows) out += format_row(row);
  return out;
}

std::string FormatComputeTable(const Tensor& x, const std::optional<Tensor>& y,
                               const std::optional<Tensor>& dx) {
  std::vector<std::string> headers = {"x"};
  std::vector<std::vector<double>> columns = {x.ToDoubles()};
  std::vector<DType> dtypes = {x.dtype()};
  if (y.has_value()) {
    headers.push_back("y");
    columns.push_back(y->ToDoubles());
    dtypes.push_back(y->dtype());
  }
  if (dx.has_value()) {
    headers.push_back("dx");
    columns.push_back(dx->ToDoubles());
    dtypes.push_back(dx->dtype());
  }
  std::vector<std::vector<std::string>> rows(columns[0].size());
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < columns.size(); ++c) {
      rows[r].push_back(r < columns[c].size() ? FormatNumber(columns[c][r], dtypes[c]) : "");
    }
  }
  return FormatTable(headers, rows);
}

std::string FormatComputeSummary(const Tensor& x, const std::optional<Tensor>& y,
                                 const std::optional<Tensor>& dx) {
  std::string out = SummaryLine("x", x);
  if (y.has_value()) out += SummaryLine("y", *y);
  if (dx.has_value()) out += SummaryLine("dx", *dx);
  return out;
}

std::string FormatParameters(const ActivationDescription& activation) {
  std::vector<std::string> parts;
  for (const ParameterDescription& param : activation.parameters) {
    std::string part = param.name;
    std::vector<std::string> notes;
    if (param.required) {
      notes.push_back("required");
    } else {
      absl::StrAppend(&part, "=", param.default_text);
    }
    if (!param.valid_range.empty()) {
      notes.push_back(param.valid_range);
    } else if (!param.choices.empty()) {
      notes.push_back(absl::StrJoin(param.choices, " or "));
    }
    if (!notes.empty()) absl::StrAppend(&part, " (", absl::StrJoin(notes, "; "), ")");
    parts.push_back(std::move(part));
  }
  return parts.empty() ? std::string("-") : absl::StrJoin(parts, ", ");
}

std::string FormatServiceDescription(const ServiceDescription& description) {
  const ServerDescription& server = description.server;
  std::vector<std::string> dtypes;
  for (DType dtype : server.dtypes) dtypes.emplace_back(DTypeName(dtype));
  std::string out = absl::StrCat(
      "server:  actserve ", server.version, "\n", "dtypes:  ", absl::StrJoin(dtypes, ", "), "\n",
      "simd:    ", server.simd_target, "\n", "threads: ", server.threads, "\n",
      "limits:  max_message_bytes ", LimitText(server.max_message_bytes), ", max_elements ",
      LimitText(server.max_elements), ", max_inflight ", LimitText(server.max_inflight), "\n\n");
  std::vector<std::vector<std::string>> rows;
  for (const ActivationDescription& activation : description.activations) {
    rows.push_back({activation.name, FormatParameters(activation), activation.formula});
  }
  // Left-aligned reads better for text columns than FormatTable's right alignment.
  std::vector<size_t> widths = {4, 10};
  for (const std::vector<std::string>& row : rows) {
    widths[0] = std::max(widths[0], row[0].size());
    widths[1] = std::max(widths[1], row[1].size());
  }
  auto line = [&widths](absl::string_view a, absl::string_view b, absl::string_view c) {
    return absl::StrFormat("%-*s | %-*s | %s\n", static_cast<int>(widths[0]), a,
                           static_cast<int>(widths[1]), b, c);
  };
  out += line("name", "parameters", "formula");
  out += absl::StrCat(std::string(widths[0], '-'), "-+-", std::string(widths[1], '-'), "-+-",
                      std::string(7, '-'), "\n");
  for (const std::vector<std::string>& row : rows) out += line(row[0], row[1], row[2]);
  absl::StrAppend(&out, "\n", description.activations.size(), " activations\n");
  return out;
}

}  // namespace cli
}  // namespace actserve
