// compute_load: a plain C++ gRPC client of actserve's Compute, the reference that
// `make bench-python` (bench/python/python_bench.py) measures the Python SDK against.
//
//   compute_load --target=127.0.0.1:50051 --bytes=16777216 --activation=relu \
//     --mode=forward --min_time=2s
//   calls=31 seconds=2.043 p50_us=64120 p99_us=81020 mb_s=254.1
//
// The request is one float32 tensor of --bytes, made with the generated protobuf code and
// serialized once; the calls go through gRPC's generic stub one at a time
// (client/actctl/bench/load.h, the service benchmark's load generator), so the client does no
// per-call work on the data: what it costs is the transport's alone. MB/s is 10^6 bytes
// of input per second.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actserve/v1/activation.pb.h"
#include "client/actctl/bench/load.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "the actserve server");
ABSL_FLAG(int64_t, bytes, 1024, "bytes of float32 input per call");
ABSL_FLAG(std::string, activation, "relu", "relu or gelu (no parameters)");
ABSL_FLAG(std::string, mode, "forward", "forward or forward_backward (with grad_output)");
ABSL_FLAG(absl::Duration, min_time, absl::Seconds(2), "least time spent calling");
ABSL_FLAG(int, min_calls, 3, "least calls");

namespace {

// The request the Python SDK sends for the same call: one item, x = -4 .. 4 repeating
// (and grad_output = 0.5 with forward_backward).
absl::StatusOr<std::string> MakeRequest(int64_t bytes, const std::string& activation,
                                        const std::string& mode) {
  const int64_t elements = bytes / 4;
  actserve::v1::ComputeRequest request;
  actserve::v1::ComputeItem* item = request.add_items();
  std::vector<float> x(elements);
  for (int64_t i = 0; i < elements; ++i) x[i] = static_cast<float>(i % 1000) / 125.0f - 4.0f;
  auto fill = [elements](actserve::v1::Tensor* tensor, const std::vector<float>& values) {
    tensor->set_dtype(actserve::v1::DTYPE_FLOAT32);
    tensor->add_shape(elements);
    tensor->set_data(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  };
  fill(item->mutable_input(), x);
  if (activation == "relu") {
    item->mutable_activation()->mutable_relu();
  } else if (activation == "gelu") {
    item->mutable_activation()->mutable_gelu();
  } else {
    return absl::InvalidArgumentError("--activation: relu or gelu");
  }
  if (mode == "forward") {
    item->set_mode(actserve::v1::MODE_FORWARD);
  } else if (mode == "forward_backward") {
    item->set_mode(actserve::v1::MODE_FORWARD_BACKWARD);
    fill(item->mutable_grad_output(), std::vector<float>(elements, 0.5f));
  } else {
    return absl::InvalidArgumentError("--mode: forward or forward_backward");
  }
  return request.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("compute_load: Compute calls of one pre-serialized request");
  absl::ParseCommandLine(argc, argv);
  const int64_t bytes = absl::GetFlag(FLAGS_bytes);
  absl::StatusOr<std::string> request =
      MakeRequest(bytes, absl::GetFlag(FLAGS_activation), absl::GetFlag(FLAGS_mode));
  if (!request.ok()) {
    std::fprintf(stderr, "compute_load: %s\n", request.status().ToString().c_str());
    return 2;
  }
  grpc::Slice slice(*request);
  const grpc::ByteBuffer buffer(&slice, 1);
  std::vector<std::shared_ptr<grpc::Channel>> channels = {grpc::CreateCustomChannel(
      absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(),
      actserve::bench::BenchChannelArguments())};
  actserve::bench::LoadOptions options;
  options.min_calls = absl::GetFlag(FLAGS_min_calls);
  options.min_time = absl::GetFlag(FLAGS_min_time);
  absl::StatusOr<actserve::bench::LoadResult> result = actserve::bench::RunUnaryLoad(
      channels, "/actserve.v1.ActivationService/Compute", buffer, 0, options);
  if (!result.ok()) {
    std::fprintf(stderr, "compute_load: %s\n", result.status().ToString().c_str());
    return 1;
  }
  std::printf("calls=%lld seconds=%.3f p50_us=%.0f p99_us=%.0f mb_s=%.1f\n",
              static_cast<long long>(result->calls), result->seconds, result->p50_us,
              result->p99_us,
              static_cast<double>(bytes) * result->calls_per_second / 1e6);
  return 0;
}
