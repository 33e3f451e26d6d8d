// The activation catalogue: every activation actserve computes, with its parameters,
// defaults, valid ranges, description and formulas.
//
// This is the single source of truth that the text-form parser (activation_spec.h), the
// server's ListActivations, the CLI's `actctl list` and the README's table all read.
// Adding an activation starts here.
//
//   const actserve::ActivationInfo* info = actserve::FindActivation("leaky_relu");
//   info->params[0].name;           // "negative_slope"
//   info->params[0].default_value;  // 0.01
#ifndef ACTSERVE_SRC_CATALOGUE_H_
#define ACTSERVE_SRC_CATALOGUE_H_

#include "absl/strings/string_view.h"

#include "absl/types/span.h"
#include "actserve/types.h"

namespace actserve {

enum class ParamType {
  kReal,     // a finite double
  kInteger,  // an int32 (softmax dim)
  kChoice,   // an index into `choices` (gelu approximate)
  kTensor,   // prelu weight: a tensor on the wire; in the text form, one value
};

// What values a parameter accepts, beyond being finite.
enum class ParamConstraint {
  kAny,
  kNonZero,      // softplus beta, celu alpha
  kNonNegative,  // softshrink / hardshrink lambd
};

struct ParamInfo {
  absl::string_view name;  // PyTorch's name, e.g. "negative_slope"
  ParamType type;
  bool required;          // no default: the caller must give it (threshold's two)
  double default_value;   // when !required; for kChoice, the index of the default
  ParamConstraint constraint;
  absl::string_view valid_range;                // human-readable, e.g. "nonzero"
  absl::Span<const absl::string_view> choices;  // kChoice only, e.g. {"none", "tanh"}
};

struct ActivationInfo {
  ActivationKind kind;
  absl::string_view name;         // text-form name, e.g. "leaky_relu"
  absl::string_view description;  // one line
  absl::string_view formula;      // forward, in the parameters' names
  absl::string_view gradient;     // backward dx in terms of g = dy
  bool elementwise;              // false for softmax and log_softmax
  absl::string_view example;      // a text-form spec
  absl::Span<const ParamInfo> params;  // at most kMaxParams, in spec order
};

// All activations, in ActivationKind order. Static storage; thread-safe.
absl::Span<const ActivationInfo> Catalogue();

// The entry for `kind`.
const ActivationInfo& GetActivationInfo(ActivationKind kind);

// The entry named `name` (exactly as in the catalogue, e.g. "log_softmax"), or nullptr.
const ActivationInfo* FindActivation(absl::string_view name);

// Index of the parameter `name` in `info.params`, or -1.
int FindParam(const ActivationInfo& info, absl::string_view name);

}  // namespace actserve

#endif  // ACTSERVE_SRC_CATALOGUE_H_
