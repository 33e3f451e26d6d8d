// actserve's public types: element types, tensor views, modes and the activation spec.
//
// The one header that the compute core (src/) and the C++ SDK (client/include/actserve/)
// share, and the only one of the core that is installed: a user of the SDK names dtypes,
// modes and activations with these, and the core computes with the same values. Nothing
// here knows of the engine, the thread pool, the kernels or the network.
//
//   actserve::DType dtype;
//   actserve::ParseDType("bf16", &dtype);                     // kBFloat16
//   uint16_t bits = actserve::RoundToFloat16(0.1);            // 0x2E66
//   int64_t shape[] = {2, 2};
//   actserve::ConstTensorView view{actserve::DType::kFloat32, shape, bytes};
//   actserve::CheckTensorBytes(view.dtype, view.shape, view.data.size());  // 4 elements
//   absl::StatusOr<actserve::ActivationSpec> spec =
//       actserve::ParseActivationSpec("elu(alpha=0.5)");
//   actserve::FormatActivationSpec(*spec);                    // "elu(alpha=0.5)"
//
// Every function is thread-safe and allocates only for the strings it returns.
#ifndef ACTSERVE_SRC_INCLUDE_ACTSERVE_TYPES_H_
#define ACTSERVE_SRC_INCLUDE_ACTSERVE_TYPES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace actserve {

// ---------------------------------------------------------------------------------------
// Element types, and exact conversions between the half-precision formats and double.
//
// actserve computes float16 and bfloat16 in wider precision and rounds the result once,
// to nearest-even, on the way back. These conversions are that rounding.

// The element types on the wire. kUnspecified is never valid in a computation; it exists
// so that a request that leaves the type out can be reported as such.
enum class DType : int {
  kUnspecified = 0,
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
};

// Every valid dtype, in wire order.
absl::Span<const DType> AllDTypes();

// Bytes per element: 4, 8, 2, 2; 0 for kUnspecified.
size_t DTypeSize(DType dtype);

// "float32", "float64", "float16", "bfloat16"; "unspecified" for kUnspecified.
absl::string_view DTypeName(DType dtype);

// Parses a name as DTypeName prints it (also accepts "f32", "f64", "f16", "bf16",
// "float", "double", "half"). Returns false when the name is unknown.
bool ParseDType(absl::string_view name, DType* dtype);

// IEEE binary16 and bfloat16, as raw bits. Conversions round to nearest, ties to even,
// directly from double (one rounding, never via float), keep subnormals, overflow to
// +-Inf and keep NaN a NaN (quiet). No allocation.
uint16_t RoundToFloat16(double value);
uint16_t RoundToBFloat16(double value);
double Float16ToDouble(uint16_t bits);
double BFloat16ToDouble(uint16_t bits);

// ---------------------------------------------------------------------------------------
// Non-owning views of tensors: a dtype, a row-major shape and packed little-endian bytes.
//
// The engine reads inputs through ConstTensorView and writes results into caller-provided
// MutableTensorView buffers, so a server can compute straight into the memory that
// becomes its response; the SDK sends from the caller's memory through the same view.
// Views never own memory; the caller keeps it alive while the view is used. Data pointers
// need no alignment: readers copy elements with memcpy.

struct ConstTensorView {
  DType dtype = DType::kUnspecified;
  absl::Span<const int64_t> shape;  // [] is a scalar (one element)
  absl::Span<const char> data;      // exactly NumElements(shape) * DTypeSize(dtype) bytes
};

struct MutableTensorView {
  DType dtype = DType::kUnspecified;
  absl::Span<const int64_t> shape;
  absl::Span<char> data;
};

// The number of elements of `shape`: the product of its dimensions, 1 for [].
// InvalidArgument when a dimension is negative or the product (or the product times the
// largest element size, 8 bytes) overflows int64; the message names the dimension, e.g.
// "shape [2,-1]: dimension 1 is negative".
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape);

