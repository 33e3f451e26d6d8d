// actctl's text in and text out: parsing its flag values and formatting what it prints.
// Pure functions, kept apart from main so that tests can check them by hand.
#ifndef ACTSERVE_CLIENT_ACTCTL_CLI_FORMAT_H_
#define ACTSERVE_CLIENT_ACTCTL_CLI_FORMAT_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "actserve/client.h"
#include "actserve/tensor.h"
#include "actserve/types.h"

namespace actserve {
namespace cli {

// Every value given to the flag `name` on the command line, in order ("--name=v",
// "-name=v", "--name v", "-name v"; nothing after "--"). absl keeps only the last of a
// repeated flag; `actctl plot --activation=relu --activation=elu` plots both and
// `actctl bench --target=a --target=b` loads both.
std::vector<std::string> RepeatedFlagValues(int argc, char** argv, absl::string_view name);

// Parses a comma-separated list of numbers: "-2,-1,0,1,2", "1e-3, nan, inf, -inf".
// InvalidArgument naming the first bad entry (its position and text), or for an empty
// list.
absl::StatusOr<std::vector<double>> ParseValueList(absl::string_view text);

// Splits a list of activation specs in text form at the commas and semicolons that are
// not inside parentheses, trimming whitespace: "relu, softplus(beta=2, threshold=10)" is
// {"relu", "softplus(beta=2, threshold=10)"}. The specs themselves are not parsed.
// InvalidArgument for an empty entry or unbalanced parentheses.
absl::StatusOr<std::vector<std::string>> SplitActivationList(absl::string_view text);

// An x range "lo,hi" (e.g. "-4,4"): two finite numbers with lo < hi. InvalidArgument
// otherwise.
absl::StatusOr<std::pair<double, double>> ParseRange(absl::string_view text);

// "forward", "backward", "forward_backward". InvalidArgument otherwise, listing those.
absl::StatusOr<Mode> ParseMode(absl::string_view text);

// A dtype name as ParseDType accepts it ("float32", "f16", "bfloat16", ...).
// InvalidArgument listing the names otherwise.
absl::StatusOr<DType> ParseDTypeFlag(absl::string_view text);

// `value`, an element of `dtype`, in the fewest significant digits that read back as the
// same element of `dtype` ("0.1" for float32's 0.1f, "-0.045500263" for a float32 value,
// "nan", "inf", "-inf").
std::string FormatNumber(double value, DType dtype);

// A table with right-aligned columns separated by " | ", a header row and a dashed
// rule under it. Every row must have headers.size() cells.
std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// One row per element of `x`, with columns x, y (when `y` is given) and dx (when `dx` is
// given), elements in row-major order:
//        x |          y |         dx
//   -------+------------+-----------
//       -2 |          0 |          0
std::string FormatComputeTable(const Tensor& x, const std::optional<Tensor>& y,
                               const std::optional<Tensor>& dx);

// For tensors too big for a table: per tensor, its shape and dtype, and the min, max and
// mean of its finite elements and how many are NaN or infinite.
std::string FormatComputeSummary(const Tensor& x, const std::optional<Tensor>& y,
                                 const std::optional<Tensor>& dx);

// `actctl list`: the server block (version, dtypes, SIMD target, threads, limits) then
// one table row per activation: name, parameters (with defaults and valid ranges) and the
// forward formula.
std::string FormatServiceDescription(const ServiceDescription& description);

// The parameters of one activation in a line: "negative_slope=0.01",
// "beta=1 (nonzero), threshold=20", "threshold (required), value (required)",
// "approximate=none {none|tanh}"; "-" when there are none.
std::string FormatParameters(const ActivationDescription& activation);

}  // namespace cli
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_CLI_FORMAT_H_
