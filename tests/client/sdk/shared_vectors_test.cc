// The C++ side of the test vectors both SDKs share (tests/vectors/*.json; the Python side
// is tests/python/shared_vectors_test.py): the text forms of activation specs with their
// canonical form or error, how ComputeChunked cuts a tensor (PlanChunks, and what a server
// receives), the retry policy of the default channel, and the health codec's bytes. A
// change to either SDK that the other does not make fails one of the two.
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "actserve/client.h"
#include "actserve/v1/activation.grpc.pb.h"
#include "client/sdk/channel.h"
#include "client/sdk/chunk_plan.h"
#include "client/sdk/health_wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/activation_spec.h"
#include "src/dtype.h"

namespace actserve {
namespace {

using ::nlohmann::json;

json ReadVectors(const std::string& name) {
  const std::string path = std::string(ACTSERVE_TEST_VECTORS_DIR) + "/" + name;
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot read " << path;
  return json::parse(file);
}

// --- Text forms ----------------------------------------------------------------------

TEST(SharedVectorsTest, ActivationSpecs) {
  const json vectors = ReadVectors("activation_specs.json");
  ASSERT_FALSE(vectors["cases"].empty());
  for (const json& vector : vectors["cases"]) {
    const std::string text = vector["text"];
    const absl::StatusOr<ActivationSpec> spec = ParseActivationSpec(text);
    if (vector.contains("canonical")) {
      ASSERT_TRUE(spec.ok()) << "'" << text << "': " << spec.status();
      EXPECT_EQ(FormatActivationSpec(*spec), vector["canonical"].get<std::string>()) << text;
      // The canonical form is a fixed point.
      EXPECT_EQ(ParseActivationSpec(FormatActivationSpec(*spec)).value(), *spec) << text;
    } else {
      ASSERT_FALSE(spec.ok()) << "'" << text << "' parsed";
      EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << text;
      EXPECT_EQ(std::string(spec.status().message()), vector["error"].get<std::string>()) << text;
    }
  }
}

// --- Chunk plans ---------------------------------------------------------------------

// An ActivationService whose ComputeStream records each request's input (shape and
// element indices) and PReLU weight indices, and answers each with its own input as the
// output: ComputeChunked's cut is what this server saw, and the joined output must be the
// input again wherever the chunks' results were scattered.
//
// Elements carry their own flat index as an unsigned integer of the dtype's width, so a
// chunk's data tells which elements of the whole tensor it holds.
class RecordingService final : public v1::ActivationService::Service {
 public:
  struct Chunk {
    std::vector<int64_t> shape;
    std::vector<uint64_t> elements;
    std::vector<uint64_t> weights;
  };

  grpc::Status ComputeStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::ComputeResponse, v1::ComputeRequest>* stream) override {
    v1::ComputeRequest request;
    while (stream->Read(&request)) {
      if (request.items_size() != 1) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "one item per chunk");
      }
      const v1::ComputeItem& item = request.items(0);
      Chunk chunk;
      chunk.shape.assign(item.input().shape().begin(), item.input().shape().end());
      chunk.elements = Indices(item.input());
      if (item.activation().has_prelu() && item.activation().prelu().has_weight()) {
        chunk.weights = Indices(item.activation().prelu().weight());
      }
      {
        absl::MutexLock lock(&mu_);
        chunks_.push_back(std::move(chunk));
      }
      v1::ComputeResponse response;
      *response.add_results()->mutable_output() = item.input();
      stream->Write(response);
    }
    return grpc::Status::OK;
  }

  std::vector<Chunk> TakeChunks() {
    absl::MutexLock lock(&mu_);
    return std::move(chunks_);
  }

  static std::vector<uint64_t> Indices(const v1::Tensor& tensor) {
    const size_t width = ElementWidth(tensor.dtype());
    std::vector<uint64_t> indices;
    for (size_t at = 0; width > 0 && at + width <= tensor.data().size(); at += width) {
      uint64_t index = 0;
      for (size_t b = 0; b < width; ++b) {
        index |= uint64_t{static_cast<uint8_t>(tensor.data()[at + b])} << (8 * b);
      }
      indices.push_back(index);
    }
    return indices;
  }

  static size_t ElementWidth(v1::DType dtype) {
    switch (dtype) {
      case v1::DTYPE_FLOAT64:
        return 8;
      case v1::DTYPE_FLOAT32:
        return 4;
      case v1::DTYPE_FLOAT16:
      case v1::DTYPE_BFLOAT16:
        return 2;
      default:
        return 0;
    }
  }

 private:
  absl::Mutex mu_;
  std::vector<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
};

