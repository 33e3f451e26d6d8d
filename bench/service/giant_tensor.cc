// giant_tensor: one tensor of any size through a running actserve with the SDK's
// ComputeChunkedInto (results straight into this process's arrays), to measure the
// server's memory for a tensor far larger than a message (bench/README.md):
//
//   actserve --address=127.0.0.1:50051 &
//   giant_tensor --target=127.0.0.1:50051 --bytes=1073741824 --mode=forward_backward
//   grep VmHWM /proc/<actserve pid>/status     # the server's peak RSS
//
// This process holds the input, grad_output and results itself: 2 to 4 times --bytes.
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "actserve/client.h"
#include "actserve/tensor.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "the actserve server");
ABSL_FLAG(int64_t, bytes, int64_t{1} << 30, "bytes of float32 input");
ABSL_FLAG(int64_t, chunk_bytes, int64_t{16} << 20, "bytes of input per chunk");
ABSL_FLAG(int, window, 4, "chunks in flight");
ABSL_FLAG(std::string, mode, "forward_backward", "forward or forward_backward (with dy)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const size_t elements = static_cast<size_t>(absl::GetFlag(FLAGS_bytes)) / 4;
  const bool backward = absl::GetFlag(FLAGS_mode) == "forward_backward";
  std::vector<float> x(elements), y(elements), dy(backward ? elements : 0),
      dx(backward ? elements : 0);
  for (size_t i = 0; i < elements; ++i) x[i] = static_cast<float>(i % 1000) / 125.0f - 4.0f;
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = 0.5f;
  const int64_t shape[] = {static_cast<int64_t>(elements)};
  actserve::ClientOptions options;
  options.deadline = absl::Minutes(30);
  const actserve::Client client(absl::GetFlag(FLAGS_target), options);
  std::optional<actserve::TensorView> grad_output;
  if (backward) grad_output = actserve::MakeTensorView(dy, shape);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::optional<actserve::Tensor>> done = client.ComputeChunkedInto(
      actserve::MakeTensorView(x, shape), "gelu",
      backward ? actserve::Mode::kForwardBackward : actserve::Mode::kForward, grad_output,
      std::nullopt,
      actserve::Client::ChunkedOutputs{
          absl::MakeSpan(reinterpret_cast<char*>(y.data()), y.size() * 4),
          absl::MakeSpan(reinterpret_cast<char*>(dx.data()), dx.size() * 4)},
      absl::GetFlag(FLAGS_chunk_bytes), absl::GetFlag(FLAGS_window));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!done.ok()) {
    std::fprintf(stderr, "giant_tensor: %s\n", done.status().ToString().c_str());
    return 1;
  }
  // gelu(-4 + k/125) at a few places, as a sanity check that every chunk came back.
  std::printf("%zu bytes %s in %.2f s (%.1f MB/s of input); y[0]=%g y[last]=%g\n",
              elements * 4, absl::GetFlag(FLAGS_mode).c_str(), seconds,
              static_cast<double>(elements) * 4 / seconds / 1e6, y[0], y[elements - 1]);
  return 0;
}
