// The batch builder's wire request, and the SDK's client-side errors: a bad activation
// spec or a size mismatch is InvalidArgument before any network call.
#include "actserve/batch.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "actserve/client.h"
#include "actserve/v1/activation.pb.h"
#include "client/sdk/batch_internal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace actserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

TEST(BatchTest, BuildsOneItemPerAdd) {
  const std::vector<float> x = {-2, -1, 0, 1, 2, 3};
  const std::vector<float> dy = {1, 2, 3, 4, 5, 6};
  const std::vector<double> z = {0.5};
  const int64_t shape[] = {2, 3};
  const int64_t scalar_shape[] = {1};
  Batch batch;
  batch
      .Add(MakeTensorView(x, shape), "leaky_relu(negative_slope=0.2)", Mode::kBackward,
           MakeTensorView(dy, shape))
      .Add(MakeTensorView(z, scalar_shape), "gelu(approximate=tanh)", Mode::kForward);
  ASSERT_TRUE(batch.status().ok()) << batch.status();
  ASSERT_EQ(batch.size(), 2);

  const v1::ComputeRequest& request = client_internal::BatchWire::Request(batch);
  ASSERT_EQ(request.items_size(), 2);
  const v1::ComputeItem& first = request.items(0);
  EXPECT_EQ(first.input().dtype(), v1::DTYPE_FLOAT32);
  EXPECT_THAT(first.input().shape(), ElementsAre(2, 3));
  EXPECT_EQ(first.input().data(), Bytes(x));
  EXPECT_EQ(first.mode(), v1::MODE_BACKWARD);
  ASSERT_TRUE(first.has_grad_output());
  EXPECT_EQ(first.grad_output().data(), Bytes(dy));
  ASSERT_TRUE(first.activation().has_leaky_relu());
  EXPECT_EQ(first.activation().leaky_relu().negative_slope(), 0.2);

  const v1::ComputeItem& second = request.items(1);
  EXPECT_EQ(second.input().dtype(), v1::DTYPE_FLOAT64);
  EXPECT_EQ(second.input().data().size(), 8u);
  EXPECT_EQ(second.mode(), v1::MODE_FORWARD);
  EXPECT_FALSE(second.has_grad_output());
  ASSERT_TRUE(second.activation().has_gelu());
  EXPECT_EQ(second.activation().gelu().approximate(), v1::GELU_APPROXIMATE_TANH);
}

