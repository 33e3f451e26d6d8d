// Fuzz target: bytes -> the Open Inference Protocol's gRPC request path, the code that
// serves ModelInfer traffic: InferenceServiceImpl::Prepare (the wire scan that bounds
// protobuf's allocations, protobuf's parse, the model's plan, output buffers from a
// canary-filled pool) and Run (the engine, the response encoder that appends the pooled
// buffers as raw_output_contents). The reply must parse with protobuf and hold, for each
// output, a name, a datatype, and exactly the bytes its shape and datatype need, none of
// them a canary element (a byte of some other call) when no input holds a NaN
// (tests/fuzz/canary.h); the request's id comes back.
// Whatever the scan accepts and Prepare refuses must have been refused for a reason
// other than a crash; whatever Prepare accepts protobuf must parse too.
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inference/open_inference_grpc.pb.h"
#include "server/buffer_pool.h"
#include "server/inference/grpc_service.h"
#include "server/inference/model.h"
#include "src/dtype.h"
#include "tests/fuzz/canary.h"
#include "tests/fuzz/server_parts.h"

namespace {

using actserve::server::inference::InferenceServiceImpl;

struct Harness {
  Harness() : parts(/*max_elements=*/1 << 16) {
    actserve::server::BufferPoolOptions pool_options;
    pool_options.min_pooled_bytes = 0;  // every buffer comes from the pool, canary-filled
    pool_options.fill_with_canary = true;
    buffers = actserve::server::BufferPool::Create(pool_options);
    service = std::make_unique<InferenceServiceImpl>(parts.engine.get(), parts.pool.get(),
                                                     buffers, parts.options, parts.gate.get(),
                                                     [] { return true; });
  }
  actserve::fuzz::ServerParts parts;
  std::shared_ptr<actserve::server::BufferPool> buffers;
  std::unique_ptr<InferenceServiceImpl> service;
};

Harness& TheHarness() {
  static Harness* const harness = new Harness();
  return *harness;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) std::abort();
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& harness = TheHarness();
  grpc::Slice slice(reinterpret_cast<const char*>(data), size);
  grpc::ByteBuffer request(&slice, 1);
  actserve::server::CallStats stats;
  auto call = harness.service->Prepare(request, &stats);
  if (!call.ok()) return 0;
  inference::ModelInferRequest parsed;
  if (!parsed.ParseFromArray(data, static_cast<int>(size))) std::abort();
  absl::StatusOr<grpc::ByteBuffer> reply =
      harness.service->Run(**call, /*cancelled=*/nullptr, &stats);
  if (!reply.ok()) {
    // The plan accepted it: computing and encoding must succeed, unless the request's own
    // timeout parameter (microseconds) has passed in between.
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded &&
        (*call)->timeout_deadline.has_value()) {
      return 0;
    }
    std::abort();
  }
  inference::ModelInferResponse response;
  if (!response.ParseFromString(Flatten(*reply))) std::abort();
  if (response.id() != parsed.id()) std::abort();
  if (response.outputs_size() != response.raw_output_contents_size()) std::abort();
  if (response.outputs_size() == 0) std::abort();
  // A canary element in an output is a byte of another call, unless an input's NaN
  // payload came through (tests/fuzz/canary.h).
  bool check_canary = true;
  for (const auto& input : (*call)->infer.inputs) {
    const std::optional<actserve::DType> input_dtype =
        actserve::server::inference::ParseDatatype(input.datatype);
    if (input_dtype.has_value() &&
        actserve::fuzz::HoldsNaN({input.data.data(), input.data.size()}, *input_dtype)) {
      check_canary = false;
    }
  }
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& output = response.outputs(i);
    const std::optional<actserve::DType> dtype =
        actserve::server::inference::ParseDatatype(output.datatype());
    if (!dtype.has_value()) std::abort();
    const absl::StatusOr<int64_t> elements = actserve::NumElements(
        {output.shape().data(), static_cast<size_t>(output.shape_size())});
    if (!elements.ok()) std::abort();
    const size_t element_size = actserve::DTypeSize(*dtype);
    const std::string& bytes = response.raw_output_contents(i);
    if (bytes.size() != static_cast<size_t>(*elements) * element_size) std::abort();
    if (check_canary && actserve::fuzz::HoldsCanaryElement(bytes, *dtype)) std::abort();
  }
  return 0;
}
