// Copy-free encoding and decoding of ComputeRequest / ComputeResponse at the byte level,
// for the paths where a tensor's bytes must not be copied more than once.
//
// gRPC hands a received message over as a grpc::ByteBuffer: a chain of slices (HTTP/2
// frames of at most 16 KiB each). The generated protobuf code parses it by copying every
// `bytes` field into a freshly allocated std::string, and serializes a response by copying
// every `bytes` field again into 1 MiB slices (grpcpp/support/proto_buffer_writer.h), so
// a tensor's bytes cross memory three times and land in fresh pages twice
// (grpc/grpc#19154, #23231). Here instead:
//
//  - Parsing copies each tensor's data exactly once, from the received slices straight
//    into memory the caller chooses (`DataDestination`): a reused, pre-faulted server
//    buffer, or the SDK caller's own output array. Everything else (dtype, shape, mode,
//    activation) is parsed into an ordinary message whose tensors have empty `data`.
//  - Encoding puts each tensor's data into the message as a slice that REFERS to the
//    caller's memory (a server result buffer, or the SDK caller's input array); only the
//    few header bytes are written out.
//
// The bytes produced are ordinary protobuf wire format: any protobuf reader parses them,
// and anything protobuf writes is parsed here (packed or unpacked shapes, fields in any
// order, repeated sub-messages merged, unknown fields skipped).
//
//   v1::ComputeRequest header;
//   std::vector<Buffer> data;
//   absl::Status status = wire::ParseComputeRequest(&received, &header,
//       [&](int item, wire::TensorField field, size_t size) -> absl::StatusOr<char*> {
//         return ...;  // where `size` bytes of items[item].<field>.data go
//       });
//
// Thread-compatible: the functions hold no state.
#ifndef ACTSERVE_PROTO_TENSOR_WIRE_H_
#define ACTSERVE_PROTO_TENSOR_WIRE_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "actserve/v1/activation.pb.h"

namespace actserve {
namespace wire {

// Which tensor of an item (request) or of a result (response) a data field belongs to.
enum class TensorField {
  kInput,        // ComputeItem.input
  kGradOutput,   // ComputeItem.grad_output
  kOutput,       // ComputeResult.output
  kGradInput,    // ComputeResult.grad_input
  kGradWeight,   // ComputeResult.grad_weight
};

// Called for every tensor `data` field met while parsing, with the index of its item or
// result, which tensor it is, and its size in bytes. Returns where the `size` bytes are to
// be written (at least `size` bytes of writable memory, which must stay valid until the
// parse returns), or an error, which ends the parse with that error. A field may be met
// twice (protobuf's merge rule: the last one wins); the callback is then called again and
// the earlier destination is no longer used.
using DataDestination =
    absl::FunctionRef<absl::StatusOr<char*>(int index, TensorField field, size_t size)>;

// Bounds checked while parsing, so that a request's memory stays proportional to
// what it is allowed, not to how many tiny fields a client can pack into its bytes.
struct ParseLimits {
  int64_t max_items = 0;  // most `items`; 0: unlimited
  int max_rank = 0;       // most shape entries of one tensor; 0: unlimited
};

// Parses a serialized v1::ComputeRequest from `bytes` (which is consumed) into `header`
// (cleared first), whose tensors keep dtype and shape but have empty `data`; each data
// field's bytes are copied once, into the memory `destination` gives. A ComputeItem's
// `grad_output` is present in `header` exactly when it was on the wire.
//
// Accepts exactly the bytes that v1::ComputeRequest::ParseFromArray accepts, with the
// same values (after protobuf's merge rules: a sub-message met twice is merged, the last
// scalar or `data` wins); unknown fields are skipped, except inside `activation`, which
// protobuf itself parses and which keeps them.
//
// Errors: InvalidArgument "malformed ComputeRequest: ..." when the bytes are not a
// valid encoding; ResourceExhausted when `limits` are exceeded, reported as soon as the
// item or shape entry over the limit is met (before the rest of the bytes are looked
// at, so a request both too large and malformed may get either error);
// `destination`'s own errors as they are. On an error `header` holds what was parsed
// so far.
absl::Status ParseComputeRequest(grpc::ByteBuffer* bytes, v1::ComputeRequest* header,
                                 DataDestination destination, const ParseLimits& limits = {});

// The same for a serialized v1::ComputeResponse (TensorField kOutput, kGradInput,
// kGradWeight); "malformed ComputeResponse: ..." for a bad encoding.
absl::Status ParseComputeResponse(grpc::ByteBuffer* bytes, v1::ComputeResponse* header,
                                  DataDestination destination);

// One tensor to encode: its header and its data. `data` is put into the message as it is
// (a slice refers to memory and keeps it alive through its own reference count or
// destroy callback, see grpcpp/support/slice.h), so encoding copies no tensor bytes;
// data of at most kInlineDataBytes is copied next to the header instead, which is
// cheaper than a slice of its own (the slice's owner and reference count are two
// allocations, its release a callback; a message in one slice is one piece for gRPC).
// Since such data is copied before the encoder returns and its slice dropped, a caller
// may hand it over as a static slice (grpc::Slice::STATIC_SLICE) over memory it keeps
// until then, which allocates nothing.
struct TensorToEncode {
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  absl::Span<const int64_t> shape;
  grpc::Slice data;
};
inline constexpr size_t kInlineDataBytes = 4096;

// The size of TensorToEncode's encoding (without its field tag), for a data size.
size_t EncodedTensorSize(absl::Span<const int64_t> shape, v1::DType dtype, size_t data_size);

// One ComputeResult; an absent tensor is left unset on the wire.
struct ResultToEncode {
  std::optional<TensorToEncode> output;
  std::optional<TensorToEncode> grad_input;
  std::optional<TensorToEncode> grad_weight;
};

// The size in bytes of the ComputeResponse that EncodeComputeResponse would build for
// results with these tensors; a tensor given by its header and data size only.
struct ResultSizeInfo {
  struct TensorInfo {
    v1::DType dtype = v1::DTYPE_UNSPECIFIED;
    absl::Span<const int64_t> shape;
    size_t data_size = 0;
  };
  std::optional<TensorInfo> output, grad_input, grad_weight;
};
size_t EncodedResponseSize(absl::Span<const ResultSizeInfo> results);

// A serialized v1::ComputeResponse holding `results` in order. The tensors' data slices
// are moved into the returned buffer.
grpc::ByteBuffer EncodeComputeResponse(std::vector<ResultToEncode> results);

// One ComputeItem to encode.
struct ItemToEncode {
  TensorToEncode input;
  std::optional<TensorToEncode> grad_output;
  const v1::Activation* activation = nullptr;  // required; serialized as it is
  v1::Mode mode = v1::MODE_UNSPECIFIED;
};

// A serialized v1::ComputeRequest holding `items` in order; data slices moved in.
grpc::ByteBuffer EncodeComputeRequest(std::vector<ItemToEncode> items);

// A slice that refers to `data` without copying it or owning it: the memory must stay
// valid and unchanged until every ByteBuffer holding the slice is gone (for a gRPC
// write: until the call has finished).
grpc::Slice UnownedSlice(absl::Span<const char> data);

}  // namespace wire
}  // namespace actserve

#endif  // ACTSERVE_PROTO_TENSOR_WIRE_H_