TEST(BatchTest, TakesASpecAsWellAsText) {
  absl::StatusOr<ActivationSpec> spec = ParseActivationSpec("softplus(beta=2)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<double> x = {1.0};
  const int64_t shape[] = {1};
  Batch batch;
  batch.Add(MakeTensorView(x, shape), *spec);
  ASSERT_TRUE(batch.status().ok()) << batch.status();
  const v1::Activation& activation =
      client_internal::BatchWire::Request(batch).items(0).activation();
  ASSERT_TRUE(activation.has_softplus());
  EXPECT_EQ(activation.softplus().beta(), 2.0);
  EXPECT_EQ(client_internal::BatchWire::Request(batch).items(0).mode(), v1::MODE_FORWARD_BACKWARD);
}

TEST(BatchTest, PreluSendsItsWeightInTheInputsDtype) {
  const std::vector<uint16_t> x = {0xBC00, 0x3C00};  // float16 -1, 1
  const int64_t shape[] = {2};
  Batch batch;
  batch.Add(MakeTensorView(DType::kFloat16, x, shape), "prelu(weight=0.5)");
  ASSERT_TRUE(batch.status().ok()) << batch.status();
  const v1::Tensor& weight =
      client_internal::BatchWire::Request(batch).items(0).activation().prelu().weight();
  EXPECT_EQ(weight.dtype(), v1::DTYPE_FLOAT16);
  EXPECT_TRUE(weight.shape().empty());
  EXPECT_EQ(weight.data(), std::string("\x00\x38", 2));  // 0.5 in binary16 is 0x3800

  const std::vector<uint16_t> channel_weights = {0x3800, 0x3400};  // 0.5, 0.25
  const int64_t channels[] = {2};
  const int64_t nc[] = {1, 2};
  Batch per_channel;
  per_channel.Add(MakeTensorView(DType::kFloat16, x, nc), "prelu", Mode::kForwardBackward,
                  std::nullopt, MakeTensorView(DType::kFloat16, channel_weights, channels));
  ASSERT_TRUE(per_channel.status().ok()) << per_channel.status();
  const v1::Tensor& weights =
      client_internal::BatchWire::Request(per_channel).items(0).activation().prelu().weight();
  EXPECT_THAT(weights.shape(), ElementsAre(2));
  EXPECT_EQ(weights.data(), std::string("\x00\x38\x00\x34", 4));
}

TEST(BatchTest, RecordsTheFirstErrorAndIgnoresLaterAdds) {
  const std::vector<float> x = {1, 2, 3};
  const int64_t shape[] = {3};
  const int64_t wrong_shape[] = {2, 2};
  Batch batch;
  batch.Add(MakeTensorView(x, shape), "relu")
      .Add(MakeTensorView(x, shape), "gelux")
      .Add(MakeTensorView(x, wrong_shape), "relu");
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(batch.status().message(), HasSubstr("items[1].activation: "));
  EXPECT_THAT(batch.status().message(), HasSubstr("gelux"));
  EXPECT_EQ(batch.size(), 1);

  Batch bad_size;
  bad_size.Add(MakeTensorView(x, wrong_shape), "relu");
  EXPECT_EQ(bad_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_size.status().message(),
              HasSubstr("items[0].input: 12 bytes of data, but shape [2,2] float32 needs 16"));

  Batch bad_parameter;
  bad_parameter.Add(MakeTensorView(x, shape), "softplus(beta=0)");
  EXPECT_THAT(bad_parameter.status().message(), HasSubstr("beta"));

  Batch stray_weight;
  stray_weight.Add(MakeTensorView(x, shape), "relu", Mode::kForward, std::nullopt,
                   MakeTensorView(x, shape));
  EXPECT_EQ(stray_weight.status().code(), absl::StatusCode::kInvalidArgument);
}

// Nothing listens on port 1, so a call that reached the network would fail with
// UNAVAILABLE; these fail with INVALID_ARGUMENT, so they never left the process.
ClientOptions NoRetries() {
  ClientOptions options;
  options.deadline = absl::Seconds(20);
  options.max_attempts = 1;
  return options;
}

TEST(ClientErrorsTest, BadSpecFailsBeforeAnyNetworkCall) {
  const Client client("127.0.0.1:1", NoRetries());
  const std::vector<float> x = {1, 2};
  const int64_t shape[] = {2};
  absl::StatusOr<TypedResult<float>> typed = client.Compute(x, shape, "leaky_relu(slope=1)");
  EXPECT_EQ(typed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(typed.status().message(), HasSubstr("items[0].activation: "));

  Batch batch;
  batch.Add(MakeTensorView(x, shape), "nosuch");
  EXPECT_EQ(client.Compute(batch).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Batch> batches(2);
  batches[1].Add(MakeTensorView(x, shape), "nosuch");
  absl::Status streamed = client.ComputeStream(batches).status();
  EXPECT_EQ(streamed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(streamed.message(), HasSubstr("batches[1]: items[0].activation"));

  const int64_t wrong_shape[] = {3};
  EXPECT_EQ(client.Compute(x, wrong_shape, "relu").status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<uint16_t> bits = {0x3C00};
  const int64_t one[] = {1};
  EXPECT_EQ(client.Compute(DType::kFloat32, bits, one, "relu").status().code(),
            absl::StatusCode::kInvalidArgument);

  // The contrast: a valid request does go out, and finds no server.
  EXPECT_EQ(client.Compute(x, shape, "relu").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.Health().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace actserve
