// An activation with its parameters (ActivationSpec), how one is built and checked, and
// its text form.
//
// The text form is `name(param=value, ...)`, used by the CLI, the SDKs and error
// messages: `relu`, `leaky_relu(negative_slope=0.2)`, `gelu(approximate=tanh)`,
// `softplus(beta=2, threshold=10)`, `softmax(dim=1)`, `prelu(weight=0.1)`.
//
//   absl::StatusOr<ActivationSpec> spec = ParseActivationSpec("elu(alpha=0.5)");
//   FormatActivationSpec(*spec);  // "elu(alpha=0.5)"
#ifndef ACTSERVE_SRC_ACTIVATION_SPEC_H_
#define ACTSERVE_SRC_ACTIVATION_SPEC_H_

#include <array>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/catalogue.h"

namespace actserve {

// Values of GELU's `approximate` choice (its index in the catalogue's choices).
enum class GeluApproximate : int { kNone = 0, kTanh = 1 };

// An activation and the values of all its parameters (defaults filled in).
// `params[i]` belongs to `GetActivationInfo(kind).params[i]`; unused slots are 0.
// Integer and choice parameters are stored as their (exact) double value.
struct ActivationSpec {
  ActivationKind kind = ActivationKind::kRelu;
  std::array<double, kMaxParams> params = {};

  // The value of the parameter `name` (defaults are filled in when the spec is made).
  // Dies (assert) if `kind` has no such parameter: a programming error.
  double Param(absl::string_view name) const;

  friend bool operator==(const ActivationSpec& a, const ActivationSpec& b) {
    return a.kind == b.kind && a.params == b.params;
  }
  friend bool operator!=(const ActivationSpec& a, const ActivationSpec& b) {
    return !(a == b);
  }
};

// A parameter given by name, as the wire or the text form carries it.
struct NamedParam {
  absl::string_view name;
  double value;
};

// The spec of `kind` with defaults, overridden by `given`. InvalidArgument when a name is
// not a parameter of `kind` or appears twice, a required parameter is missing, or a value
// is out of range (see ValidateActivationSpec). Messages start with the activation's
// name, e.g. "softplus: beta must be nonzero, got 0".
absl::StatusOr<ActivationSpec> MakeActivationSpec(ActivationKind kind,
                                                  absl::Span<const NamedParam> given);

// OK when every parameter of `spec` is in range: finite; integers integral and within
// int32; choices a valid index; the catalogue's constraint (nonzero, >= 0); hardtanh's
// min_val <= max_val. InvalidArgument otherwise, naming the activation and parameter.
absl::Status ValidateActivationSpec(const ActivationSpec& spec);

// Parses the text form. Whitespace is allowed around tokens; a choice may be quoted
// ('tanh' or "tanh"). InvalidArgument for unknown names (the message lists the known
// ones when short), malformed text, or values out of range.
absl::StatusOr<ActivationSpec> ParseActivationSpec(absl::string_view text);

// A parameter value as the text form writes it: a choice's name ("tanh"), a number in
// its shortest round-trip form, without an exponent where a plain decimal is as short
// ("10", "0.01", "-1", "1e+30").
std::string FormatParamValue(const ParamInfo& param, double value);

// The canonical text form: parameters equal to their default are left out, required ones
// are always written, numbers in their shortest round-trip form.
// ParseActivationSpec(FormatActivationSpec(s)) == s for every valid s.
std::string FormatActivationSpec(const ActivationSpec& spec);

}  // namespace actserve

#endif  // ACTSERVE_SRC_ACTIVATION_SPEC_H_
