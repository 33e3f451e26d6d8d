// Conversions between the wire API (actserve.v1 protobuf messages) and the compute core's
// plain types (src/).
//
// The core knows nothing of protobuf; the server and the C++ SDK both translate through
// this one library, so that the wire and the core cannot drift apart. The activation
// catalogue (src/catalogue.h) is the single source of parameter names: each catalogue
// parameter is the proto field of the same name in the activation's message.
//
// Requests are converted into VIEWS: a ComputeItem's tensors point into the request's
// `bytes` and `repeated int64` fields, so no tensor data is copied. The request must
// outlive the items and must not be modified while they are in use.
//
//   absl::StatusOr<std::vector<actserve::ComputeItem>> items =
//       actserve::wire::ItemsFromProto(request);
//   // On error, e.g. "items[1].mode: unknown mode number 7 (expected 0..3: ...)":
//   if (!items.ok()) return items.status();
//   absl::StatusOr<std::vector<actserve::ResultSizes>> sizes = engine.Plan(*items);
//
// Every function here is thread-safe (none holds state) and allocates only the
// containers it returns.
#ifndef ACTSERVE_PROTO_CONVERT_H_
#define ACTSERVE_PROTO_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "actserve/v1/activation.pb.h"
#include "src/activation_spec.h"
#include "src/catalogue.h"
#include "src/dtype.h"
#include "src/compute_item.h"
#include "src/tensor.h"

namespace actserve {
namespace wire {

// ---------------------------------------------------------------------------------------
// Enums.

// The core's dtype for a wire dtype. A number the proto does not define (a newer or
// broken client) maps to DType::kUnspecified; use `IsKnownDType` to tell the two apart.
DType DTypeFromProto(v1::DType proto);
// The wire dtype for `dtype`; kUnspecified maps to DTYPE_UNSPECIFIED.
v1::DType DTypeToProto(DType dtype);
// True when `number` is one of the wire enum's defined values (0..4).
bool IsKnownDType(int number);

// The core's mode for a wire mode: MODE_UNSPECIFIED means forward_backward.
// InvalidArgument "<path>: unknown mode number 7 (expected 0..3: unspecified, forward,
// backward, forward_backward)" for a number the proto does not define.
absl::StatusOr<Mode> ModeFromProto(v1::Mode proto, absl::string_view path);
// The wire mode for `mode` (never MODE_UNSPECIFIED).
v1::Mode ModeToProto(Mode mode);

// ---------------------------------------------------------------------------------------
// Activations.

// The spec that `proto` describes, with defaults filled in for unset optional fields.
// The kind is the oneof's case; every set field of the activation's message is given to
// MakeActivationSpec under its field name (gelu `approximate` as its choice index,
// softmax / log_softmax `dim` as an integer). A PReLU `weight` tensor is not part of
// the spec (it is data): ItemsFromProto turns it into `ComputeItem::prelu_weight`.
// InvalidArgument, prefixed with `path`, when the oneof is unset ("<path>: no activation
// set") or a parameter is missing or out of range
// ("items[0].activation: softplus: beta must be nonzero, got 0").
absl::StatusOr<ActivationSpec> ActivationFromProto(const v1::Activation& proto,
                                                   absl::string_view path);

// Writes `spec` into `proto` (clearing what was there), setting every parameter
// explicitly, defaults included, so that the reader needs no knowledge of defaults.
// PReLU's `weight` is a tensor on the wire and is left unset: the receiver then uses the
// default single weight (spec.Param("weight") is not transmitted; send a weight tensor
// for any other value).
void ActivationToProto(const ActivationSpec& spec, v1::Activation* proto);

// ---------------------------------------------------------------------------------------
// Tensors.

// A view of `proto`: its dtype (kUnspecified for unknown numbers), its shape (pointing
// into the repeated field) and its data (pointing into the bytes field). Performs no
// validation; the engine checks shape, dtype and data size. `proto` must outlive the
// view.
ConstTensorView TensorViewFromProto(const v1::Tensor& proto);

// Checks that `proto.dtype` is a number the wire enum defines. InvalidArgument
// "<path>.dtype: unknown dtype number 9 (expected 1..4: float32, float64, float16,
// bfloat16)" otherwise. DTYPE_UNSPECIFIED passes (the engine reports it in context).
absl::Status CheckDTypeNumber(const v1::Tensor& proto, absl::string_view path);

// Sets `proto`'s dtype and shape (replacing the shape); leaves `data` alone.
void SetTensorHeader(DType dtype, absl::Span<const int64_t> shape, v1::Tensor* proto);

// ---------------------------------------------------------------------------------------
// Compute requests.

// The engine items for `request.items()`, in order, as views into `request` (which must
// outlive them and stay unmodified). Maps mode, dtypes, grad_output presence
// (`has_grad_output()`), the activation (ActivationFromProto with path
// "items[i].activation") and a PReLU weight tensor (`has_weight()`) to `prelu_weight`.
// InvalidArgument naming the place for: an unset activation or a bad parameter, an
// unknown mode number ("items[i].mode"), an unknown dtype number
// ("items[i].input.dtype", "items[i].grad_output.dtype",
// "items[i].activation.prelu.weight.dtype"). Everything else (shape, sizes, unspecified
// dtype, grad_output and weight agreement, softmax dim, limits) is Engine::Plan's job.
absl::StatusOr<std::vector<ComputeItem>> ItemsFromProto(
    const v1::ComputeRequest& request);

// ---------------------------------------------------------------------------------------
// ListActivations.

// Fills `proto` (clearing it first) from a catalogue entry: name, description, formula,
// gradient, elementwise, example and every parameter with its type, required flag,
// default (as a number and as text: "0.01", "none"; empty for required parameters),
// valid range and choices.
void ActivationInfoToProto(const ActivationInfo& info, v1::ActivationInfo* proto);

// The text form of a default value, as FormatActivationSpec writes numbers: the shortest
// decimal that round-trips ("0.01", "-1", "20"); a choice's name; "" when required.
std::string DefaultText(const ParamInfo& param);

}  // namespace wire
}  // namespace actserve

#endif  // ACTSERVE_PROTO_CONVERT_H_
