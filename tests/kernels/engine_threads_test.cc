// The engine with the SIMD kernels gives the same bits for any thread count: chunks are
// fixed by EngineOptions::chunk_elements alone, each element's result does not depend on
// where its chunk starts, PReLU's weight gradient is combined in chunk order, and each
// softmax reduction depends on its own elements only.
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "src/activation_spec.h"
#include "src/engine.h"
#include "src/tensor.h"
#include "src/thread_pool.h"

namespace actserve {
namespace {

struct Inputs {
  std::vector<int64_t> shape;
  std::string x, dy, weight;
  std::vector<int64_t> weight_shape;
};

// Runs `spec_text` on `inputs` with `threads` workers (0: no pool) and returns the
// concatenated output, grad_input and grad_weight bytes.
std::string RunEngine(const std::string& spec_text, DType dtype, const Inputs& inputs, int threads) {
  std::unique_ptr<ThreadPool> pool;
  EngineOptions options;
  options.chunk_elements = 1000;  // odd-sized chunks: boundaries fall mid-vector
  if (threads > 0) {
    pool = std::make_unique<ThreadPool>(ThreadPoolOptions{threads, 1024});
    options.pool = pool.get();
  }
  Engine engine(options);
  ComputeItem item;
  item.input = {dtype, inputs.shape, inputs.x};
  item.activation = *ParseActivationSpec(spec_text);
  item.mode = Mode::kForwardBackward;
  item.grad_output = ConstTensorView{dtype, inputs.shape, inputs.dy};
  if (!inputs.weight.empty()) {
    item.prelu_weight = ConstTensorView{dtype, inputs.weight_shape, inputs.weight};
  }
  absl::StatusOr<std::vector<ItemResult>> results = engine.ComputeToStrings({&item, 1});
  EXPECT_TRUE(results.ok()) << results.status();
  if (!results.ok()) return "";
  const ItemResult& r = (*results)[0];
  return r.output + r.grad_input + r.grad_weight;
}

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(EngineThreads, BitIdenticalForOneTwoAndThreeThreads) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-12, 12);
  const int64_t channels = 3, inner = 4111;  // odd runs per channel
  const int64_t n = 2 * channels * inner;
  std::vector<float> x32(n), dy32(n), w32 = {0.25f, -0.5f, 0.125f};
  for (int64_t i = 0; i < n; ++i) {
    x32[i] = dist(rng);
    dy32[i] = dist(rng) / 4;
  }
  std::vector<double> x64(x32.begin(), x32.end()), dy64(dy32.begin(), dy32.end()),
      w64(w32.begin(), w32.end());
  const char* specs[] = {"relu", "gelu", "gelu(approximate=tanh)", "silu", "mish", "elu",
                         "softplus", "tanh", "hardswish", "prelu", "tanhshrink"};
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    Inputs inputs;
    inputs.shape = {2, channels, inner};
    inputs.x = dtype == DType::kFloat32 ? Bytes(x32) : Bytes(x64);
    inputs.dy = dtype == DType::kFloat32 ? Bytes(dy32) : Bytes(dy64);
    for (const char* spec : specs) {
      Inputs item_inputs = inputs;
      if (std::string(spec) == "prelu") {
        item_inputs.weight = dtype == DType::kFloat32 ? Bytes(w32) : Bytes(w64);
        item_inputs.weight_shape = {channels};
      }
      const std::string one = RunEngine(spec, dtype, item_inputs, 0);
      ASSERT_FALSE(one.empty());
      for (int threads : {1, 2, 3}) {
        EXPECT_EQ(one, RunEngine(spec, dtype, item_inputs, threads))
            << spec << " " << DTypeName(dtype) << " with " << threads << " threads";
      }
    }
  }
}

// softmax / log_softmax over every dimension of a [3, 37, 1001] tensor: the last one
// (contiguous lanes), dim 1 (strided, 1001 columns: blocks and a tail) and dim 0.
TEST(EngineThreads, SoftmaxBitIdenticalForOneTwoAndThreeThreads) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-12, 12);
  const std::vector<int64_t> shape = {3, 37, 1001};
  const int64_t n = 3 * 37 * 1001;
  std::vector<float> x32(n), dy32(n);
  for (int64_t i = 0; i < n; ++i) {
    x32[i] = dist(rng);
    dy32[i] = dist(rng) / 4;
  }
  std::vector<double> x64(x32.begin(), x32.end()), dy64(dy32.begin(), dy32.end());
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    Inputs inputs;
    inputs.shape = shape;
    inputs.x = dtype == DType::kFloat32 ? Bytes(x32) : Bytes(x64);
    inputs.dy = dtype == DType::kFloat32 ? Bytes(dy32) : Bytes(dy64);
    for (const char* spec : {"softmax", "softmax(dim=1)", "softmax(dim=0)", "log_softmax",
                             "log_softmax(dim=1)", "log_softmax(dim=0)"}) {
      const std::string one = RunEngine(spec, dtype, inputs, 0);
      ASSERT_FALSE(one.empty());
      for (int threads : {1, 2, 3}) {
        EXPECT_EQ(one, RunEngine(spec, dtype, inputs, threads))
            << spec << " " << DTypeName(dtype) << " with " << threads << " threads";
      }
    }
  }
}

