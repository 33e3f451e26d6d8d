// libFuzzer target: arbitrary bytes as a ComputeRequest, through the server's own path:
// protobuf decoding, wire::ItemsFromProto (views into the request), Engine::Plan
// (validation), and for small valid batches Engine::Compute into buffers sized as Plan
// says. Any crash, sanitizer report, or a Compute that fails after Plan accepted the
// batch is a bug.
//
//   compute_request_fuzzer -max_total_time=60 corpus_dir tests/fuzz/corpus/compute_request
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "actserve/v1/activation.pb.h"
#include "proto/convert.h"
#include "src/engine.h"

namespace {

// Small enough that each input runs in microseconds; chunks of 64 elements make even
// these small tensors go through the chunked (cancellable) path.
const actserve::Engine& FuzzEngine() {
  static const auto* const engine = [] {
    actserve::EngineOptions options;
    options.max_elements = 1 << 14;
    options.chunk_elements = 64;
    return new actserve::Engine(options);
  }();
  return *engine;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  actserve::v1::ComputeRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<std::vector<actserve::ComputeItem>> items =
      actserve::wire::ItemsFromProto(request);
  if (!items.ok()) return 0;
  const actserve::Engine& engine = FuzzEngine();
  absl::StatusOr<std::vector<actserve::ResultSizes>> sizes = engine.Plan(*items);
  if (!sizes.ok()) return 0;

  std::vector<std::string> storage;
  storage.reserve(sizes->size() * 3);
  std::vector<actserve::ItemBuffers> buffers(sizes->size());
  auto buffer = [&storage](size_t bytes) {
    storage.emplace_back(bytes, '\0');
    return absl::MakeSpan(storage.back().data(), storage.back().size());
  };
  for (size_t i = 0; i < sizes->size(); ++i) {
    buffers[i].output = buffer((*sizes)[i].output_bytes);
    buffers[i].grad_input = buffer((*sizes)[i].grad_input_bytes);
    buffers[i].grad_weight = buffer((*sizes)[i].grad_weight_bytes);
  }
  const absl::Status computed = engine.Compute(*items, buffers);
  if (!computed.ok()) std::abort();  // Plan accepted it: Compute must succeed
  return 0;
}
