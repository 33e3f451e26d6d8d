// request_path_profile: where the time goes for one large Compute request inside the
// server, without the network: the protobuf path actserve used before (parse into a
// message, zero-filled response strings, serialize into 1 MiB slices) against the
// copy-free path it uses now (proto/tensor_wire.h into pooled buffers, in place). Prints
// the median time and page faults (minor faults) of each stage over --repetitions.
//
//   request_path_profile --bytes=16777216 --mode=forward_backward --repetitions=7
//
// Allocator experiments need no rebuild: GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...
// or LD_PRELOAD=libtcmalloc.so.4 (bench/README.md).
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/byte_buffer.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "actserve/batch.h"
#include "actserve/tensor.h"
#include "actserve/v1/activation.pb.h"
#include "client/sdk/batch_internal.h"
#include "proto/convert.h"
#include "proto/tensor_wire.h"
#include "server/buffer_pool.h"
#include "src/engine.h"
#include "src/thread_pool.h"

ABSL_FLAG(int64_t, bytes, int64_t{16} << 20, "bytes of float32 input");
ABSL_FLAG(std::string, mode, "forward_backward", "forward or forward_backward (with dy)");
ABSL_FLAG(int, repetitions, 7, "repetitions; medians are printed");
ABSL_FLAG(bool, huge_pages, true, "pooled buffers marked MADV_HUGEPAGE");

namespace actserve {
namespace {

int64_t MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Times stages and counts their page faults.
class Stages {
 public:
  void Begin() {
    at_ = absl::Now();
    faults_ = MinorFaults();
  }
  void End(const std::string& name) {
    const absl::Time now = absl::Now();
    const int64_t faults = MinorFaults();
    auto& [ms, pf] = stages_[Index(name)].second;
    ms.push_back(absl::ToDoubleMilliseconds(now - at_));
    pf.push_back(static_cast<double>(faults - faults_));
    at_ = now;
    faults_ = faults;
  }
  void Print(const char* title) {
    std::printf("%s\n", title);
    double total = 0;
    for (auto& [name, values] : stages_) {
      const double ms = Median(values.first), faults = Median(values.second);
      total += ms;
      std::printf("  %-34s %8.2f ms %8.0f faults\n", name.c_str(), ms, faults);
    }
    std::printf("  %-34s %8.2f ms\n", "total", total);
  }