// PReLU with one weight per channel, in each way PreluLayout cuts the work: channels so
// small that a unit holds many of them ([2, 5000]: one element per run), channels of
// several pieces with short runs ([3000, 4], inner 1), and runs longer than a chunk
// ([2, 3, 2500]); the bits are the same for any thread count.
TEST(EngineThreads, PreluPerChannelBitIdenticalInEveryLayout) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-4, 4);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{2, 5000},
                                            std::vector<int64_t>{3000, 4},
                                            std::vector<int64_t>{2, 3, 2500}}) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> x(n), dy(n), w(shape[1]);
    for (float& v : x) v = dist(rng);
    for (float& v : dy) v = dist(rng);
    for (float& v : w) v = dist(rng) / 8;
    Inputs inputs{shape, Bytes(x), Bytes(dy), Bytes(w), {shape[1]}};
    const std::string one = RunEngine("prelu", DType::kFloat32, inputs, 0);
    ASSERT_FALSE(one.empty());
    for (int threads : {1, 2, 3}) {
      EXPECT_EQ(one, RunEngine("prelu", DType::kFloat32, inputs, threads))
          << ShapeToString(shape) << " with " << threads << " threads";
    }
  }
}

// The weight gradient against an independent sum in long double, dw_c = sum of x * dy
// over channel c's elements with x <= 0, for a channel count close to the element count
// (the case whose scratch used to grow as channels x chunks). Its working memory, as Plan
// reports it, stays linear in the channel count.
TEST(EngineThreads, PreluManyChannelsWeightGradient) {
  const int64_t channels = int64_t{1} << 18;
  const std::vector<int64_t> shape = {2, channels};
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> dist(-2, 2);
  std::vector<double> x(2 * channels), dy(2 * channels), w(channels);
  for (double& v : x) v = dist(rng);
  for (double& v : dy) v = dist(rng);
  for (double& v : w) v = dist(rng);
  ThreadPool pool(ThreadPoolOptions{2, 1024});
  EngineOptions options;
  options.pool = &pool;
  Engine engine(options);
  ComputeItem item;
  const std::string xb = Bytes(x), dyb = Bytes(dy), wb = Bytes(w);
  item.input = {DType::kFloat64, shape, xb};
  item.grad_output = ConstTensorView{DType::kFloat64, shape, dyb};
  const std::vector<int64_t> weight_shape = {channels};
  item.prelu_weight = ConstTensorView{DType::kFloat64, weight_shape, wb};
  item.activation = *ParseActivationSpec("prelu");
  item.mode = Mode::kBackward;

  absl::StatusOr<std::vector<ResultSizes>> sizes = engine.Plan({&item, 1});
  ASSERT_TRUE(sizes.ok()) << sizes.status();
  EXPECT_LE((*sizes)[0].working_bytes, static_cast<size_t>(channels) * 24 + 4096);

  absl::StatusOr<std::vector<ItemResult>> results = engine.ComputeToStrings({&item, 1});
  ASSERT_TRUE(results.ok()) << results.status();
  const std::string& dw = (*results)[0].grad_weight;
  ASSERT_EQ(dw.size(), static_cast<size_t>(channels) * 8);
  for (int64_t c = 0; c < channels; ++c) {
    long double expected = 0;
    for (int64_t row = 0; row < 2; ++row) {
      const int64_t i = row * channels + c;
      if (x[i] <= 0) expected += static_cast<long double>(x[i]) * dy[i];
    }
    double got;
    std::memcpy(&got, dw.data() + c * 8, 8);
    const double want = static_cast<double>(expected);
    ASSERT_NEAR(got, want, 1e-15 * (1 + std::fabs(want)))
        << "channel " << c;
  }
}

// An empty input still gets a weight gradient of the weight's shape, and it is zero in
// every byte: the buffer it is written to may hold anything before.
TEST(EngineThreads, PreluEmptyInputGivesZeroWeightGradient) {
  Engine engine(EngineOptions{});
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{0, 5}, std::vector<int64_t>{0}, std::vector<int64_t>{3, 0}}) {
    const int64_t weights = shape.size() == 2 ? shape[1] : 1;  // [3, 0]: zero channels
    std::vector<float> w(weights, 0.5f);
    const std::string wb = Bytes(w);
    const std::vector<int64_t> weight_shape = {weights};
    ComputeItem item;
    item.input = {DType::kFloat32, shape, {}};
    item.prelu_weight = ConstTensorView{DType::kFloat32, weight_shape, wb};
    item.activation = *ParseActivationSpec("prelu");
    item.mode = Mode::kBackward;
    std::string grad_weight(weights * 4, '\xab');
    ItemBuffers buffers;
    buffers.grad_weight = absl::MakeSpan(grad_weight.data(), grad_weight.size());
    // The forward pass of an empty input has nothing to write (and no weight to read).
    item.mode = Mode::kForward;
    ItemBuffers no_results;
    ASSERT_TRUE(engine.Compute({&item, 1}, {&no_results, 1}).ok()) << ShapeToString(shape);
    item.mode = Mode::kBackward;
    ASSERT_TRUE(engine.Compute({&item, 1}, {&buffers, 1}).ok());
    EXPECT_EQ(grad_weight, std::string(weights * 4, '\0')) << ShapeToString(shape);
  }
}

}  // namespace
}  // namespace actserve
