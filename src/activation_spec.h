// How an ActivationSpec is built from named parameters, and how one parameter value is
// written. The spec itself, its check and its text form (ParseActivationSpec,
// FormatActivationSpec) are public types (actserve/types.h); activation_spec.cc
// implements both.
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
#include "actserve/types.h"
#include "src/catalogue.h"

namespace actserve {

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

// A parameter value as the text form writes it: a choice's name ("tanh"), a number in
// its shortest round-trip form, without an exponent where a plain decimal is as short
// ("10", "0.01", "-1", "1e+30").
std::string FormatParamValue(const ParamInfo& param, double value);

}  // namespace actserve

#endif  // ACTSERVE_SRC_ACTIVATION_SPEC_H_