 private:
  static double Median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  size_t Index(const std::string& name) {
    for (size_t i = 0; i < stages_.size(); ++i) {
      if (stages_[i].first == name) return i;
    }
    stages_.push_back({name, {}});
    return stages_.size() - 1;
  }
  absl::Time at_;
  int64_t faults_ = 0;
  std::vector<std::pair<std::string, std::pair<std::vector<double>, std::vector<double>>>>
      stages_;
};

// The request as gRPC delivers it: many small slices (HTTP/2 frames of 16 KiB).
grpc::ByteBuffer AsReceived(const std::string& bytes) {
  std::vector<grpc::Slice> slices;
  constexpr size_t kFrame = 16 << 10;
  for (size_t at = 0; at < bytes.size(); at += kFrame) {
    slices.emplace_back(bytes.data() + at, std::min(kFrame, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

int Run() {
  const size_t elements = static_cast<size_t>(absl::GetFlag(FLAGS_bytes)) / 4;
  const Mode mode = absl::GetFlag(FLAGS_mode) == "forward" ? Mode::kForward : Mode::kForwardBackward;
  std::vector<float> x(elements), dy(elements);
  for (size_t i = 0; i < elements; ++i) {
    x[i] = static_cast<float>(i % 1000) / 125.0f - 4.0f;
    dy[i] = 0.5f;
  }
  const int64_t shape[] = {static_cast<int64_t>(elements)};
  Batch batch;
  std::optional<TensorView> grad_output;
  if (ComputesGradient(mode)) grad_output = MakeTensorView(dy, shape);
  batch.Add(MakeTensorView(x, shape), "gelu", mode, grad_output);
  const std::string wire_bytes = client_internal::BatchWire::Request(batch).SerializeAsString();

  ThreadPool pool(ThreadPoolOptions{0, 1024});
  EngineOptions engine_options;
  engine_options.pool = &pool;
  engine_options.max_elements = 0;
  Engine engine(engine_options);
  server::BufferPoolOptions pool_options;
  pool_options.huge_pages = absl::GetFlag(FLAGS_huge_pages);
  std::shared_ptr<server::BufferPool> buffers = server::BufferPool::Create(pool_options);

  Stages before, after;
  for (int rep = 0; rep < absl::GetFlag(FLAGS_repetitions); ++rep) {
    // Before: the generated code's path, fresh messages per call as gRPC makes them.
    {
      grpc::ByteBuffer received = AsReceived(wire_bytes);
      before.Begin();
      auto request = std::make_unique<v1::ComputeRequest>();
      if (!grpc::SerializationTraits<v1::ComputeRequest>::Deserialize(&received, request.get())
               .ok()) {
        return 1;
      }
      before.End("parse (protobuf, copy into strings)");
      absl::StatusOr<std::vector<ComputeItem>> items = wire::ItemsFromProto(*request);
      absl::StatusOr<std::vector<ResultSizes>> sizes = engine.Plan(*items);
      before.End("validate (ItemsFromProto + Plan)");
      auto response = std::make_unique<v1::ComputeResponse>();
      v1::ComputeResult* result = response->add_results();
      std::vector<ItemBuffers> out(1);
      if (ComputesOutput(mode)) {
        std::string* data = result->mutable_output()->mutable_data();
        data->resize((*sizes)[0].output_bytes);
        out[0].output = absl::MakeSpan(data->data(), data->size());
      }
      if (ComputesGradient(mode)) {
        std::string* data = result->mutable_grad_input()->mutable_data();
        data->resize((*sizes)[0].grad_input_bytes);
        out[0].grad_input = absl::MakeSpan(data->data(), data->size());
      }
      before.End("allocate response (zero-filled)");
      if (!engine.Compute(*items, out).ok()) return 1;
      before.End("compute");
      grpc::ByteBuffer sent;
      bool own = false;
      if (!grpc::SerializationTraits<v1::ComputeResponse>::Serialize(*response, &sent, &own)
               .ok()) {
        return 1;
      }
      before.End("serialize (copy into 1 MiB slices)");
      request.reset();
      response.reset();
      sent.Clear();
      received.Clear();
      before.End("free");
    }
    // After: the copy-free path.
    {
      grpc::ByteBuffer received = AsReceived(wire_bytes);
      after.Begin();
      v1::ComputeRequest header;
      server::Buffer input, grad;
      absl::Status parsed = wire::ParseComputeRequest(
          &received, &header,
          [&](int, wire::TensorField field, size_t size) -> absl::StatusOr<char*> {
            server::Buffer& b = field == wire::TensorField::kInput ? input : grad;
            absl::StatusOr<server::Buffer> acquired = buffers->Acquire(size);
            if (!acquired.ok()) return acquired.status();
            b = *std::move(acquired);
            return b.data();
          });
      if (!parsed.ok()) return 1;
      after.End("parse (copy into pooled buffers)");
      absl::StatusOr<std::vector<ComputeItem>> items = wire::ItemsFromProto(header);
      (*items)[0].input.data = input.span();
      if (ComputesGradient(mode)) (*items)[0].grad_output->data = grad.span();
      absl::StatusOr<std::vector<ResultSizes>> sizes = engine.Plan(*items);
      after.End("validate (ItemsFromProto + Plan)");
      std::vector<ItemBuffers> out(1);
      server::Buffer grad_input;
      if (ComputesOutput(mode)) out[0].output = input.span();
      if (ComputesGradient(mode)) out[0].grad_input = grad.span();
      after.End("allocate response (in place)");
      if (!engine.Compute(*items, out).ok()) return 1;
      after.End("compute");
      std::vector<wire::ResultToEncode> results(1);
      if (ComputesOutput(mode)) {
        results[0].output = {v1::DTYPE_FLOAT32, shape, std::move(input).ToSlice()};
      }
      if (ComputesGradient(mode)) {
        results[0].grad_input = {v1::DTYPE_FLOAT32, shape, std::move(grad).ToSlice()};
      }
      grpc::ByteBuffer sent = wire::EncodeComputeResponse(std::move(results));
      after.End("serialize (headers; data as slices)");
      sent.Clear();
      received.Clear();
      after.End("free");
    }
  }
  std::printf("one %zu-byte float32 gelu %s request, medians of %d\n", elements * 4,
              std::string(ModeName(mode)).c_str(), absl::GetFlag(FLAGS_repetitions));
  before.Print("before: generated protobuf code");
  after.Print("after: copy-free path (proto/tensor_wire.h, server/buffer_pool.h)");
  return 0;
}

}  // namespace
}  // namespace actserve

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return actserve::Run();
}