// `count` elements numbered 0.. in `width`-byte little-endian integers.
std::string NumberedBytes(int64_t count, size_t width) {
  std::string bytes;
  for (int64_t i = 0; i < count; ++i) {
    for (size_t b = 0; b < width; ++b) {
      bytes.push_back(static_cast<char>((static_cast<uint64_t>(i) >> (8 * b)) & 0xFF));
    }
  }
  return bytes;
}

TEST(SharedVectorsTest, ChunkPlans) {
  RecordingService service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  Client client(server->InProcessChannel(grpc::ChannelArguments()), ClientOptions());

  const json vectors = ReadVectors("chunk_plans.json");
  ASSERT_FALSE(vectors["cases"].empty());
  for (const json& vector : vectors["cases"]) {
    const std::string name = vector["name"];
    SCOPED_TRACE(name);
    DType dtype;
    ASSERT_TRUE(ParseDType(vector["dtype"].get<std::string>(), &dtype));
    const size_t width = DTypeSize(dtype);
    const std::vector<int64_t> shape = vector["shape"];
    int64_t elements = 1;
    for (const int64_t d : shape) elements *= d;
    const std::string input_bytes = NumberedBytes(elements, width);
    const TensorView input{dtype, shape, input_bytes};

    const int64_t weight_count = vector.value("weights", int64_t{0});
    const std::string weight_bytes = NumberedBytes(weight_count, width);
    const std::vector<int64_t> weight_shape = {weight_count};
    std::optional<TensorView> weight;
    if (weight_count > 0) weight = TensorView{dtype, weight_shape, weight_bytes};

    absl::StatusOr<ItemOutput> result =
        client.ComputeChunked(input, vector["activation"].get<std::string>(), Mode::kForward,
                              std::nullopt, weight, vector["chunk_bytes"].get<int64_t>());
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_TRUE(result->output.has_value());
    EXPECT_EQ(result->output->data(), input_bytes) << "the chunks' results were not joined "
                                                      "back where they came from";

    const std::vector<RecordingService::Chunk> seen = service.TakeChunks();
    const json& want = vector["chunks"];
    ASSERT_EQ(seen.size(), want.size());
    const int64_t rest = shape.empty() || shape[0] == 0 ? 1 : elements / shape[0];
    for (size_t i = 0; i < seen.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("chunk ", i));
      const std::vector<int64_t> want_shape = want[i]["shape"];
      EXPECT_EQ(seen[i].shape, want_shape);
      int64_t chunk_elements = 1;
      for (const int64_t d : want_shape) chunk_elements *= d;
      std::vector<uint64_t> want_elements;
      if (want[i].contains("columns")) {
        const int64_t first = want[i]["columns"][0], count = want[i]["columns"][1];
        for (int64_t row = 0; row < shape[0]; ++row) {
          for (int64_t c = 0; c < count; ++c) want_elements.push_back(row * rest + first + c);
        }
      } else {
        const int64_t offset = want[i]["offset"];
        for (int64_t e = 0; e < chunk_elements; ++e) want_elements.push_back(offset + e);
      }
      EXPECT_EQ(seen[i].elements, want_elements);
      if (want[i].contains("weights")) {
        const int64_t first = want[i]["weights"][0], count = want[i]["weights"][1];
        std::vector<uint64_t> want_weights;
        for (int64_t w = 0; w < count; ++w) want_weights.push_back(first + w);
        EXPECT_EQ(seen[i].weights, want_weights);
      } else if (weight_count > 1) {
        // Sent with every weight.
        EXPECT_EQ(seen[i].weights.size(), static_cast<size_t>(weight_count));
      }
    }
  }
  server->Shutdown();
}

