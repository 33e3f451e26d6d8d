// libFuzzer target: arbitrary bytes as a received ComputeRequest, through the server's own
// request path, the code that serves traffic: ActivationServiceImpl::PrepareBatch
// (wire::ParseComputeRequest into pooled buffers, ItemsFromProto, Engine::Plan, result
// buffers) and ComputeBatch (Engine::Compute, the response encoder). The pool fills every
// buffer with the canary pattern (--fill_buffers_with_canary), and the reply is parsed
// back with protobuf. A bug is any crash or sanitizer report, a reply protobuf cannot
// parse, a reply without one result per item or with a result whose size is not its
// input's, or a result that carries a canary element (bytes the call never wrote) when
// its item's tensors hold no NaN (tests/fuzz/canary.h).
//
//   request_path_fuzzer -max_total_time=60 corpus_dir <seed dirs>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <grpc/grpc.h>

#include "actserve/v1/activation.pb.h"
#include "server/activation_service.h"
#include "server/buffer_pool.h"
#include "tests/fuzz/canary.h"
#include "tests/fuzz/server_parts.h"

namespace {

using actserve::server::ActivationServiceImpl;

struct Harness {
  Harness() : parts(/*max_elements=*/1 << 14) {
    parts.options.fill_buffers_with_canary = true;
    service = std::make_unique<ActivationServiceImpl>(parts.engine.get(), parts.pool.get(),
                                                      parts.options, parts.gate.get());
  }
  actserve::fuzz::ServerParts parts;
  std::unique_ptr<ActivationServiceImpl> service;
};

Harness& TheHarness() {
  static Harness* const harness = new Harness();
  return *harness;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& harness = TheHarness();
  const char* bytes = reinterpret_cast<const char*>(data);
  grpc::Slice slice(bytes, size);
  grpc::ByteBuffer request(&slice, 1);
  actserve::server::CallStats stats;
  auto batch = harness.service->PrepareBatch(std::move(request), &stats);
  if (!batch.ok()) return 0;
  const int items = static_cast<int>(stats.items);
  absl::StatusOr<grpc::ByteBuffer> reply =
      harness.service->ComputeBatch(**batch, /*cancelled=*/nullptr, &stats);
  if (!reply.ok()) std::abort();  // Plan accepted it: computing and encoding must succeed

  std::vector<grpc::Slice> slices;
  if (!reply->Dump(&slices).ok()) std::abort();
  std::string serialized;
  for (const grpc::Slice& piece : slices) {
    serialized.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
  }
  actserve::v1::ComputeResponse response;
  if (!response.ParseFromString(serialized)) std::abort();
  if (response.results_size() != items) std::abort();

  actserve::v1::ComputeRequest parsed;
  if (!parsed.ParseFromArray(data, static_cast<int>(size))) std::abort();  // we accepted it
  for (int i = 0; i < items; ++i) {
    const actserve::v1::ComputeResult& result = response.results(i);
    const actserve::v1::ComputeItem& item = parsed.items(i);
    const actserve::v1::DType dtype = item.input().dtype();
    const actserve::DType core_dtype = static_cast<actserve::DType>(dtype);
    const bool check_canary =
        !actserve::fuzz::HoldsNaN(item.input().data(), core_dtype) &&
        !actserve::fuzz::HoldsNaN(item.grad_output().data(), core_dtype) &&
        !actserve::fuzz::HoldsNaN(item.activation().prelu().weight().data(), core_dtype);
    const size_t input_bytes = item.input().data().size();
    for (const actserve::v1::Tensor* tensor : {&result.output(), &result.grad_input()}) {
      if (!tensor->data().empty() && tensor->data().size() != input_bytes) std::abort();
    }
    for (const actserve::v1::Tensor* tensor :
         {&result.output(), &result.grad_input(), &result.grad_weight()}) {
      if (check_canary && actserve::fuzz::HoldsCanaryElement(
                              tensor->data(), static_cast<actserve::DType>(tensor->dtype()))) {
        std::abort();
      }
    }
  }
  return 0;
}
