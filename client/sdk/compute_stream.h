// The SDK's one stream engine: a ComputeStream call over a known number of requests,
// pipelined, with each response handed over in order. Client::ComputeStream (whole
// batches) and Client::ComputeChunked (one tensor in chunks, chunked.h) both run on it,
// so that flow control, cancellation on the first error and the end-of-stream checks are
// written once.
//
//   absl::Status status = RunComputeStream(call, batches.size(), /*window=*/batches.size(),
//       [&](size_t i) -> absl::StatusOr<grpc::ByteBuffer> { ...serialize request i... },
//       [&](size_t i, grpc::ByteBuffer* response) -> absl::Status { ...take response i... });
//
// Requests and responses are raw bytes, so a caller can encode from and decode into its
// own memory (proto/tensor_wire.h) or use the generated messages (SerializeToByteBuffer).
// Internal to the SDK (not installed).
#ifndef ACTSERVE_CLIENT_SDK_COMPUTE_STREAM_H_
#define ACTSERVE_CLIENT_SDK_COMPUTE_STREAM_H_

#include <cstddef>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/sdk/call_start.h"
#include "grpcpp/support/byte_buffer.h"

namespace actserve {
namespace client_internal {

// Builds request `i` of the stream; called in order, once each, on gRPC's threads or the
// caller's. An error cancels the call and is returned by RunComputeStream.
using StreamRequestMaker = std::function<absl::StatusOr<grpc::ByteBuffer>(size_t i)>;
// Takes response `i` (it may move the bytes out); called in order, one at a time, on a
// gRPC thread. An error cancels the call and is returned, prefixed "stream response i: ".
using StreamResponseTaker = std::function<absl::Status(size_t i, grpc::ByteBuffer* response)>;

// Runs one ComputeStream call on `call` (its context and generic stub) over `count`
// requests, with at most `window` (> 0) sent and not yet answered, and blocks until it
// ends. Returns the first error of `make_request` or `take_response`, else the call's
// status, else InvalidArgument ("malformed reply from the server: the stream ended after
// k of n responses") when the server ended the stream early. `count` == 0 makes no call.
// Thread-safe for distinct `call`s.
absl::Status RunComputeStream(const CallStart& call, size_t count, size_t window,
                              const StreamRequestMaker& make_request,
                              const StreamResponseTaker& take_response);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_COMPUTE_STREAM_H_