// The one check that a tensor's bytes match its dtype and shape, used by the engine and
// by every part of the SDK that takes a tensor. Returns the element count when
// `data_bytes` is exactly NumElements(shape) * DTypeSize(dtype); otherwise
// InvalidArgument, with a message that the caller prefixes with the tensor's place:
// "dtype unspecified is not a tensor element type", NumElements' message, or
// "12 bytes of data, but shape [2,2] float32 needs 16".
absl::StatusOr<int64_t> CheckTensorBytes(DType dtype, absl::Span<const int64_t> shape,
                                         size_t data_bytes);

// "[2,3]", "[]". At most 16 dimensions are printed (messages cross the wire).
std::string ShapeToString(absl::Span<const int64_t> shape);

// ---------------------------------------------------------------------------------------
// What a computation produces.

enum class Mode {
  kForward,          // output only
  kBackward,         // grad_input (and grad_weight) only
  kForwardBackward,  // both, in one pass
};
inline bool ComputesOutput(Mode mode) { return mode != Mode::kBackward; }
inline bool ComputesGradient(Mode mode) { return mode != Mode::kForward; }
absl::string_view ModeName(Mode mode);  // "forward", "backward", "forward_backward"

// ---------------------------------------------------------------------------------------
// Activations and their text form.
//
// The text form is `name(param=value, ...)`, used by the CLI, the SDKs and error
// messages: `relu`, `leaky_relu(negative_slope=0.2)`, `gelu(approximate=tanh)`,
// `softplus(beta=2, threshold=10)`, `softmax(dim=1)`, `prelu(weight=0.1)`. The
// catalogue (src/catalogue.h, and ListActivations on the wire) describes every
// activation and parameter.

// Every activation, in wire order: the value is the proto's oneof field number minus one
// (proto/convert.cc checks that at compile time).
enum class ActivationKind : int {
  kRelu,
  kRelu6,
  kLeakyRelu,
  kPrelu,
  kElu,
  kCelu,
  kSelu,
  kGelu,
  kSilu,
  kMish,
  kSoftplus,
  kHardtanh,
  kHardsigmoid,
  kHardswish,
  kSigmoid,
  kTanh,
  kLogsigmoid,
  kSoftsign,
  kTanhshrink,
  kSoftshrink,
  kHardshrink,
  kThreshold,
  kSoftmax,
  kLogSoftmax,
};
inline constexpr int kNumActivations = 24;

// The most parameters any activation has (softplus, hardtanh, threshold: two).
inline constexpr int kMaxParams = 2;

// Values of GELU's `approximate` choice (its index in the catalogue's choices).
enum class GeluApproximate : int { kNone = 0, kTanh = 1 };

// An activation and the values of all its parameters (defaults filled in).
// `params[i]` belongs to parameter i of the activation in the catalogue; unused slots are
// 0. Integer and choice parameters are stored as their (exact) double value.
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

// OK when every parameter of `spec` is in range: finite; integers integral and within
// int32; choices a valid index; the catalogue's constraint (nonzero, >= 0); hardtanh's
// min_val <= max_val. InvalidArgument otherwise, naming the activation and parameter.
absl::Status ValidateActivationSpec(const ActivationSpec& spec);

// Parses the text form. Whitespace is allowed around tokens; a choice may be quoted
// ('tanh' or "tanh"). InvalidArgument for unknown names (the message lists the known
// ones when short), malformed text, or values out of range.
absl::StatusOr<ActivationSpec> ParseActivationSpec(absl::string_view text);

// The canonical text form: parameters equal to their default are left out, required ones
// are always written, numbers in their shortest round-trip form.
// ParseActivationSpec(FormatActivationSpec(s)) == s for every valid s.
std::string FormatActivationSpec(const ActivationSpec& spec);

}  // namespace actserve

#endif  // ACTSERVE_SRC_INCLUDE_ACTSERVE_TYPES_H_
