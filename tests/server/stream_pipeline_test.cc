// The copy-free request path and the pipelined ComputeStream against the compute engine
// itself as the oracle (computed locally, no network): results computed in place on the
// server, streamed with several batches in flight, come back equal to the engine's, in
// request order; and the SDK's ComputeChunkedInto puts a multi-chunk tensor into the
// caller's buffers exactly as one local computation would.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "actserve/batch.h"
#include "actserve/client.h"
#include "actserve/tensor.h"
#include "server/server.h"
#include "src/activation_spec.h"
#include "src/engine.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TestServer;

std::vector<float> Ramp(size_t n, float scale, float shift) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 97) * scale + shift;
  return v;
}

// The engine's own results for one item, as the oracle.
ItemResult Local(const TensorView& x, const std::string& activation, Mode mode,
                 const std::optional<TensorView>& dy) {
  Engine engine(EngineOptions{});
  ComputeItem item;
  item.input = x;
  item.activation = *ParseActivationSpec(activation);
  item.mode = mode;
  item.grad_output = dy;
  absl::StatusOr<std::vector<ItemResult>> results = engine.ComputeToStrings({&item, 1});
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? (*results)[0] : ItemResult{};
}

TEST(StreamPipelineTest, PipelinedBatchesComeBackInOrderWithTheEnginesValues) {
  ServerOptions options;
  options.stream_window = 3;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  const Client client(server.channel, ClientOptions());

  // Batches large enough for the compute pool (above inline_bytes) and small ones that
  // run inline, mixed, so that batches finish out of order and must be reordered; every
  // mode, with and without grad_output (results computed in place over either).
  const char* activations[] = {"gelu", "softmax(dim=1)", "log_softmax(dim=0)", "silu",
                               "leaky_relu(negative_slope=0.2)", "tanh"};
  const Mode modes[] = {Mode::kForward, Mode::kBackward, Mode::kForwardBackward};
  std::vector<std::vector<float>> xs, dys;
  std::vector<std::vector<int64_t>> shapes;
  struct Sent {
    std::string activation;
    Mode mode;
    bool with_dy;
  };
  std::vector<Sent> sent;
  std::vector<Batch> batches;
  for (int i = 0; i < 18; ++i) {
    const int64_t rows = i % 2 == 0 ? 600 : 3, cols = 128;  // 300 KiB or 1.5 KiB
    shapes.push_back({rows, cols});
    xs.push_back(Ramp(static_cast<size_t>(rows * cols), 0.07f, -3.0f + 0.1f * i));
    dys.push_back(Ramp(static_cast<size_t>(rows * cols), -0.01f, 0.5f));
    sent.push_back({activations[i % 6], modes[i % 3], i % 4 != 1});
  }
  for (size_t i = 0; i < sent.size(); ++i) {
    Batch batch;
    std::optional<TensorView> dy;
    if (sent[i].with_dy) dy = MakeTensorView(dys[i], shapes[i]);
    batch.Add(MakeTensorView(xs[i], shapes[i]), sent[i].activation, sent[i].mode, dy);
    batches.push_back(std::move(batch));
  }
  absl::StatusOr<std::vector<std::vector<ItemOutput>>> outputs = client.ComputeStream(batches);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  ASSERT_EQ(outputs->size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    std::optional<TensorView> dy;
    if (sent[i].with_dy) dy = MakeTensorView(dys[i], shapes[i]);
    const ItemResult expected =
        Local(MakeTensorView(xs[i], shapes[i]), sent[i].activation, sent[i].mode, dy);
    const ItemOutput& got = (*outputs)[i][0];
    const std::string where = absl::StrCat("batch ", i, " ", sent[i].activation);
    EXPECT_EQ(got.output.has_value(), ComputesOutput(sent[i].mode)) << where;
    EXPECT_EQ(got.grad_input.has_value(), ComputesGradient(sent[i].mode)) << where;
    if (got.output.has_value()) EXPECT_EQ(got.output->data(), expected.output) << where;
    if (got.grad_input.has_value()) {
      EXPECT_EQ(got.grad_input->data(), expected.grad_input) << where;
    }
  }
}

TEST(StreamPipelineTest, WindowOfOneStillAnswersEveryBatch) {
  ServerOptions options;
  options.stream_window = 1;
  TestServer server = StartTestServer(options);
  ASSERT_NE(server.server, nullptr);
  const Client client(server.channel, ClientOptions());
  const std::vector<float> x = Ramp(100000, 0.001f, -50.0f);  // 400 KB: on the pool
  const int64_t shape[] = {100000};
  std::vector<Batch> batches(5);
  for (Batch& batch : batches) batch.Add(MakeTensorView(x, shape), "relu", Mode::kForward);
  absl::StatusOr<std::vector<std::vector<ItemOutput>>> outputs = client.ComputeStream(batches);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  const ItemResult expected = Local(MakeTensorView(x, shape), "relu", Mode::kForward, {});
  for (const auto& output : *outputs) EXPECT_EQ(output[0].output->data(), expected.output);
}

TEST(StreamPipelineTest, ChunkedTensorIntoCallerBuffersEqualsOneComputation) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  const Client client(server.channel, ClientOptions());
  // 24 MiB of float32 per tensor in 1 MiB chunks: 24 chunks through a window of 3, with
  // results written straight into these vectors.
  constexpr int64_t kRows = 3072, kCols = 2048;
  const std::vector<float> x = Ramp(kRows * kCols, 0.05f, -2.4f);
  const std::vector<float> dy = Ramp(kRows * kCols, 0.02f, -1.0f);
  const int64_t shape[] = {kRows, kCols};
  for (const char* activation : {"gelu", "softmax(dim=0)", "log_softmax(dim=1)"}) {
    std::vector<float> y(x.size()), dx(x.size());
    absl::StatusOr<std::optional<Tensor>> grad_weight = client.ComputeChunkedInto(
        MakeTensorView(x, shape), activation, Mode::kForwardBackward, MakeTensorView(dy, shape),
        std::nullopt,
        Client::ChunkedOutputs{absl::MakeSpan(reinterpret_cast<char*>(y.data()), y.size() * 4),
                               absl::MakeSpan(reinterpret_cast<char*>(dx.data()), dx.size() * 4)},
        /*chunk_bytes=*/int64_t{1} << 20, /*window=*/3);
    ASSERT_TRUE(grad_weight.ok()) << activation << ": " << grad_weight.status();
    EXPECT_FALSE(grad_weight->has_value());
    const ItemResult expected = Local(MakeTensorView(x, shape), activation,
                                      Mode::kForwardBackward, MakeTensorView(dy, shape));
    EXPECT_EQ(std::memcmp(y.data(), expected.output.data(), expected.output.size()), 0)
        << activation;
    EXPECT_EQ(std::memcmp(dx.data(), expected.grad_input.data(), expected.grad_input.size()), 0)
        << activation;
  }
}

TEST(StreamPipelineTest, ChunkedIntoRefusesMisSizedOutputsBeforeSending) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  const Client client(server.channel, ClientOptions());
  const std::vector<float> x(16, 1.0f);
  const int64_t shape[] = {16};
  std::vector<char> small(10);
  absl::StatusOr<std::optional<Tensor>> r = client.ComputeChunkedInto(
      MakeTensorView(x, shape), "relu", Mode::kForward, std::nullopt, std::nullopt,
      Client::ChunkedOutputs{absl::MakeSpan(small), {}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace server
}  // namespace actserve