// The same vectors against PlanChunks itself (client/sdk/chunk_plan.h), the pure function
// that ComputeChunked follows: the plan, not only what a server saw of it.
TEST(SharedVectorsTest, ChunkPlansOfPlanChunks) {
  const json vectors = ReadVectors("chunk_plans.json");
  ASSERT_FALSE(vectors["cases"].empty());
  for (const json& vector : vectors["cases"]) {
    SCOPED_TRACE(vector["name"].get<std::string>());
    DType dtype;
    ASSERT_TRUE(ParseDType(vector["dtype"].get<std::string>(), &dtype));
    const std::vector<int64_t> shape = vector["shape"];
    const absl::StatusOr<ActivationSpec> spec =
        ParseActivationSpec(vector["activation"].get<std::string>());
    ASSERT_TRUE(spec.ok()) << spec.status();
    const int64_t weight_count = std::max<int64_t>(1, vector.value("weights", int64_t{0}));
    const client_internal::ChunkPlan plan = client_internal::PlanChunks(
        dtype, shape, *spec, weight_count, vector["chunk_bytes"].get<int64_t>());
    const json& want = vector["chunks"];
    ASSERT_EQ(plan.chunks, want.size());
    for (size_t i = 0; i < plan.chunks; ++i) {
      SCOPED_TRACE(absl::StrCat("chunk ", i));
      const client_internal::ChunkGeometry g = client_internal::ChunkAt(plan, shape, i);
      EXPECT_EQ(g.shape, want[i]["shape"].get<std::vector<int64_t>>());
      if (want[i].contains("columns")) {
        EXPECT_TRUE(g.gathered);
        EXPECT_EQ(g.first_column, want[i]["columns"][0].get<int64_t>());
        EXPECT_EQ(g.columns, want[i]["columns"][1].get<int64_t>());
      } else {
        EXPECT_FALSE(g.gathered);
        EXPECT_EQ(g.offset, want[i]["offset"].get<size_t>() * DTypeSize(dtype));
      }
      if (want[i].contains("weights")) {
        EXPECT_EQ(g.first_weight, want[i]["weights"][0].get<int64_t>());
        EXPECT_EQ(g.weights, want[i]["weights"][1].get<int64_t>());
      }
    }
  }
}

// --- Retry policy --------------------------------------------------------------------

TEST(SharedVectorsTest, RetryPolicy) {
  const json vectors = ReadVectors("retry_policy.json");
  const ClientOptions defaults;
  EXPECT_EQ(defaults.max_attempts, vectors["default_max_attempts"].get<int>());
  EXPECT_EQ(defaults.load_balancing_policy, vectors["load_balancing_policy"].get<std::string>());
  const json config = json::parse(client_internal::ServiceConfigJson(defaults));
  ASSERT_EQ(config["methodConfig"].size(), 1u);
  const json& method = config["methodConfig"][0];
  std::vector<std::string> services;
  for (const json& name : method["name"]) services.push_back(name["service"]);
  EXPECT_EQ(services, vectors["services"].get<std::vector<std::string>>());
  const json& retry = method["retryPolicy"];
  EXPECT_EQ(retry["maxAttempts"], vectors["default_max_attempts"]);
  EXPECT_EQ(retry["retryableStatusCodes"], vectors["retryable_status_codes"]);
  EXPECT_EQ(retry["initialBackoff"], vectors["initial_backoff"]);
  EXPECT_EQ(retry["maxBackoff"], vectors["max_backoff"]);
  EXPECT_EQ(retry["backoffMultiplier"], vectors["backoff_multiplier"]);
  EXPECT_TRUE(config["loadBalancingConfig"][0].contains(
      vectors["load_balancing_policy"].get<std::string>()));
}

// --- Health codec --------------------------------------------------------------------

TEST(SharedVectorsTest, HealthCodec) {
  const json vectors = ReadVectors("health_codec.json");
  for (const json& vector : vectors["requests"]) {
    std::string service;
    if (vector.contains("service")) {
      service = vector["service"];
    } else {
      for (int i = 0; i < vector["service_repeat"][1].get<int>(); ++i) {
        service += vector["service_repeat"][0].get<std::string>();
      }
    }
    const std::string encoded = client_internal::EncodeHealthCheckRequest(service);
    if (vector.contains("hex")) {
      EXPECT_EQ(absl::BytesToHexString(encoded), vector["hex"].get<std::string>()) << service;
    } else {
      const std::string prefix = absl::HexStringToBytes(vector["hex_prefix"].get<std::string>());
      EXPECT_EQ(encoded, prefix + service);
    }
  }
  for (const json& vector : vectors["responses"]) {
    const std::string hex = vector["hex"];
    const absl::StatusOr<HealthStatus> status =
        client_internal::DecodeHealthCheckResponse(absl::HexStringToBytes(hex));
    if (vector.value("malformed", false)) {
      EXPECT_FALSE(status.ok()) << hex;
    } else {
      ASSERT_TRUE(status.ok()) << hex << ": " << status.status();
      EXPECT_EQ(HealthStatusName(*status), vector["status"].get<std::string>()) << hex;
    }
  }
}

}  // namespace
}  // namespace actserve
