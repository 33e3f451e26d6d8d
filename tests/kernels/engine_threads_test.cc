// The engine with the SIMD kernels gives the same bits for any thread count: chunks are
// fixed by EngineOptions::chunk_elements alone, each element's result does not depend on
// where its chunk starts, PReLU's weight gradient is combined in chunk order, and each
// softmax reduction depends on its own elements only.
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "src/activation_spec.h"
#include "src/engine.h"
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

}  // namespace
}  // namespace actserve
