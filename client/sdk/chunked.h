// Client::ComputeChunked and Client::ComputeChunkedInto (actserve/client.h) on a started
// call: one tensor of any size over one ComputeStream call, cut as chunk_plan.h plans,
// sent straight from the caller's memory and received into it (proto/tensor_wire.h), on
// the SDK's stream engine (compute_stream.h).
//
// Internal to the SDK (not installed).
#ifndef ACTSERVE_CLIENT_SDK_CHUNKED_H_
#define ACTSERVE_CLIENT_SDK_CHUNKED_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "actserve/client.h"
#include "client/sdk/call_start.h"

namespace actserve {
namespace client_internal {

// OK when `input` holds exactly its shape's bytes (CheckTensorBytes) and `grad_output`,
// if any, has the same dtype, shape and size; InvalidArgument naming "input" or
// "grad_output" otherwise. Checked before anything is allocated or sent.
absl::Status CheckChunkable(const TensorView& input, const std::optional<TensorView>& grad_output);

// Client::ComputeChunkedInto once `call` has started (Client::StartCall): every argument
// is checked on the whole tensor first (as CheckChunkable, and the spec, the spans'
// sizes, chunk_bytes and window, the PReLU weights), so that an error names the caller's
// tensor and nothing is sent. Returns the summed PReLU grad_weight when the mode computes
// a gradient of a PReLU, std::nullopt otherwise; on error `outputs` hold partial results.
absl::StatusOr<std::optional<Tensor>> ComputeChunkedOn(
    const CallStart& call, const TensorView& input, const ActivationArg& activation, Mode mode,
    const std::optional<TensorView>& grad_output, const std::optional<TensorView>& prelu_weight,
    const Client::ChunkedOutputs& outputs, int64_t chunk_bytes, int window);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_CHUNKED_H_
